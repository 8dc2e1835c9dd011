"""Live agreement: keep an AgreementTracker in step with the annotator Labels layers.

Paint events are turned into changed pixels (:mod:`.paint`) and fed to the tracker in
O(changed pixels x annotators). Undo, redo and ``layer.data = ...`` emit no paint event;
they are caught through ``events.set_data`` / ``events.data`` and handled by a debounced
full resynchronisation (one read per mask).

Heavy edits (a bucket fill or paint whose boxes hold more than
:attr:`LiveAgreement.async_edit_min_work` pixels x masks) and the resyncs of large masks
run in a worker (:mod:`.live_queue`), in order; while one is pending, later edits queue
behind it. The GUI thread then only writes the MHR values the worker computed and emits
``changed``; :meth:`LiveAgreement.flush` (called by :meth:`LiveAgreement.resync`, hence by
saves) applies what is queued at once.

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
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, QTimer, Signal

from napari_iaa.agreement import mhr_display
from napari_iaa.widgets._common import no_threads
from napari_iaa.widgets.review.live_queue import EditQueue, JobResult, bbox
from napari_iaa.widgets.review.live_setup import LiveSetup, prepare_live
from napari_iaa.widgets.review.paint import (
    Box,
    apply_indices,
    apply_masked_atom,
    atoms_of,
    flush_flips,
    paint_changes,
)

__all__ = ["LiveAgreement", "LiveSetup", "prepare_live"]


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
    #: an edit (or a resync) whose boxes hold more than this many pixels x masks is
    #: applied in a worker (:mod:`.live_queue`), as is every edit while one is pending:
    #: about 30 ms of the GUI thread at the threshold
    async_edit_min_work = 8_000_000

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
        self._timer = self._single_shot(debounce_ms, self._resync_soon)
        #: the worker of heavy edits (None: everything on the GUI thread)
        self._queue = None if no_threads() else EditQueue(
            self._apply_job, self._finish_jobs, self._recover, self)
        #: the masks as opened or saved (set by the dock): a resync in the worker that
        #: finds a mask equal to it clears the mask's "unsaved" mark
        self.baseline: dict[str, np.ndarray] | None = None
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
        if self._queue is not None:
            self._queue.close()
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
        if self._queue is not None and (self._queue.busy or self._work(atoms) > self.async_edit_min_work):
            self.n_edits += 1  # results computed from the mirrors meanwhile are stale
            self._queue.submit(("paint", mid, atoms))
            return
        self._after_paint(mid, *self._apply_value(mid, atoms))

    def _work(self, atoms: list[Any]) -> int:
        """Pixels x masks an edit touches (its boxes; the listed pixels of tuple atoms)."""
        shape = self._votes.shape
        px = 0
        for atom in atoms:
            if hasattr(atom, "slice_key"):
                key = tuple(atom.slice_key)
                if len(key) == len(shape) and all(isinstance(s, slice) for s in key):
                    px += int(np.prod([len(range(*s.indices(d))) for s, d in zip(key, shape, strict=True)]))
            elif isinstance(atom, tuple) and len(atom) >= 2:
                px += int(np.size(atom[1]))
        return px * max(len(self.ids), 1)

    def _apply_value(self, mid: str, atoms: list[Any]) -> tuple[list[Box], bool]:
        """Apply a paint event's atoms to mirror, tracker and votes: (boxes, resync?)."""
        if len(atoms) == 1 and hasattr(atoms[0], "slice_key"):
            # a single dab (``layer.paint``): the tracker's box update needs no sorting
            got = apply_masked_atom(self.mirrors[mid], self.tracker, self._votes, mid, atoms[0],
                                    tell=True)
            return ([got[0]] if got else []), got is None
        return self._apply_atoms(mid, atoms)

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
        """Whether a resynchronisation is scheduled or edits are still being applied."""
        return self._timer.isActive() or (self._queue is not None and self._queue.busy)

    @property
    def busy(self) -> bool:
        """Whether edits are being applied in the worker (the counts are not final)."""
        return self._queue is not None and self._queue.busy

    def flush(self) -> None:
        """Apply the edits still queued for the worker now (e.g. before saving)."""
        if self._queue is not None:
            self._queue.flush()

    def _take_resync_ids(self) -> list[str]:
        ids = [mid for mid in self.ids if mid in self._resync_ids] or list(self.ids)
        self._resync_ids.clear()
        return ids

    def _resync_soon(self) -> None:
        """The debounce timer: resync here, or in the worker for large masks."""
        heavy = self._votes.size * max(len(self.ids), 1) > self.async_edit_min_work
        if self._queue is not None and (heavy or self._queue.busy):
            self.n_edits += 1
            self._queue.submit(("resync", self._take_resync_ids()))
            return
        self.resync()

    def resync(self) -> bool:
        """Compare layers with their mirrors and apply the differences (on this thread).

        Edits queued for the worker are applied first. Only the layers that reported a
        data change since the last resync are read (all of them when none is known):
        O(pixels) per such layer to compare, then O(changed box) for the tracker, votes
        and MHR. Returns whether anything had changed.
        """
        self._timer.stop()
        self.flush()
        got = self._resync_masks(self._take_resync_ids())
        if not got or not got[0]:
            return False
        boxes, edited = got
        self.dirty.update(edited)
        self.n_resyncs += 1
        self.n_edits += 1
        self._note_slices(boxes)
        self._write_mhr(boxes)
        self._refresh_mhr_display()
        self.changed.emit(True)
        return True

    def _resync_masks(self, ids: list[str]) -> tuple[list[Box], list[str]] | None:
        """Bring the mirrors of ``ids`` to their layers' data: (boxes, edited masks); None
        if a layer's shape changed (cannot track). Thread-safe against later edits: those
        reach the mirrors after this, in order."""
        boxes: list[Box] = []
        edited: list[str] = []
        for mid in ids:
            data = np.asarray(self.layers[mid].data) != 0
            mirror = self.mirrors[mid]
            if data.shape != mirror.shape:
                return None
            box = bbox(data != mirror)
            if box is None:
                continue
            old = mirror[box].copy()
            mirror[box] = data[box]
            new = mirror[box]
            self.tracker.update_region(mid, box, old_values=old, new_values=new)
            self._votes[box] += new.astype(np.int16) - old.astype(np.int16)
            boxes.append(box)
            edited.append(mid)
        return boxes, edited

    # -- the worker's jobs (:mod:`.live_queue`) ----------------------------------------
    def _apply_job(self, job: tuple) -> JobResult:
        """Apply one queued job (in the worker, jobs in order)."""
        res = JobResult()
        if job[0] == "paint":
            _, mid, atoms = job
            boxes, resync = self._apply_value(mid, atoms)
            if boxes:
                res.edited.add(mid)
            if resync:
                res.resync.add(mid)
        else:
            got = self._resync_masks(job[1])
            boxes = got[0] if got else []
            res.edited.update(got[1] if got else [])
            res.resynced = bool(res.edited)
            base = self.baseline or {}
            for mid in res.edited:
                b = base.get(mid)
                if b is not None and np.array_equal(self.mirrors[mid], b if b.dtype == bool else b != 0):
                    res.clean.add(mid)
        res.boxes = list(boxes)
        res.mhr = self._mhr_parts(res.boxes)
        return res

    def _finish_jobs(self, results: list[JobResult], fresh: bool) -> None:
        """The worker's jobs are applied: MHR display, bookkeeping, listeners (GUI thread)."""
        boxes: list[Box] = []
        for res in results:
            self.dirty |= res.edited
            self.dirty -= res.clean
            boxes += res.boxes
            self.n_resyncs += int(res.resynced)
            if res.resync:
                self.request_resync(res.resync)
        if not boxes:
            return
        self.n_edits += 1
        self._note_slices(boxes)
        if fresh and self.mhr_layer is not None and self.mhr_k:
            data = self.mhr_layer.data
            for res in results:
                for where, vals in res.mhr:
                    data[where] = vals
            self._refresh_mhr_display()
        else:
            self._write_mhr(boxes)
        self.changed.emit(False)

    def _recover(self, _exc: BaseException) -> None:
        """A job failed half-way: count everything again from the layers (GUI thread)."""
        for mid in self.ids:
            self.mirrors[mid][...] = np.asarray(self.layers[mid].data) != 0
        self.tracker.recompute()
        self._votes[...] = 0
        for mid in self.ids:
            self._votes += self.mirrors[mid]
        self.dirty.update(self.ids)
        self.n_edits += 1
        self._write_mhr(None)
        self.changed.emit(True)

    def _mhr_parts(self, boxes: list[Box]) -> list[tuple[Box, np.ndarray]]:
        if self.mhr_layer is None or not self.mhr_k:
            return []
        return [mhr_display(self._votes, len(self.ids), self.mhr_k, box) for box in boxes]

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

