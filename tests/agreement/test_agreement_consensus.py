"""MHR, agreement levels, majority vote, STAPLE, leave-one-out and summarize."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_iaa.agreement import (
    agreement_levels,
    dice,
    leave_one_out_dice,
    majority_vote,
    mhr_map,
    pairwise_dice,
    staple,
    summarize,
)
from napari_iaa.errors import ConfigError


@st.composite
def stacks(draw):
    n = draw(st.integers(1, 6))
    shape = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    return [draw(arrays(np.uint8, shape, elements=st.sampled_from([0, 1, 3]))) for _ in range(n)]


@settings(max_examples=80, deadline=None)
@given(stacks(), st.integers(2, 9))
def test_mhr_levels_majority_match_pixel_loops(masks, n_levels):
    n = len(masks)
    mhr = mhr_map(masks)
    lv = agreement_levels(masks)
    lvn = agreement_levels(masks, n_levels)
    mv_f = majority_vote(masks, tie="foreground")
    mv_b = majority_vote(masks, tie="background")
    assert mhr.dtype == np.float32 and lv.dtype == np.uint8 and lvn.dtype == np.uint8
    for idx in np.ndindex(masks[0].shape):
        c = sum(int(m[idx] != 0) for m in masks)
        assert lv[idx] == c
        assert mhr[idx] == pytest.approx(c / n)
        assert lvn[idx] == math.floor(c * (n_levels - 1) / n + 0.5)
        assert mv_f[idx] == (c >= n / 2)
        assert mv_b[idx] == (c > n / 2)


@settings(max_examples=60, deadline=None)
@given(stacks())
def test_leave_one_out_majority_matches_loop(masks):
    n = len(masks)
    got = leave_one_out_dice(masks)
    for i in range(n):
        if n < 2:
            assert math.isnan(got[i])
            continue
        others = [m for j, m in enumerate(masks) if j != i]
        assert got[i] == pytest.approx(dice(masks[i], majority_vote(others)))


def _loo_pixelwise(masks, empty, tie):
    """The majority leave-one-out Dice pixel array by pixel array (the reference)."""
    n = len(masks)
    total = sum((np.asarray(m) != 0).astype(np.int32) for m in masks)
    out = []
    for a in masks:
        others = total - (np.asarray(a) != 0)
        cons = (2 * others >= n - 1) if tie == "foreground" else (2 * others > n - 1)
        out.append(dice(a, cons, empty))
    return np.array(out)


@st.composite
def many_masks(draw):
    n = draw(st.integers(2, 18))  # past 16: the pixel-by-pixel path
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(0 if ndim == 1 else 1, 9)) for _ in range(ndim))
    dtype = draw(st.sampled_from([np.bool_, np.uint8, np.int32]))
    dense = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return [(rng.random(shape) < dense).astype(dtype) * (1 if dtype == np.bool_ else 3)
            for _ in range(n)]


@settings(max_examples=120, deadline=None)
@given(many_masks(), st.sampled_from(["zero", "one", "ignore"]),
       st.sampled_from(["foreground", "background"]))
def test_leave_one_out_majority_is_the_pixelwise_value_exactly(masks, empty, tie):
    got = leave_one_out_dice(masks, empty=empty, tie=tie)
    np.testing.assert_array_equal(got, _loo_pixelwise(masks, empty, tie))


def test_agreement_levels_varying_annotator_count():
    # 3 annotators vs 4 annotators mapped onto the same 5 ordinal levels
    three = [np.array([[0, 1, 1, 1]]), np.array([[0, 0, 1, 1]]), np.array([[0, 0, 0, 1]])]
    four = three + [np.array([[0, 0, 0, 1]])]
    assert agreement_levels(three, 5).tolist() == [[0, 1, 3, 4]]  # 1/3*4=1.33, 2/3*4=2.67
    assert agreement_levels(four, 5).tolist() == [[0, 1, 2, 4]]
    with pytest.raises(ConfigError):
        agreement_levels(three, 1)


def _toy_case(seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    truth = (yy - 32) ** 2 + (xx - 30) ** 2 < 15**2
    good = []
    for _ in range(4):
        m = truth.copy()
        m[rng.random(truth.shape) < 0.02] ^= True
        good.append(m)
    bad = truth.copy()
    bad[rng.random(truth.shape) < 0.3] ^= True  # a careless annotator
    return truth, good, bad


def test_staple_bad_annotator_gets_lower_sensitivity_and_specificity():
    truth, good, bad = _toy_case()
    res = staple({"g0": good[0], "g1": good[1], "bad": bad, "g2": good[2], "g3": good[3]})
    assert res.mask_ids == ["g0", "g1", "bad", "g2", "g3"]
    assert res.probability.dtype == np.float32 and res.probability.shape == truth.shape
    assert res.consensus.dtype == np.bool_
    assert dice(res.consensus, truth) > 0.97
    others = [0, 1, 3, 4]
    assert res.sensitivity[2] < res.sensitivity[others].min() - 0.1
    assert res.specificity[2] < res.specificity[others].min() - 0.1
    loo = leave_one_out_dice([*good, bad], consensus="staple")
    assert loo[4] < loo[:4].min()


def test_staple_degenerate_inputs():
    empty = [np.zeros((5, 6), bool) for _ in range(3)]
    r = staple(empty)
    assert not r.consensus.any() and (r.probability == 0).all()
    assert np.isnan(r.sensitivity).all() and (r.specificity == 1).all()
    full = [np.ones((5, 6), np.uint8) for _ in range(2)]
    r = staple(full)
    assert r.consensus.all() and (r.sensitivity == 1).all()
    one = np.zeros((5, 6), bool)
    one[2, 3] = True
    r = staple([one])
    assert r.consensus[2, 3] and r.consensus.sum() == 1


def test_staple_of_two_masks_keeps_their_disagreement_at_one_half():
    """Two raters give STAPLE no way to tell which is right where they disagree: those
    pixels sit at exactly 0.5 whichever mask comes first, so the consensus at the default
    threshold is their union (one mask empty: the other one), and a threshold above 0.5
    keeps only what both marked."""
    a = np.zeros((40, 50), bool)
    a[5:25, 5:35] = True
    b = a.copy()
    b[5:25, 5:15] = False
    empty = np.zeros_like(a)
    for first, second in ((a, b), (b, a), (a, empty), (empty, a)):
        res = staple([first, second])
        assert set(np.unique(res.probability[first ^ second]).tolist()) <= {0.5}
        assert np.array_equal(res.consensus, first | second)
        assert np.array_equal(staple([first, second], threshold=0.51).consensus, first & second)


def test_summarize_case_like_object():
    truth, good, bad = _toy_case(1)

    class FakeCase:
        masks = {"A": good[0], "A#2": good[1], "B": bad}
        raters = {"A": "A", "A#2": "A", "B": "B"}

    s = summarize(FakeCase(), with_staple=True)
    d = pairwise_dice([good[0], good[1], bad])
    np.testing.assert_allclose(s.dice, d)
    pairs = [d[0, 1], d[0, 2], d[1, 2]]
    assert s.iaa == pytest.approx(np.mean(pairs))
    assert s.iaa_std == pytest.approx(np.std(pairs, ddof=1))
    assert s.min_pair[:2] in (("A", "B"), ("A#2", "B"))
    assert s.min_pair[2] == pytest.approx(min(pairs))
    np.testing.assert_allclose(
        s.mean_dice, [(d[0, 1] + d[0, 2]) / 2, (d[0, 1] + d[1, 2]) / 2, (d[0, 2] + d[1, 2]) / 2]
    )
    assert s.loo_dice[2] < s.loo_dice[:2].min()
    assert s.staple_sensitivity.shape == (3,)
    excl = summarize(FakeCase(), same_rater_pairs=False)
    assert excl.n_pairs == 2 and excl.iaa == pytest.approx((d[0, 2] + d[1, 2]) / 2)
    json.dumps(s.to_dict())  # JSON-safe
    assert np.isnan(summarize(FakeCase(), loo_consensus=None).loo_dice).all()
    single = summarize([good[0]])
    assert math.isnan(single.iaa) and single.min_pair is None
    assert json.loads(json.dumps(single.to_dict()))["iaa"] is None
