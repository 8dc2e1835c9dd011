"""Which pixels of an edited box changed between background and foreground.

Boxes have any number of dimensions (a 2D dab, a 3D ball, a fill of a whole volume).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from napari_iaa.errors import ConfigError


def box_changes(current: np.ndarray, lens: tuple[int, ...], old_values: Any,
                new_values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Box pixels that became foreground / background (values given for the whole box).

    ``current`` is the mask's box as it is now (read when ``new_values`` is None).
    """
    old = np.asarray(old_values)
    if old.shape != lens:
        old = np.broadcast_to(old, lens)
    new = (np.asarray(current) if new_values is None
           else np.broadcast_to(np.asarray(new_values), lens))
    old_fg = old != 0
    new_fg = new != 0
    return new_fg & ~old_fg, old_fg & ~new_fg


def masked_box_changes(current: np.ndarray, lens: tuple[int, ...], old_values: Any,
                       new_values: Any, region_mask: Any) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`box_changes` for values given only under ``region_mask`` (1-D)."""
    rm = np.asarray(region_mask, bool)
    if rm.shape != lens:
        raise ConfigError(f"region_mask has shape {rm.shape}, the region has {lens}")
    k = int(np.count_nonzero(rm))
    old = np.broadcast_to(
        np.asarray(old_values).reshape(-1) if np.ndim(old_values) else old_values, (k,)
    )
    if new_values is None:
        new = np.asarray(current)[rm]
    else:
        new = np.broadcast_to(
            np.asarray(new_values).reshape(-1) if np.ndim(new_values) else new_values, (k,)
        )
    old_fg = old != 0
    new_fg = new != 0
    gained = np.zeros(lens, bool)
    lost = np.zeros(lens, bool)
    gained[rm] = new_fg & ~old_fg
    lost[rm] = old_fg & ~new_fg
    return gained, lost


def row_offsets(shape: Sequence[int], starts: Sequence[int], steps: Sequence[int],
                lens: Sequence[int]) -> np.ndarray:
    """Flat index (C order, in an array of ``shape``) of the first pixel of every box row.

    A row runs along the last axis; the rows are all combinations of the other axes'
    positions, in C order: ``prod(lens[:-1])`` offsets (one per row of a 2D box, one per
    row of every plane of a 3D box).
    """
    strides = [int(np.prod(shape[d + 1:], dtype=np.int64)) for d in range(len(shape))]
    outer = np.zeros(1, np.int64)
    for d in range(len(lens) - 1):
        ax = (starts[d] + steps[d] * np.arange(lens[d], dtype=np.int64)) * strides[d]
        outer = (outer[:, None] + ax[None, :]).reshape(-1)
    return outer + starts[-1] * strides[-1]


def compiled_payload(current: Callable[[], np.ndarray], lens: tuple[int, ...], old_values: Any,
                     new_values: Any, region_mask: Any
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """A box edit's payload as the compiled update takes it: ``(rm, old, new, scalar)``.

    ``rm`` is the region mask as (rows, last axis) or an empty array for the whole box;
    ``old``/``new`` the 1-D values of the written pixels in C order (``new`` one value
    when ``scalar``); ``current()`` reads the box as it is now (when ``new_values`` is
    None). Raises :class:`ConfigError` when the sizes disagree.
    """
    if region_mask is None:
        rm = np.zeros((0, 0), np.bool_)  # the whole box: no box-sized mask
        k = int(np.prod(lens))
        old = np.asarray(old_values)
        old = old.reshape(-1) if old.shape == lens else np.broadcast_to(old, lens).reshape(-1)
    else:
        full = np.asarray(region_mask, bool)
        if full.shape != lens:
            raise ConfigError(f"region_mask has shape {full.shape}, the region has {lens}")
        rm = np.ascontiguousarray(full.reshape(-1, lens[-1]))
        k = int(np.count_nonzero(rm))
        old = np.asarray(old_values).reshape(-1) if np.ndim(old_values) else np.asarray([old_values])
        if old.size == 1 and k != 1:
            old = np.broadcast_to(old, (k,))
    if new_values is None:
        cur = current()
        new = cur.reshape(-1) if region_mask is None else cur[np.asarray(region_mask, bool)]
        scalar = False
    elif np.ndim(new_values) == 0:
        new, scalar = np.asarray([new_values]), True
    else:
        new = np.asarray(new_values).reshape(-1)
        scalar = new.size == 1 and k != 1
    if old.size != k or (not scalar and new.size != k):
        raise ConfigError(
            f"update_region: {k} pixels in the region but {old.size} old and "
            f"{new.size} new values"
        )
    return rm, old, new, scalar


def box_region(slices: Any, shape: Sequence[int]) -> tuple[list[int], list[int], tuple[int, ...]]:
    """(starts, steps, lengths) of a box given as slices (missing trailing axes: whole)."""
    if not isinstance(slices, tuple):
        slices = (slices,)
    if len(slices) > len(shape):
        raise ConfigError(
            f"region has {len(slices)} axes but the masks have {len(shape)}"
        )
    slices = slices + (slice(None),) * (len(shape) - len(slices))
    starts, steps, lens = [], [], []
    for s, dim in zip(slices, shape, strict=True):
        if not isinstance(s, slice):
            raise ConfigError(f"region must be a tuple of slices, got {s!r}")
        start, stop, step = s.indices(dim)
        starts.append(start)
        steps.append(step)
        lens.append(len(range(start, stop, step)))
    return starts, steps, tuple(lens)
