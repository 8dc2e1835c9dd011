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

Cost on the GUI thread per paint event: O(bounding box of the dab) for napari >= 0.8
masked atoms (mirror, votes and MHR are updated on the box only, the tracker in
O(changed pixels x masks)); the MHR layer's display is refreshed at most every 100 ms. The
whole-image set-up (mirrors, tracker counts, votes, MHR display) is :func:`prepare_live`,
which the review dock runs in a thread worker for large cases. Large MHR maps are shown at
a lower resolution (block means, see :func:`mhr_factor`) so that a display refresh stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, QTimer, Signal

__all__ = ["paint_changes", "LiveAgreement", "prepare_live", "mhr_factor", "mhr_display"]


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


#: MHR maps with more pixels than this are displayed as k x k block means (scaled layer).
MHR_DISPLAY_MAX_PIXELS = 1 << 21


def mhr_factor(shape: Sequence[int], max_pixels: int = MHR_DISPLAY_MAX_PIXELS) -> int:
    """Down-sampling factor ``k`` of the MHR display for masks of ``shape`` (2-D only).

    ``1`` (full resolution) when the masks have at most ``max_pixels`` pixels.
    """
    if len(shape) != 2:
        return 1
    n = int(shape[0]) * int(shape[1])
    if n <= max_pixels:
        return 1
    return int(np.ceil(np.sqrt(n / max_pixels)))


def block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """k x k block means of a 2-D map (edge blocks average their valid pixels), float32."""
    a = np.asarray(a, np.float32)
    if k <= 1 or a.ndim != 2:
        return a
    h, w = a.shape
    ph, pw = (-h) % k, (-w) % k
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw)))
    hb, wb = a.shape[0] // k, a.shape[1] // k
    sums = a.reshape(hb, k, wb, k).sum(axis=(1, 3), dtype=np.float32)
    cnt_r = np.minimum(k, h - np.arange(hb) * k).astype(np.float32)
    cnt_c = np.minimum(k, w - np.arange(wb) * k).astype(np.float32)
    return sums / (cnt_r[:, None] * cnt_c[None, :])


