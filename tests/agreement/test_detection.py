"""Detection agreement (who marked) and boundary agreement (IAA among those who marked)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_iaa.agreement.detection import detection_agreement


def _loop(masks):
    marked = [m for m in masks if m.any()]
    ds = [2 * (a & b).sum() / (a.sum() + b.sum()) for a, b in itertools.combinations(marked, 2)]
    return len(marked), (float(np.mean(ds)) if ds else float("nan"))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 6), st.booleans())
def test_matches_a_plain_loop_in_2d_and_3d(seed, n, volume):
    rng = np.random.default_rng(seed)
    shape = (3, 9, 11) if volume else (13, 10)
    masks = [rng.random(shape) < rng.choice([0.0, 0.1, 0.5]) for _ in range(n)]
    res = detection_agreement(masks)
    k, want = _loop(masks)
    assert res.n_annotators == n and res.n_marked == k
    assert res.detection_agreement == pytest.approx(k / n)
    if np.isnan(want):
        assert np.isnan(res.iaa_marked)
    else:
        assert res.iaa_marked == pytest.approx(want)


def test_a_reader_who_did_not_mark_lowers_detection_not_boundary():
    a = np.zeros((8, 8), bool)
    a[2:6, 2:6] = True
    res = detection_agreement({"r0": a, "r1": a, "r2": a, "r3": np.zeros_like(a)})
    assert res.n_marked == 3 and res.detection_agreement == 0.75
    assert res.iaa_marked == 1.0 and res.marked == ["r0", "r1", "r2"]


def test_same_rater_pairs_can_be_left_out():
    a = np.zeros((6, 6), bool)
    a[1:4, 1:4] = True
    b = np.roll(a, 1, axis=0)
    masks = {"A1": a, "A1#2": a, "A2": b}
    all_pairs = detection_agreement(masks, raters={"A1": "A1", "A1#2": "A1", "A2": "A2"})
    distinct = detection_agreement(masks, raters={"A1": "A1", "A1#2": "A1", "A2": "A2"},
                                   same_rater_pairs=False)
    assert all_pairs.iaa_marked > distinct.iaa_marked == pytest.approx(2 * 6 / 18)
