"""Live agreement: keep an AgreementTracker in step with the annotator Labels layers.

Paint events are turned into changed pixels (:mod:`.paint`) and fed to the tracker in
O(changed pixels x annotators). Undo, redo and ``layer.data = ...`` emit no paint event;
they are caught through ``events.set_data`` / ``events.data`` and handled by a debounced
full resynchronisation (one read per mask).

The tracker tracks boolean *mirrors* of the layers, not the layers' arrays: the mirror of a
layer is updated from the paint event before the tracker is told, so the tracker's
"update after the array changed" contract holds whatever the order in which napari writes
the data and emits the event (it emits before writing for single ``paint`` calls and after
writing for mouse strokes).

Cost on the GUI thread per paint event: O(bounding box of the dab) for napari >= 0.8
masked atoms (mirror, votes and MHR are updated on the box only, the tracker in
O(changed pixels x masks)); the MHR layer's display is refreshed at most every 100 ms. The
whole-image set-up (mirrors, tracker counts, votes, MHR display) is :func:`prepare_live`,
which the review dock runs in a worker for large cases. Large MHR maps are shown at a lower
resolution (block means, see :func:`napari_iaa.agreement.mhr_factor`) so that a display
refresh stays cheap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, QTimer, Signal

from napari_iaa.agreement import (
    MHR_DISPLAY_MAX_PIXELS,
    AgreementTracker,
    mhr_display,
    mhr_factor,
)
from napari_iaa.widgets.review.paint import (
    Box,
    apply_indices,
    apply_masked_atom,
    atoms_of,
    flush_flips,
    paint_changes,
)

__all__ = ["LiveAgreement", "LiveSetup", "prepare_live"]


@dataclass
class LiveSetup:
    """The whole-image set-up of a :class:`LiveAgreement` (made in a worker).

    Attributes
    ----------
    ids : list of str
        Mask ids in display order.
    mirrors : dict
        Boolean copy of each mask (the live state the tracker follows).
    tracker : AgreementTracker
        Counts of the mirrors.
    votes : int16 array
        Per pixel, how many masks mark it.
    mhr_k : int
        Block size of the MHR display (``1``: full resolution).
    mhr : float32 array
        The MHR display data.
    baseline : dict, optional
        The masks as opened (the reference of "unsaved edits"); set by the dock.
    """

    ids: list[str]
    mirrors: dict[str, np.ndarray]
    tracker: AgreementTracker
    votes: np.ndarray
    mhr_k: int
    mhr: np.ndarray
    baseline: dict[str, np.ndarray] | None = field(default=None)


def prepare_live(masks: Sequence[tuple[str, Any]], mhr_max_pixels: int = MHR_DISPLAY_MAX_PIXELS
                 ) -> LiveSetup:
    """Whole-image set-up of a :class:`LiveAgreement` (thread-safe; run it in a worker).

    Parameters
    ----------
    masks : sequence of (mask_id, array)
        Masks in display order (nonzero = foreground); not modified.
    mhr_max_pixels : int
        Above this many pixels the MHR display is down-sampled (see ``mhr_factor``).

    Returns
    -------
    LiveSetup
        Mirrors (bool copies), tracker, votes (int16), ``mhr_k`` and the MHR display.
    """
    ids = [mid for mid, _ in masks]
    mirrors = {mid: np.asarray(a) != 0 for mid, a in masks}
    tracker = AgreementTracker({mid: mirrors[mid] for mid in ids})
    if ids:
        votes = np.zeros(mirrors[ids[0]].shape, dtype=np.int16)
        for mid in ids:
            votes += mirrors[mid]
    else:
        votes = np.zeros((0,), dtype=np.int16)
    k = mhr_factor(votes.shape, mhr_max_pixels) if ids else 1
    mhr = mhr_display(votes, len(ids), k)[1] if ids else np.zeros((0,), np.float32)
    return LiveSetup(ids=ids, mirrors=mirrors, tracker=tracker, votes=votes, mhr_k=k, mhr=mhr)


class LiveAgreement(QObject):
    """Tracker + MHR kept in step with a set of annotator Labels layers.

    Parameters
    ----------
    layers : sequence of (mask_id, Labels layer)
        The annotator layers, in display order.
    mhr_layer : Image layer, optional
        Its float data is updated in place (touched pixels only) on each paint. Its data
        may be full resolution or down-sampled by an integer factor (block means).
    debounce_ms : int
        Delay of the full resynchronisation after undo/redo/data replacement.
    prepared : LiveSetup, optional
        The result of :func:`prepare_live` on the layers' data (computed in a worker);
        computed here when not given.

    Signals
    -------
    changed(bool) : emitted after an update; ``True`` if it was a full resync.
    """

    changed = Signal(bool)

    #: the MHR layer's display is refreshed at most this often (its data at once)
    mhr_refresh_ms = 100

    def __init__(
        self,
        layers: Sequence[tuple[str, Any]],
        mhr_layer: Any = None,
        debounce_ms: int = 150,
        parent: QObject | None = None,
        prepared: LiveSetup | None = None,
    ) -> None:
        super().__init__(parent)
        self.ids = [mid for mid, _ in layers]
        self.layers = {mid: layer for mid, layer in layers}
        self.mhr_layer = mhr_layer
        if prepared is None or prepared.ids != self.ids:
            prepared = prepare_live([(mid, lay.data) for mid, lay in layers])
        self.mirrors: dict[str, np.ndarray] = prepared.mirrors
        self.tracker = prepared.tracker
        self._votes: np.ndarray = prepared.votes
        self.dirty: set[str] = set()
        self.n_paint_events = 0
        self.n_resyncs = 0
        #: counts every change of the mirrors (stale-result detection for workers)
        self.n_edits = 0
        #: volumes: the slices (axis 0) changed since :meth:`take_touched_slices`
        self._touched_z: set[int] = set()
        self._is_volume = bool(self.ids) and self.mirrors[self.ids[0]].ndim == 3
        self._resync_ids: set[str] = set()
        self._timer = self._single_shot(debounce_ms, self.resync)
        self._mhr_timer = self._single_shot(self.mhr_refresh_ms, self._refresh_mhr_display)
        self._connections: list[tuple[Any, Callable]] = []
        for mid in self.ids:
            self._listen(mid, self.layers[mid])
        self.mhr_k = self._mhr_layer_factor()
        self._init_mhr(prepared)

    def _single_shot(self, ms: int, slot: Callable[[], Any]) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(ms)
        timer.timeout.connect(slot)
        return timer

    def _listen(self, mid: str, lay: Any) -> None:
        data_cb = self._make_data_cb(mid)
        cbs = [
            (lay.events.paint, self._make_paint_cb(mid)),
            (lay.events.data, data_cb),
            (lay.events.set_data, data_cb),
            # a hidden layer's undo emits no set_data; catch up when it is shown
            (lay.events.visible, data_cb),
        ]
        for emitter, cb in cbs:
            emitter.connect(cb)
            self._connections.append((emitter, cb))

    def _init_mhr(self, prepared: LiveSetup) -> None:
        """Fill the MHR layer: from the worker's display when it fits, else from the votes."""
        lay, pre = self.mhr_layer, prepared.mhr
        if self.mhr_k and prepared.mhr_k == self.mhr_k and lay.data.shape == pre.shape:
            if lay.data is not pre and not np.array_equal(lay.data, pre):
                lay.data[...] = pre
                self._refresh_mhr_display()
        else:
            self._write_mhr(None)

    # -- bookkeeping -----------------------------------------------------------------
    def _mhr_layer_factor(self) -> int:
        """Down-sampling factor of the MHR layer's data (0: no MHR layer or unusable shape)."""
        lay = self.mhr_layer
        if lay is None or not self.ids or not isinstance(lay.data, np.ndarray):
            return 0
        full, disp = self._votes.shape, lay.data.shape
        if disp == full:
            return 1
        if len(full) != 2 or len(disp) != 2:
            return 0
        k = -(-full[0] // disp[0])
        if k > 1 and -(-full[0] // k) == disp[0] and -(-full[1] // k) == disp[1]:
            return k
        return 0

    def disconnect_all(self) -> None:
        """Stop listening to the layers (call before dropping this object)."""
        self._timer.stop()
        self._mhr_timer.stop()
        for emitter, cb in self._connections:
            # the emitter may be gone with its layer: dropping a listener never fails
            with contextlib.suppress(Exception):
                emitter.disconnect(cb)
        self._connections = []

    # -- paint: O(changed pixels) ------------------------------------------------------
    def _make_paint_cb(self, mid: str) -> Callable:
        def _cb(event: Any) -> None:
            self.on_paint(mid, event.value)

        return _cb

    def _make_data_cb(self, mid: str) -> Callable:
        def _cb(event: Any = None) -> None:
            self._resync_ids.add(mid)
            self.schedule_resync()

        return _cb

    def on_paint(self, mid: str, value: Any) -> None:
        """Apply a paint event's changes of mask ``mid`` to mirror, tracker and MHR.

        The masked atoms of one event (a mouse stroke delivers all its dabs at once) are
        applied to the mirror box by box and their changed pixels told to the tracker
        in one update: O(boxes + changed pixels x masks).
        """
        if mid not in self.mirrors:
            return
        self.n_paint_events += 1
        atoms = atoms_of(value)
        if len(atoms) == 1 and hasattr(atoms[0], "slice_key"):
            # a single dab (``layer.paint``): the tracker's box update needs no sorting
            got = apply_masked_atom(self.mirrors[mid], self.tracker, self._votes, mid, atoms[0],
                                    tell=True)
            self._after_paint(mid, [got[0]] if got else [], resync=got is None)
            return
        self._after_paint(mid, *self._apply_atoms(mid, atoms))

    def _apply_atoms(self, mid: str, atoms: list[Any]) -> tuple[list[Box], bool]:
        """Apply several atoms: the touched boxes, and whether a resync is needed."""
        mirror = self.mirrors[mid]
        touched: list[Box] = []
        pending: list[tuple[np.ndarray, np.ndarray]] = []
        resync = False
        for atom in atoms:
            if hasattr(atom, "slice_key"):  # napari's masked atom
                got = apply_masked_atom(mirror, self.tracker, self._votes, mid, atom)
                if got is None:
                    resync = True
                    break
                if got:
                    touched.append(got[0])
                    pending.append((got[1], got[2]))
                continue
            flush_flips(self.tracker, self._votes, mid, pending)
            pending = []
            for idx, new in paint_changes(atom, self.layers[mid].data):
                if not idx or idx[0].size == 0:
                    continue
                if len(idx) != mirror.ndim:  # shape changed under us: full resync
                    resync = True
                    break
                box = apply_indices(mirror, self.tracker, self._votes, mid, idx, new)
                if box:
                    touched.append(box)
            if resync:
                break
        flush_flips(self.tracker, self._votes, mid, pending)
        return touched, resync

    def _after_paint(self, mid: str, touched: list[Box], resync: bool = False) -> None:
        """Schedule a resync if needed; count the edit, update the MHR, tell listeners."""
        if resync:
            self._resync_ids.add(mid)
            self.schedule_resync()
        if touched:
            self.dirty.add(mid)
            self.n_edits += 1
            self._note_slices(touched)
            self._write_mhr(touched)
            self.changed.emit(False)

    def _note_slices(self, boxes: list[Box]) -> None:
        """Remember which slices of a volume the boxes cover (for the slice profile)."""
        if self._is_volume:
            for box in boxes:
                self._touched_z.update(range(int(box[0].start or 0), int(box[0].stop)))

    def take_touched_slices(self) -> set[int]:
        """The slices (axis 0) of a volume changed since the last call (then forgotten)."""
        out, self._touched_z = self._touched_z, set()
        return out

    # -- undo / redo / data replacement: debounced full resync ------------------------
    def schedule_resync(self) -> None:
        """(Re)start the debounce timer of the full resynchronisation."""
        self._timer.start()

    def request_resync(self, ids: set[str]) -> None:
        """Resynchronise masks ``ids`` (changed behind our back) after the debounce."""
        self._resync_ids |= set(ids)
        self.schedule_resync()

    @property
    def resync_pending(self) -> bool:
        """Whether a full resynchronisation is scheduled."""
        return self._timer.isActive()

    def resync(self) -> bool:
        """Compare layers with their mirrors and apply the differences.

        Only the layers that reported a data change since the last resync are read (all
        of them when none is known): O(pixels) per such layer to compare, then
        O(changed pixels x masks) for the tracker, votes and MHR. Returns whether
        anything had changed.
        """
        self._timer.stop()
        ids = [mid for mid in self.ids if mid in self._resync_ids] or list(self.ids)
        self._resync_ids.clear()
        boxes: list[Box] = []
        for mid in ids:
            data = np.asarray(self.layers[mid].data) != 0
            mirror = self.mirrors[mid]
            if data.shape != mirror.shape:
                # shape changed (layer.data = other-size array): cannot track
                return False
            flat = np.flatnonzero(data != mirror)
            if flat.size == 0:
                continue
            # O(pixels) to compare, then O(changed pixels x masks) to update
            idx = np.unravel_index(flat, mirror.shape)
            new = data[idx]
            old = mirror[idx]
            mirror[idx] = new
            self.tracker.update(mid, idx, new, old_values=old)
            self._votes[idx] += new.astype(np.int16) - old.astype(np.int16)
            boxes.append(tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx))
            self.dirty.add(mid)
        if boxes:
            self.n_resyncs += 1
            self.n_edits += 1
            self._note_slices(boxes)
            self._write_mhr(boxes)
            self._refresh_mhr_display()
            self.changed.emit(True)
        return bool(boxes)

    # -- MHR ---------------------------------------------------------------------------
    def _write_mhr(self, touched: list[Box] | None) -> None:
        lay, k = self.mhr_layer, self.mhr_k
        if lay is None or not self.ids or not k:
            return
        data = lay.data
        n = len(self.ids)
        if touched is None:
            where, vals = mhr_display(self._votes, n, k)
            data[where] = vals
            self._refresh_mhr_display()
            return
        for box in touched:
            where, vals = mhr_display(self._votes, n, k, box)
            data[where] = vals
        if not self._mhr_timer.isActive():
            self._mhr_timer.start()

    def _refresh_mhr_display(self) -> None:
        self._mhr_timer.stop()
        if self.mhr_layer is None:
            return
        # the layer may have been removed meanwhile: a display refresh never breaks a paint
        with contextlib.suppress(Exception):
            self.mhr_layer.refresh()

    # -- read-outs -------------------------------------------------------------------
    def masks(self) -> dict[str, np.ndarray]:
        """The current boolean masks (the mirrors; do not modify)."""
        return {mid: self.mirrors[mid] for mid in self.ids}

    def stack(self) -> np.ndarray:
        """Current masks stacked (N, ...) in ``ids`` order (a copy: whole-image work)."""
        return np.stack([self.mirrors[mid] for mid in self.ids])

    def mhr(self) -> np.ndarray:
        """Current MHR map at full resolution (fraction of annotators per pixel)."""
        return (self._votes / max(len(self.ids), 1)).astype(np.float32)
