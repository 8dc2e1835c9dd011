"""Live pairwise agreement for one case: counts updated in O(changed pixels x masks).

The tracker holds references to the caller's arrays (for instance the ``data`` of
napari Labels layers) and keeps, per mask, the foreground count and, per pair, the
intersection count (int64, exact). A paint event tells it which pixels of one mask
changed and what they held before; for each other mask it adds or subtracts that mask's
foreground under the changed pixels. Undo, redo and ``layer.data = ...`` call
:meth:`AgreementTracker.recompute` or :meth:`AgreementTracker.set_mask`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from napari_iaa.agreement import _kernels
from napari_iaa.agreement._box import (
    box_changes,
    box_region,
    compiled_payload,
    masked_box_changes,
    row_offsets,
)
from napari_iaa.agreement._counts import pairwise_counts, row_counts, sorted_unique
from napari_iaa.agreement.metrics import (
    EmptyRule,
    as_mask_list,
    dice_from_counts,
    iaa_from_matrix,
    iou_from_counts,
    rater_list,
)
from napari_iaa.errors import ConfigError, ShapeMismatchError

__all__ = ["AgreementTracker"]


class AgreementTracker:
    """Per-mask foreground counts and pairwise intersection counts, kept up to date.

    Parameters
    ----------
    masks : mapping, sequence, stacked array or Case-like
        The arrays are referenced, not copied: edit them in place and report the edit
        with :meth:`update`, :meth:`update_region` or :meth:`update_from_history`.
    raters : mapping or sequence, optional
        Annotator of each mask, for ``iaa(same_rater_pairs=False)``.

    Notes
    -----
    Every update method is called *after* the mask holds its new values (napari paints
    first, then emits the event) and needs the old values, which napari's paint event
    carries. Foreground is nonzero, so label values > 1 count as foreground. Masks and
    edit boxes may have any number of dimensions (2D images, 3D volumes).
    """

    #: changed pixels of a box edit gathered per pass (bounds the compiled update's memory)
    edit_chunk: int = _kernels.EDIT_CHUNK

    def __init__(self, masks: Any, raters: Mapping[str, str] | Sequence[str] | None = None):
        if raters is None and hasattr(masks, "raters") and isinstance(masks.raters, Mapping):
            raters = masks.raters
        ids, arrays = as_mask_list(masks)
        if len(set(ids)) != len(ids):
            raise ConfigError(f"duplicate mask ids: {ids}")
        self._ids: list[str] = ids
        self._arrays: list[np.ndarray] = arrays
        self._raters = rater_list(ids, raters)
        self._shape = arrays[0].shape if arrays else None
        self._counts = np.zeros(len(ids), np.int64)
        self._inter = np.zeros((len(ids), len(ids)), np.int64)
        self.recompute()
        self._prime_kernels()

    def _prime_kernels(self) -> None:
        """Compile (or load from numba's cache) the stroke kernels for this many masks now.

        The tracker is usually built in a worker thread; without this the first brush
        stroke would compile on the GUI thread. A no-op edit of one pixel does it.
        """
        flats = self._byte_flats()
        if flats is None or not flats or flats[0].size == 0:
            return
        empty = np.zeros(0, np.intp)
        _kernels.row_delta(flats, 0, empty, empty, np.zeros(len(flats), np.int64))
        one = np.zeros(1, np.bool_)
        _kernels.box_delta(flats, 0, np.zeros(1, np.int64), 1, 1, np.ones((1, 1), np.bool_),
                           one, one, False, _kernels.EDIT_CHUNK, np.zeros(len(flats), np.int64))

    # ------------------------------------------------------------------ state
    @property
    def mask_ids(self) -> list[str]:
        """Mask ids in matrix order."""
        return list(self._ids)

    @property
    def counts(self) -> np.ndarray:
        """Foreground pixel count per mask (int64, a copy)."""
        return self._counts.copy()

    @property
    def intersections(self) -> np.ndarray:
        """Pairwise intersection counts (N x N int64, diagonal = counts; a copy)."""
        return self._inter.copy()

    @property
    def raters(self) -> list[str] | None:
        """Annotator of each mask in matrix order, if known."""
        return None if self._raters is None else list(self._raters)

    def __len__(self) -> int:
        return len(self._ids)

    def _index(self, mask_id: str | int) -> int:
        try:
            return self._ids.index(str(mask_id))
        except ValueError:
            raise ConfigError(f"unknown mask id {mask_id!r}; known: {self._ids}") from None

    def _byte_flats(self) -> tuple[np.ndarray, ...] | None:
        """Flat uint8 views of all masks for the compiled gather, or None.

        Only when numba is available and every mask is a C-contiguous one-byte array (bool,
        uint8, int8: napari's Labels of a binary mask); views, never copies.
        """
        if not _kernels.AVAILABLE:
            return None
        out = []
        for a in self._arrays:
            if a.dtype.itemsize != 1 or a.dtype.kind not in "biu" or not a.flags.c_contiguous:
                return None
            out.append(a.reshape(-1).view(np.uint8))
        return tuple(out)

    @staticmethod
    def _flat_view(a: np.ndarray) -> np.ndarray | None:
        return a.reshape(-1) if a.flags.c_contiguous else None

    # ---------------------------------------------------------------- results
    def dice_matrix(self, empty: EmptyRule = "zero") -> np.ndarray:
        """N x N pairwise Dice from the current counts."""
        return dice_from_counts(self._counts, self._inter, empty)

    def iou_matrix(self, empty: EmptyRule = "zero") -> np.ndarray:
        """N x N pairwise IoU from the current counts."""
        return iou_from_counts(self._counts, self._inter, empty)

    def iaa(self, empty: EmptyRule = "zero", same_rater_pairs: bool = True) -> float:
        """Mean pairwise Dice over unordered pairs (NaN with fewer than two masks)."""
        if len(self._ids) < 2:
            dice_from_counts(self._counts, self._inter, empty)  # validates ``empty``
            return float("nan")
        return iaa_from_matrix(self.dice_matrix(empty), self._raters, same_rater_pairs)

    # ------------------------------------------------------------- recompute
    def recompute(self) -> None:
        """Recount everything from the arrays (one read of each mask)."""
        self._counts, self._inter = pairwise_counts(self._arrays)

    def set_mask(self, mask_id: str, array: Any, rater: str | None = None) -> None:
        """Replace (or add) a mask's array and recount its row of the matrix.

        Parameters
        ----------
        mask_id : str
            An existing id (replaced) or a new one (appended).
        array : array_like
            Referenced, not copied (unless it is not an ndarray).
        rater : str, optional
            Annotator of a new mask (defaults to ``mask_id``).
        """
        a = np.asarray(array)
        if self._shape is not None and a.shape != self._shape:
            raise ShapeMismatchError(
                f"mask {mask_id!r} has shape {a.shape}, but the case's masks have {self._shape}"
            )
        self._shape = a.shape
        mask_id = str(mask_id)
        if mask_id in self._ids:
            i = self._ids.index(mask_id)
            self._arrays[i] = a
        else:
            self._ids.append(mask_id)
            self._arrays.append(a)
            if self._raters is not None:
                self._raters.append(str(rater) if rater is not None else mask_id)
            n = len(self._ids)
            counts = np.zeros(n, np.int64)
            counts[:-1] = self._counts
            inter = np.zeros((n, n), np.int64)
            inter[:-1, :-1] = self._inter
            self._counts, self._inter = counts, inter
            i = n - 1
        row = row_counts(self._arrays, i)
        self._inter[i, :] = row
        self._inter[:, i] = row
        self._counts[i] = row[i]

    def remove_mask(self, mask_id: str) -> None:
        """Stop tracking a mask."""
        i = self._index(mask_id)
        del self._ids[i]
        del self._arrays[i]
        if self._raters is not None:
            del self._raters[i]
        keep = np.arange(len(self._counts)) != i
        self._counts = self._counts[keep].copy()
        self._inter = np.ascontiguousarray(self._inter[np.ix_(keep, keep)])
        if not self._ids:
            self._shape = None

    # --------------------------------------------------------------- updates
    def _to_flat(self, indices: Any) -> np.ndarray:
        if isinstance(indices, tuple):
            if len(indices) != len(self._shape):
                raise ConfigError(
                    f"indices have {len(indices)} axes but the masks have {len(self._shape)}"
                )
            idx = [np.asarray(x, np.intp).reshape(-1) for x in indices]
            if idx and idx[0].size == 0:
                return np.zeros(0, np.intp)
            return np.ravel_multi_index(tuple(idx), self._shape)
        return np.asarray(indices, np.intp).reshape(-1)

    def _index_arrays(self, indices: Any) -> tuple[Any, int]:
        """``indices`` as 1-D index arrays (a tuple, one per axis) or flat indices, and size."""
        if isinstance(indices, tuple):
            if len(indices) != len(self._shape):
                raise ConfigError(
                    f"indices have {len(indices)} axes but the masks have {len(self._shape)}"
                )
            sel = tuple(np.asarray(x, np.intp).reshape(-1) for x in indices)
            return sel, (sel[0].size if sel else 0)
        flat = np.asarray(indices, np.intp).reshape(-1)
        return flat, flat.size

    def _apply(self, i: int, gained: np.ndarray, lost: np.ndarray) -> None:
        """Mask ``i`` became foreground at flat ``gained`` and background at ``lost``."""
        ng, nl = gained.size, lost.size
        if ng == 0 and nl == 0:
            return
        self._counts[i] += ng - nl
        self._inter[i, i] = self._counts[i]
        flats = self._byte_flats()
        if flats is not None:  # one compiled gather over all the other masks
            delta = np.zeros(len(flats), np.int64)
            _kernels.row_delta(
                flats, i, np.asarray(gained, np.intp), np.asarray(lost, np.intp), delta
            )
            delta[i] = 0
            self._inter[i, :] += delta
            self._inter[:, i] += delta
            return
        for j, a in enumerate(self._arrays):
            if j == i:
                continue
            flat = self._flat_view(a)
            if flat is not None:
                d = int(np.count_nonzero(flat[gained])) - int(np.count_nonzero(flat[lost]))
            else:
                d = int(np.count_nonzero(a[np.unravel_index(gained, a.shape)])) - int(
                    np.count_nonzero(a[np.unravel_index(lost, a.shape)])
                )
            if d:
                self._inter[i, j] += d
                self._inter[j, i] += d

    def update(
        self,
        mask_id: str,
        indices: Any,
        new_value: Any,
        old_values: Any = None,
    ) -> None:
        """Account for pixels of one mask that changed (napari < 0.8 payload style).

        Parameters
        ----------
        mask_id : str
            The mask that was edited (it already holds the new values).
        indices : tuple of index arrays or array of flat indices
            The pixels written. A pixel listed more than once counts once.
        new_value : scalar or array
            Value(s) written, broadcast to the pixels.
        old_values : array
            Values the pixels held before the edit (required: the tracker keeps no
            copy of the masks, so it cannot know them).

        Notes
        -----
        Cost: O(changed pixels x masks).
        """
        if old_values is None:
            raise ConfigError(
                "AgreementTracker.update needs the old values of the changed pixels "
                "(napari's paint event carries them); call recompute() if they are unknown"
            )
        i = self._index(mask_id)
        sel, size = self._index_arrays(indices)
        old = np.broadcast_to(
            np.asarray(old_values).reshape(-1) if np.ndim(old_values) else old_values, (size,)
        )
        new = np.broadcast_to(
            np.asarray(new_value).reshape(-1) if np.ndim(new_value) else new_value, (size,)
        )
        new_fg = new != 0
        changed = (old != 0) != new_fg
        if not changed.any():
            return
        # flat indices of the changed pixels only (about half of a dab on a border)
        flat = self._to_flat(tuple(x[changed] for x in sel) if isinstance(sel, tuple)
                             else sel[changed])
        became_fg = new_fg[changed]
        gained = sorted_unique(flat[became_fg])
        lost = sorted_unique(flat[~became_fg])
        if gained.size and lost.size and np.intersect1d(gained, lost, assume_unique=True).size:
            raise ConfigError(
                f"update of mask {mask_id!r}: a pixel is listed twice with conflicting "
                "old/new values; call recompute() instead"
            )
        self._apply(i, gained, lost)

    def update_region(
        self,
        mask_id: str,
        slices: Any,
        old_values: Any,
        new_values: Any = None,
        region_mask: Any = None,
    ) -> None:
        """Account for an edit inside a box (napari >= 0.8 masked-atom payload style).

        Parameters
        ----------
        mask_id : str
            The mask that was edited (it already holds the new values).
        slices : tuple of slice
            The bounding box of the edit.
        old_values : array
            Without ``region_mask``: the whole box's previous values. With it: the
            previous values of the pixels under ``region_mask`` (1-D).
        new_values : scalar or array, optional
            What was written (box-shaped, or 1-D under ``region_mask``, or a scalar);
            read from the mask when not given (correct when no later edit overlapped).
        region_mask : bool array, optional
            Which pixels of the box were written (box-shaped).

        Notes
        -----
        Cost: O(box pixels) to find the changed pixels, then O(changed x masks).
        """
        i = self._index(mask_id)
        starts, steps, lens = box_region(slices, self._shape)
        box = tuple(
            slice(s, s + st * n, st) if n else slice(s, s)
            for s, st, n in zip(starts, steps, lens, strict=True)
        )
        flats = self._byte_flats()
        if flats is not None and lens and all(lens):
            self._update_box_compiled(flats, i, starts, steps, lens, box, old_values,
                                      new_values, region_mask)
            return
        if region_mask is None:
            gained_box, lost_box = box_changes(self._arrays[i][box], lens, old_values,
                                               new_values)
        else:
            gained_box, lost_box = masked_box_changes(self._arrays[i][box], lens, old_values,
                                                      new_values, region_mask)

        def to_flat(sel: np.ndarray) -> np.ndarray:
            local = np.nonzero(sel)
            glob = tuple(s + st * x for s, st, x in zip(starts, steps, local, strict=True))
            if not glob or glob[0].size == 0:
                return np.zeros(0, np.intp)
            return np.ravel_multi_index(glob, self._shape)

        self._apply(i, to_flat(gained_box), to_flat(lost_box))

    def _update_box_compiled(self, flats, i, starts, steps, lens, box, old_values, new_values,
                             region_mask) -> None:
        """``update_region`` in one compiled pass over the box (no index arrays)."""
        rm, old, new, scalar = compiled_payload(
            lambda: np.asarray(self._arrays[i][box]), lens, old_values, new_values, region_mask
        )
        row_off = row_offsets(self._shape, starts, steps, lens)
        # foreground as bool (one compiled signature per number of masks, whatever the
        # dtypes of the payload); O(pixels written), small next to the gathers
        delta = np.zeros(len(flats), np.int64)
        _kernels.box_delta(flats, i, row_off, int(steps[-1]), int(lens[-1]), rm,
                           np.not_equal(old, 0), np.not_equal(new, 0), scalar,
                           self.edit_chunk, delta)
        if not delta.any():
            return
        self._counts[i] += delta[i]
        self._inter[i, i] = self._counts[i]
        d = delta.copy()
        d[i] = 0
        self._inter[i, :] += d
        self._inter[:, i] += d

    def update_from_history(self, mask_id: str, atoms: Any) -> None:
        """Apply napari Labels paint-event history atoms, in order.

        Parameters
        ----------
        mask_id : str
            The layer's mask id.
        atoms : list
            ``event.value`` of a Labels ``paint`` event: items are either
            ``(indices, old_values, new_values)`` tuples (``data_setitem``) or
            masked atoms with ``slice_key``, ``mask``, ``old_values`` and ``new_value``
            (napari >= 0.8 ``paint``/``fill``/``paint_polygon``). A single atom is
            accepted too.
        """
        if hasattr(atoms, "slice_key") or (
            isinstance(atoms, tuple)
            and len(atoms) == 3
            and not hasattr(atoms[0], "slice_key")
            and isinstance(atoms[0], tuple)
        ):
            atoms = [atoms]
        for atom in atoms:
            if hasattr(atom, "slice_key"):
                self.update_region(
                    mask_id, atom.slice_key, atom.old_values, atom.new_value, region_mask=atom.mask
                )
            else:
                indices, old_values, new_values = atom
                self.update(mask_id, indices, new_values, old_values)