def mhr_display(votes: np.ndarray, n_masks: int, k: int, box: tuple[slice, ...] | None = None
                ) -> tuple[tuple[slice, ...], np.ndarray]:
    """MHR display values (float32) from vote counts, down-sampled by block means.

    Parameters
    ----------
    votes : (H, W) int array
        Number of masks that mark each pixel.
    n_masks : int
        Number of masks.
    k : int
        Block size (``1``: full resolution).
    box : tuple of slice, optional
        Only the display blocks covering this full-resolution box.

    Returns
    -------
    (display slices, values)
        Where to write ``values`` in the display array.
    """
    n = float(max(n_masks, 1))
    if box is None:
        box = tuple(slice(0, d) for d in votes.shape)
    if k == 1:
        return box, (votes[box] / n).astype(np.float32)
    (h, w) = votes.shape
    b0 = [int(s.start or 0) // k for s in box]
    b1 = [-(-int(s.stop if s.stop is not None else d) // k) for s, d in zip(box, (h, w), strict=True)]
    # the sub-image starts on a block boundary, so its edge blocks are the image's
    sub = votes[b0[0] * k:min(b1[0] * k, h), b0[1] * k:min(b1[1] * k, w)].astype(np.float32)
    vals = block_mean(sub, k) / np.float32(n)
    return (slice(b0[0], b1[0]), slice(b0[1], b1[1])), vals.astype(np.float32)


def prepare_live(masks: Sequence[tuple[str, Any]], mhr_max_pixels: int = MHR_DISPLAY_MAX_PIXELS
                 ) -> dict[str, Any]:
    """Whole-image set-up of a :class:`LiveAgreement` (thread-safe; run it in a worker).

    Parameters
    ----------
    masks : sequence of (mask_id, array)
        Masks in display order (nonzero = foreground); not modified.
    mhr_max_pixels : int
        Above this many pixels the MHR display is down-sampled (see :func:`mhr_factor`).

    Returns
    -------
    dict
        ``ids``, ``mirrors`` (bool copies), ``tracker``, ``votes`` (int16), ``mhr_k`` and
        ``mhr`` (the display array, float32).
    """
    from napari_iaa.agreement import AgreementTracker

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
    return {"ids": ids, "mirrors": mirrors, "tracker": tracker, "votes": votes, "mhr_k": k, "mhr": mhr}


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
    prepared : dict, optional
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
        prepared: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(parent)
        self.ids = [mid for mid, _ in layers]
        self.layers = {mid: layer for mid, layer in layers}
        self.mhr_layer = mhr_layer
        if prepared is None or prepared.get("ids") != self.ids:
            prepared = prepare_live([(mid, lay.data) for mid, lay in layers])
        self.mirrors: dict[str, np.ndarray] = prepared["mirrors"]
        self.tracker = prepared["tracker"]
        self._votes: np.ndarray = prepared["votes"]
        self.dirty: set[str] = set()
        self.n_paint_events = 0
        self.n_resyncs = 0
        #: counts every change of the mirrors (stale-result detection for workers)
        self.n_edits = 0
        self._resync_ids: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self.resync)
        self._mhr_timer = QTimer(self)
        self._mhr_timer.setSingleShot(True)
        self._mhr_timer.setInterval(self.mhr_refresh_ms)
        self._mhr_timer.timeout.connect(self._refresh_mhr_display)
        self._connections: list[tuple[Any, Callable]] = []
        for mid in self.ids:
            lay = self.layers[mid]
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
        self.mhr_k = self._mhr_layer_factor()
        pre_mhr = prepared.get("mhr")
        if (
            self.mhr_k
            and pre_mhr is not None
            and prepared.get("mhr_k") == self.mhr_k
            and isinstance(getattr(mhr_layer, "data", None), np.ndarray)
            and mhr_layer.data.shape == pre_mhr.shape
        ):
            if mhr_layer.data is not pre_mhr and not np.array_equal(mhr_layer.data, pre_mhr):
                mhr_layer.data[...] = pre_mhr
                self._refresh_mhr_display()
        else:
            self._write_mhr(None)

    # -- bookkeeping -----------------------------------------------------------------
    def _count_votes(self) -> np.ndarray:
        if not self.ids:
            return np.zeros((0,), dtype=np.int16)
        votes = np.zeros(self.mirrors[self.ids[0]].shape, dtype=np.int16)
        for m in self.mirrors.values():
            votes += m
        return votes

    def _mhr_layer_factor(self) -> int:
        """Down-sampling factor of the MHR layer's data (0: unusable shape)."""
        lay = self.mhr_layer
        if lay is None or not self.ids or not isinstance(getattr(lay, "data", None), np.ndarray):
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
        mirror = self.mirrors.get(mid)
        if mirror is None:
            return
        self.n_paint_events += 1
        touched: list[tuple[slice, ...]] = []
        pending: list[tuple[np.ndarray, np.ndarray]] = []
        atoms = value if isinstance(value, list | tuple) and not _is_tuple_atom(value) else [value]
        if len(atoms) == 1 and hasattr(atoms[0], "slice_key"):
            # a single dab (``layer.paint``): the tracker's box update needs no sorting
            got = self._apply_masked_atom(mid, atoms[0], tell=True)
            if got is None:
                self._resync_ids.add(mid)
                self.schedule_resync()
            elif got:
                self.dirty.add(mid)
                self.n_edits += 1
                self._write_mhr([got[0]])
                self.changed.emit(False)
            return
        resync = False
        for atom in atoms:
            if hasattr(atom, "slice_key"):
                got = self._apply_masked_atom(mid, atom)
                if got is None:
                    resync = True
                    break
                if got:
                    touched.append(got[0])
                    pending.append((got[1], got[2]))
                continue
            self._flush(mid, pending)
            pending = []
            for idx, new in paint_changes(atom, self.layers[mid].data):
                if not idx or idx[0].size == 0:
                    continue
                if len(idx) != mirror.ndim:  # shape changed under us: full resync
                    resync = True
                    break
                box = self._apply_indices(mid, idx, new)
                if box:
                    touched.append(box)
            if resync:
                break
        self._flush(mid, pending)
        if resync:
            self._resync_ids.add(mid)
            self.schedule_resync()
        if touched:
            self.dirty.add(mid)
            self.n_edits += 1
            self._write_mhr(touched)
            self.changed.emit(False)

    def _apply_masked_atom(self, mid: str, atom: Any, tell: bool = False
                           ) -> tuple[tuple[slice, ...], np.ndarray, np.ndarray] | tuple | None:
        """Apply a napari >= 0.8 masked atom to the mirror (its bounding box only).

        Returns ``(box, flat indices of the flipped pixels, their new values)``, ``()``
        if nothing changed, ``None`` if the atom does not fit the mirror (resync needed).
        The tracker and the votes are told later, by :meth:`_flush`, unless ``tell``:
        then at once, through the tracker's box update (flat indices not computed).
        """
        mirror = self.mirrors[mid]
        key = tuple(atom.slice_key)
        if len(key) != mirror.ndim or not all(isinstance(s, slice) for s in key):
            return None
        box = tuple(slice(*s.indices(d)[:2]) for s, d in zip(key, mirror.shape, strict=True))
        region = mirror[box]
        if region.size == 0:
            return ()
        fg = bool(np.asarray(atom.new_value) != 0)
        if atom.mask is None:
            m = np.ones(region.shape, bool)
        else:
            m = np.asarray(atom.mask, dtype=bool)
            if m.shape != region.shape:
                try:
                    m = m.reshape(region.shape)
                except ValueError:
                    return None
        flip = m & (region != fg)
        if tell:
            if not flip.any():
                return ()
            old = region.copy()
            region[flip] = fg
            self.tracker.update_region(mid, box, old_values=old, new_values=region)
            self._votes[box] += flip.astype(np.int16) if fg else -flip.astype(np.int16)
            return box, np.zeros(0, np.intp), np.zeros(0, bool)
        local = np.nonzero(flip)
        if local[0].size == 0:
            return ()
        region[flip] = fg
        glob = tuple(x + int(s.start) for x, s in zip(local, box, strict=True))
        flat = np.ravel_multi_index(glob, mirror.shape)
        return box, flat, np.full(flat.size, fg)

    def _flush(self, mid: str, pending: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Tell the tracker and the votes the net flips collected from masked atoms."""
        if not pending:
            return
        if len(pending) == 1:
            flat, new = pending[0]  # one atom: each pixel flipped once
        else:
            flat = np.concatenate([f for f, _ in pending])
            new = np.concatenate([v for _, v in pending])
            # a pixel flipped k times changed iff k is odd; it ends at its last value
            order = np.argsort(flat, kind="stable")
            f, v = flat[order], new[order]
            uniq, first, counts = np.unique(f, return_index=True, return_counts=True)
            odd = (counts % 2) == 1
            flat, new = uniq[odd], v[first + counts - 1][odd]
        if flat.size == 0:
            return
        self.tracker.update(mid, flat, new, old_values=~new)
        self._votes.reshape(-1)[flat] += np.where(new, 1, -1).astype(np.int16)

    def _apply_indices(self, mid: str, idx: tuple[np.ndarray, ...], new: np.ndarray
                       ) -> tuple[slice, ...] | None:
        """An ``(indices, old[, new])`` atom: O(listed pixels); returns the touched box."""
        mirror = self.mirrors[mid]
        new_fg = np.asarray(new) != 0
        old_fg = mirror[idx]
        lo: list[int] | None = None
        hi: list[int] | None = None
        for target in (True, False):
            sel = (new_fg == target) & (old_fg != target)
            if not sel.any():
                continue
            sub = tuple(i[sel] for i in idx)
            # de-duplicate (a pixel listed twice would be counted twice)
            if sub[0].size > 1:
                flat = np.unique(np.ravel_multi_index(sub, mirror.shape))
                sub = tuple(np.asarray(s) for s in np.unravel_index(flat, mirror.shape))
                keep = mirror[sub] != target
                sub = tuple(s[keep] for s in sub)
            if sub[0].size == 0:
                continue
            mirror[sub] = target
            self.tracker.update(mid, sub, target, old_values=np.full(sub[0].size, not target))
            self._votes[sub] += 1 if target else -1
            smin = [int(s.min()) for s in sub]
            smax = [int(s.max()) + 1 for s in sub]
            lo = smin if lo is None else [min(a, b) for a, b in zip(lo, smin, strict=True)]
            hi = smax if hi is None else [max(a, b) for a, b in zip(hi, smax, strict=True)]
        if lo is None or hi is None:
            return None
        return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))

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
        """Compare layers with their mirrors and apply the differences.

        Only the layers that reported a data change since the last resync are read (all
        of them when none is known): O(pixels) per such layer to compare, then
        O(changed pixels x masks) for the tracker, votes and MHR. Returns whether
        anything had changed.
        """
        self._timer.stop()
        ids = [mid for mid in self.ids if mid in self._resync_ids] or list(self.ids)
        self._resync_ids.clear()
        changed: list[str] = []
        boxes: list[tuple[slice, ...]] = []
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
            changed.append(mid)
        if changed:
            self.n_resyncs += 1
            self.n_edits += 1
            self._write_mhr(boxes)
            self._refresh_mhr_display()
            self.changed.emit(True)
        return bool(changed)

    # -- MHR ---------------------------------------------------------------------------
    def _write_mhr(self, touched: list[tuple[slice, ...]] | None) -> None:
        lay = self.mhr_layer
        k = getattr(self, "mhr_k", None)
        if k is None:
            k = self.mhr_k = self._mhr_layer_factor()
        if lay is None or not self.ids or not k:
            return
        data = lay.data
        n = len(self.ids)
        if touched is None:
            where, vals = mhr_display(self._votes, n, k)
            data[where] = vals
            self._refresh_mhr_display()
        else:
            for box in touched:
                where, vals = mhr_display(self._votes, n, k, box)
                data[where] = vals
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
        """Current masks stacked (N, ...) in ``ids`` order (a copy: whole-image work)."""
        return np.stack([self.mirrors[mid] for mid in self.ids])

    def mhr(self) -> np.ndarray:
        """Current MHR map at full resolution (fraction of annotators per pixel)."""
        return (self._votes / max(len(self.ids), 1)).astype(np.float32)
