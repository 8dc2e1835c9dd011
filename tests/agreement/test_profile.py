"""The per-slice agreement profile of a volume equals IAA computed slice by slice."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_iaa.agreement import iaa
from napari_iaa.agreement.profile import slice_profile


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 5), st.sampled_from(["zero", "one", "ignore"]),
       st.integers(0, 2))
def test_profile_equals_iaa_of_each_slice(seed, n, empty, axis):
    rng = np.random.default_rng(seed)
    vols = [rng.random((5, 6, 7)) < rng.choice([0.0, 0.05, 0.4]) for _ in range(n)]
    prof = slice_profile(vols, axis=axis, empty=empty)
    for s in range(vols[0].shape[axis]):
        sl = [np.take(v, s, axis=axis) for v in vols]
        want = iaa(sl, empty=empty)
        got = prof.iaa[s]
        assert (np.isnan(want) and np.isnan(got)) or got == pytest.approx(want)
        assert prof.n_marked[s] == sum(bool(m.any()) for m in sl)


def test_worst_slice_is_the_marked_slice_with_lowest_iaa():
    v = np.zeros((4, 8, 8), bool)
    v[1:3, 2:6, 2:6] = True
    w = v.copy()
    w[2, 2:6, 4:8] = True  # the annotators part ways in slice 2
    prof = slice_profile({"r0": v, "r1": w})
    assert prof.worst_slice() == 2
    assert prof.n_marked.tolist() == [0, 2, 2, 0]
    assert slice_profile([np.zeros((3, 2, 2), bool)] * 2).worst_slice() is None
