"""Live agreement: keep an AgreementTracker in step with the annotator Labels layers.

Paint events are turned into changed pixels (both payload formats napari has used) and fed
to the tracker in O(changed pixels x annotators). Undo, redo and ``layer.data = ...`` emit
no paint event; they are caught through ``events.set_data`` / ``events.data`` and handled by
a debounced full resynchronisation (one read per mask).

The tracker tracks boolean *mirrors* of the layers, not the layers' arrays: the mirror of a
layer is updated from the paint event before the tracker is told, so the tracker's
"update after the array changed" contract holds whatever the order in which napari writes
the data and emits the event (it emits before writing for single ``paint`` calls and after
writing for mouse strokes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, QTimer, Signal

__all__ = ["paint_changes", "LiveAgreement"]


def paint_changes(value: Any, data: Any = None) -> list[tuple[tuple[np.ndarray, ...], np.ndarray]]:
    """Changed pixels of a Labels ``paint`` event.

    Parameters
    ----------
    value : list
        ``event.value`` of ``Labels.events.paint``: a list of history atoms. An atom is
        either a mask-based edit (napari >= 0.8: attributes ``slice_key``, ``mask``,
        ``old_values``, ``new_value``; ``mask is None`` means the whole bounding box) or
        a fancy-index tuple ``(indices, old_values[, new_values])`` (older napari and
        ``data_setitem``).
    data : array, optional
        The layer data, only read when an atom carries no new values.

    Returns
    -------
    list of (indices, new_values)
        ``indices`` a tuple of integer index arrays (one per axis), ``new_values`` the
        label values written there (same length).
    """
    out: list[tuple[tuple[np.ndarray, ...], np.ndarray]] = []
    atoms = value if isinstance(value, list | tuple) and not _is_tuple_atom(value) else [value]
    for atom in atoms:
        if hasattr(atom, "slice_key"):
            starts = [int(s.start or 0) for s in atom.slice_key]
            mask = atom.mask
            if mask is None:
                shape = np.shape(atom.old_values)
                grid = np.indices(shape).reshape(len(shape), -1)
                idx = tuple(grid[d] + starts[d] for d in range(len(shape)))
            else:
                nz = np.nonzero(np.asarray(mask))
                idx = tuple(nz[d] + starts[d] for d in range(len(nz)))
            n = idx[0].size if idx else 0
            new = np.broadcast_to(np.asarray(atom.new_value), (n,))
            out.append((idx, new))
        elif isinstance(atom, tuple) and len(atom) in (2, 3):
            indices = atom[0]
            if isinstance(indices, np.ndarray) and indices.dtype == bool:
                idx = tuple(np.nonzero(indices))
            else:
                idx = tuple(np.asarray(i).ravel() for i in indices)
            n = idx[0].size if idx else 0
            if len(atom) == 3:
                new = np.asarray(atom[2])
                new = np.broadcast_to(new.ravel() if new.ndim else new, (n,))
            elif data is not None:
                new = np.asarray(data[idx]).ravel()
            else:
                continue
            out.append((idx, new))
    return out


def _is_tuple_atom(value: Any) -> bool:
    """A bare ``(indices, old[, new])`` atom rather than a list of atoms."""
    return (
        isinstance(value, tuple)
        and len(value) in (2, 3)
        and isinstance(value[0], tuple | np.ndarray)
        and isinstance(value[1], np.ndarray)
    )


class LiveAgreement(QObject):
    """Tracker + MHR kept in step with a set of annotator Labels layers.

    Parameters
    ----------
    layers : sequence of (mask_id, Labels layer)
        The annotator layers, in display order.
    mhr_layer : Image layer, optional
        Its float data is updated in place (touched pixels only) on each paint.
    debounce_ms : int
        Delay of the full resynchronisation after undo/redo/data replacement.

    Signals
    -------
    changed(bool) : emitted after an update; ``True`` if it was a full resync.
    """

    changed = Signal(bool)

    def __init__(
        self,
        layers: Sequence[tuple[str, Any]],
        mhr_layer: Any = None,
        debounce_ms: int = 150,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        from napari_iaa.agreement import AgreementTracker

        self.ids = [mid for mid, _ in layers]
        self.layers = {mid: layer for mid, layer in layers}
        self.mhr_layer = mhr_layer
        self.mirrors = {mid: np.asarray(lay.data) != 0 for mid, lay in layers}
        self.tracker = AgreementTracker({mid: self.mirrors[mid] for mid in self.ids})
        self.dirty: set[str] = set()
        self.n_paint_events = 0
        self.n_resyncs = 0
        self._votes = self._count_votes()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self.resync)
        # the MHR layer's display is refreshed at most every 50 ms (its data at once)
        self._mhr_timer = QTimer(self)
        self._mhr_timer.setSingleShot(True)
        self._mhr_timer.setInterval(50)
        self._mhr_timer.timeout.connect(self._refresh_mhr_display)
        self._connections: list[tuple[Any, Callable]] = []
        for mid in self.ids:
            lay = self.layers[mid]
            cbs = [
                (lay.events.paint, self._make_paint_cb(mid)),
                (lay.events.data, self._on_data),
                (lay.events.set_data, self._on_data),
                # a hidden layer's undo emits no set_data; catch up when it is shown
                (lay.events.visible, self._on_data),
            ]
            for emitter, cb in cbs:
                emitter.connect(cb)
                self._connections.append((emitter, cb))
        self._write_mhr(None)

    # -- bookkeeping -----------------------------------------------------------------
    def _count_votes(self) -> np.ndarray:
        if not self.ids:
            return np.zeros((0,), dtype=np.int16)
        votes = np.zeros(self.mirrors[self.ids[0]].shape, dtype=np.int16)
        for m in self.mirrors.values():
            votes += m
        return votes

    def disconnect_all(self) -> None:
        """Stop listening to the layers (call before dropping this object)."""
        self._timer.stop()
        self._mhr_timer.stop()
        for emitter, cb in self._connections:
            try:
                emitter.disconnect(cb)
            except Exception:  # emitter already gone with its layer
                pass
        self._connections = []

    # -- paint: O(changed pixels) ------------------------------------------------------
    def _make_paint_cb(self, mid: str) -> Callable:
        def _cb(event: Any) -> None:
            self.on_paint(mid, event.value)

        return _cb

    def on_paint(self, mid: str, value: Any) -> None:
        """Apply a paint event's changes of mask ``mid`` to mirror, tracker and MHR."""
        mirror = self.mirrors.get(mid)
        if mirror is None:
            return
        self.n_paint_events += 1
        touched: list[tuple[np.ndarray, ...]] = []
        for idx, new in paint_changes(value, self.layers[mid].data):
            if not idx or idx[0].size == 0:
                continue
            if len(idx) != mirror.ndim:  # shape changed under us: full resync
                self.schedule_resync()
                return
            new_fg = np.asarray(new) != 0
            old_fg = mirror[idx]
            for target in (True, False):
                sel = (new_fg == target) & (old_fg != target)
                if not sel.any():
                    continue
                sub = tuple(i[sel] for i in idx)
                # de-duplicate (a pixel listed twice would be counted twice)
                if sub[0].size > 1:
                    flat = np.unique(np.ravel_multi_index(sub, mirror.shape))
                    sub = np.unravel_index(flat, mirror.shape)
                    sub = tuple(np.asarray(s) for s in sub)
                    keep = mirror[sub] != target
                    sub = tuple(s[keep] for s in sub)
                if sub[0].size == 0:
                    continue
                mirror[sub] = target
                self.tracker.update(mid, sub, target, old_values=np.full(sub[0].size, not target))
                self._votes[sub] += 1 if target else -1
                touched.append(sub)
        if touched:
            self.dirty.add(mid)
            self._write_mhr(touched)
            self.changed.emit(False)

    # -- undo / redo / data replacement: debounced full resync ------------------------
    def _on_data(self, event: Any = None) -> None:
        self.schedule_resync()

    def schedule_resync(self) -> None:
        """(Re)start the debounce timer of the full resynchronisation."""
        self._timer.start()

    @property
    def resync_pending(self) -> bool:
        """Whether a full resynchronisation is scheduled."""
        return self._timer.isActive()

    def resync(self) -> bool:
        """Compare each layer with its mirror; recompute everything if any differ.

        Returns
        -------
        bool
            Whether anything had changed.
        """
        self._timer.stop()
        changed = False
        for mid in self.ids:
            data = np.asarray(self.layers[mid].data) != 0
            mirror = self.mirrors[mid]
            if data.shape != mirror.shape:
                # shape changed (layer.data = other-size array): cannot track
                return False
            if not np.array_equal(data, mirror):
                mirror[...] = data
                self.dirty.add(mid)
                changed = True
        if changed:
            self.n_resyncs += 1
            self.tracker.recompute()
            self._votes = self._count_votes()
            self._write_mhr(None)
            self.changed.emit(True)
        return changed

    # -- MHR ---------------------------------------------------------------------------
    def _write_mhr(self, touched: list[tuple[np.ndarray, ...]] | None) -> None:
        lay = self.mhr_layer
        if lay is None or not self.ids:
            return
        data = lay.data
        if not isinstance(data, np.ndarray) or data.shape != self._votes.shape:
            return
        n = float(len(self.ids))
        if touched is None:
            data[...] = self._votes / n
            self._refresh_mhr_display()
        else:
            for sub in touched:
                data[sub] = self._votes[sub] / n
            if not self._mhr_timer.isActive():
                self._mhr_timer.start()

    def _refresh_mhr_display(self) -> None:
        self._mhr_timer.stop()
        if self.mhr_layer is None:
            return
        try:
            self.mhr_layer.refresh()
        except Exception:  # layer removed meanwhile
            pass

    # -- read-outs -------------------------------------------------------------------
    def masks(self) -> dict[str, np.ndarray]:
        """The current boolean masks (the mirrors; do not modify)."""
        return {mid: self.mirrors[mid] for mid in self.ids}

    def stack(self) -> np.ndarray:
        """Current masks stacked (N, ...) in ``ids`` order."""
        return np.stack([self.mirrors[mid] for mid in self.ids])

    def mhr(self) -> np.ndarray:
        """Current MHR map (fraction of annotators per pixel)."""
        return (self._votes / max(len(self.ids), 1)).astype(np.float32)
