"""Brush strokes through ``update()`` in every index order keep the counts exact.

A property test against a recount in plain numpy: pixel lists sorted (a dab's rows in
order: the tracker's fast path), shuffled, with repeated pixels, as flat indices or one
array per axis, painting and erasing, on 15 masks of bool and label bytes.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_iaa.agreement import AgreementTracker
from napari_iaa.errors import ConfigError


def _recount(masks):
    fg = [m != 0 for m in masks]
    return np.array([[np.count_nonzero(a & b) for b in fg] for a in fg])


def _dab(rng, shape, r):
    cy, cx = (int(rng.integers(0, s)) for s in shape)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    keep = yy * yy + xx * xx <= r * r
    y, x = yy[keep] + cy, xx[keep] + cx
    inside = (y >= 0) & (y < shape[0]) & (x >= 0) & (x < shape[1])
    return y[inside], x[inside]


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.int8])
@pytest.mark.parametrize("order", ["sorted", "shuffled", "repeated", "flat"])
def test_strokes_match_a_recount(dtype, order):
    rng = np.random.default_rng([np.dtype(dtype).num, ["sorted", "shuffled", "repeated", "flat"].index(order)])
    shape = (61, 47)
    masks = [(rng.random(shape) < 0.3 + 0.02 * i).astype(dtype) for i in range(15)]
    tr = AgreementTracker({f"m{i}": m for i, m in enumerate(masks)})
    for _ in range(40):
        k = int(rng.integers(15))
        y, x = _dab(rng, shape, int(rng.integers(0, 9)))
        if order == "shuffled":
            p = rng.permutation(y.size)
            y, x = y[p], x[p]
        elif order == "repeated" and y.size:
            p = np.concatenate([np.arange(y.size), rng.integers(0, y.size, y.size // 2)])
            y, x = y[p], x[p]
        value = dtype(rng.integers(0, 2)) if dtype == np.bool_ else dtype(rng.choice([0, 1, 5, 124]))
        old = masks[k][y, x].copy()
        masks[k][y, x] = value
        idx = np.ravel_multi_index((y, x), shape) if order == "flat" else (y, x)
        tr.update(f"m{k}", idx, value, old)
        np.testing.assert_array_equal(tr.intersections, _recount(masks))
        np.testing.assert_array_equal(tr.counts, np.diag(_recount(masks)))


def test_conflicting_duplicate_pixels_are_refused():
    masks = [np.zeros((4, 4), bool) for _ in range(3)]
    tr = AgreementTracker(masks)
    # pixel (1, 1) listed twice: once as gained (0 -> 1), once as lost (1 -> 0)
    with pytest.raises(ConfigError, match="listed twice"):
        tr.update(0, (np.array([1, 1]), np.array([1, 1])), np.array([1, 0]), np.array([0, 1]))


def test_out_of_bounds_pixels_are_an_error():
    masks = [np.zeros((4, 4), bool) for _ in range(2)]
    tr = AgreementTracker(masks)
    with pytest.raises(ValueError):
        tr.update(0, (np.array([9]), np.array([0])), True, np.array([False]))
