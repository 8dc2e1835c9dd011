"""Dice, IoU, pairwise matrices, IAA and the fast counts against straightforward loops."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_iaa.agreement import (
    _counts,
    as_mask_list,
    dice,
    iaa,
    iaa_from_matrix,
    iou,
    pairwise_counts,
    pairwise_dice,
    pairwise_iou,
)
from napari_iaa.errors import ConfigError, ShapeMismatchError

EMPTY_VALUE = {"zero": 0.0, "one": 1.0, "ignore": math.nan}


# ------------------------------------------------------------------ references
def ref_dice(a, b, empty="zero"):
    """Pixel loop, foreground = nonzero."""
    ca = cb = inter = 0
    for x, y in zip(np.asarray(a).ravel().tolist(), np.asarray(b).ravel().tolist(), strict=True):
        ca += x != 0
        cb += y != 0
        inter += (x != 0) and (y != 0)
    if ca + cb == 0:
        return EMPTY_VALUE[empty]
    return 2 * inter / (ca + cb)


def ref_iou(a, b, empty="zero"):
    inter = union = 0
    for x, y in zip(np.asarray(a).ravel().tolist(), np.asarray(b).ravel().tolist(), strict=True):
        inter += (x != 0) and (y != 0)
        union += (x != 0) or (y != 0)
    if union == 0:
        return EMPTY_VALUE[empty]
    return inter / union


def ref_iaa(masks, empty="zero", raters=None, same_rater_pairs=True):
    vals = []
    for i, j in itertools.combinations(range(len(masks)), 2):
        if raters is not None and not same_rater_pairs and raters[i] == raters[j]:
            continue
        v = ref_dice(masks[i], masks[j], empty)
        if not math.isnan(v):
            vals.append(v)
    return sum(vals) / len(vals) if vals else math.nan


def same(x, y):
    return (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, abs=1e-12)


# ------------------------------------------------------------------ strategies
@st.composite
def mask_sets(draw, max_n=6, max_side=9, dtypes=(np.bool_, np.uint8, np.int32)):
    n = draw(st.integers(0, max_n))
    shape = draw(st.tuples(st.integers(1, max_side), st.integers(1, max_side)))
    dt = draw(st.sampled_from(dtypes))
    # sparse, dense, empty and full masks all show up
    elements = st.booleans() if dt == np.bool_ else st.sampled_from([0, 0, 1, 2, 7])
    masks = []
    for _ in range(n):
        kind = draw(st.sampled_from(["random", "empty", "full", "random"]))
        if kind == "empty":
            masks.append(np.zeros(shape, dt))
        elif kind == "full":
            masks.append(np.ones(shape, dt))
        else:
            masks.append(draw(arrays(dt, shape, elements=elements)))
    return masks


empties = st.sampled_from(["zero", "one", "ignore"])


@settings(max_examples=150, deadline=None)
@given(mask_sets(max_n=2), empties)
def test_dice_iou_match_reference(masks, empty):
    if len(masks) < 2:
        return
    a, b = masks
    assert same(dice(a, b, empty), ref_dice(a, b, empty))
    assert same(iou(a, b, empty), ref_iou(a, b, empty))


@settings(max_examples=120, deadline=None)
@given(mask_sets(), empties)
def test_pairwise_matrices_match_reference(masks, empty):
    d = pairwise_dice(masks, empty)
    j = pairwise_iou(masks, empty)
    n = len(masks)
    assert d.shape == j.shape == (n, n)
    for i in range(n):
        for k in range(n):
            assert same(d[i, k], ref_dice(masks[i], masks[k], empty))
            assert same(j[i, k], ref_iou(masks[i], masks[k], empty))


@settings(max_examples=120, deadline=None)
@given(mask_sets(), empties, st.data())
def test_iaa_matches_reference(masks, empty, data):
    raters = data.draw(st.lists(st.sampled_from("AB C"), min_size=len(masks), max_size=len(masks)))
    same_pairs = data.draw(st.booleans())
    got = iaa(masks, empty=empty, raters=raters, same_rater_pairs=same_pairs)
    assert same(got, ref_iaa(masks, empty, raters, same_pairs))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 20),
    st.integers(1, 300),
    st.integers(0, 2**32 - 1),
    st.sampled_from([np.bool_, np.uint8, np.int16]),
)
def test_fast_counts_exact_any_n(n, size, seed, dtype):
    """Bit-code path (N <= 16), packbits path (N > 16), odd sizes, all dtypes."""
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    masks = [
        (rng.random(size) < p[i]).astype(dtype) * (1 if dtype == np.bool_ else 3) for i in range(n)
    ]
    masks = [m.astype(dtype) for m in masks]
    counts, inter = pairwise_counts(masks)
    ref = np.array([[np.count_nonzero((a != 0) & (b != 0)) for b in masks] for a in masks])
    np.testing.assert_array_equal(inter, ref)
    np.testing.assert_array_equal(counts, np.diag(ref))
    assert inter.dtype == np.int64


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 8, 9, 16])
def test_fast_counts_chunked_and_threaded(monkeypatch, threads, n):
    """Small chunks force many chunks, partial tails and uniform-chunk shortcuts."""
    monkeypatch.setattr(_counts, "_CHUNK", 64)
    monkeypatch.setattr(_counts, "_PARALLEL_MIN_PIXELS", 0)
    rng = np.random.default_rng(n)
    shape = (37, 29)  # 1073 pixels: not a multiple of 8 or of the chunk
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    masks = []
    for i in range(n):
        m = (yy - 18) ** 2 + (xx - 14) ** 2 < (8 + i % 4) ** 2  # mostly-agreeing blobs
        m[rng.random(shape) < 0.01] ^= True
        masks.append(m if i % 3 else m.astype(np.int32) * 5)
    if n < 16:
        masks.append(np.ones(shape, bool))  # a full mask too
    masks[0] = np.asfortranarray(masks[0])  # non-contiguous input
    counts, inter = _counts.pairwise_counts(masks, threads=threads)
    ref = np.array([[np.count_nonzero((a != 0) & (b != 0)) for b in masks] for a in masks])
    np.testing.assert_array_equal(inter, ref)


def test_empty_rules_documented_values():
    e = np.zeros((4, 4), bool)
    f = np.zeros((4, 4), bool)
    f[0, 0] = True
    assert dice(e, e) == 0.0  # IMA++ / medpy default
    assert dice(e, e, "one") == 1.0
    assert math.isnan(dice(e, e, "ignore"))
    for rule in ("zero", "one", "ignore"):
        assert dice(e, f, rule) == 0.0  # one empty mask: always 0
        assert iou(e, f, rule) == 0.0
    d = pairwise_dice([e, f], "one")
    assert d[0, 0] == 1.0 and d[1, 1] == 1.0 and d[0, 1] == 0.0
    assert pairwise_dice([e, f], "zero")[0, 0] == 0.0
    # ignore drops both-empty pairs from the IAA; NaN if nothing is left
    assert iaa([e, e, f], "ignore") == 0.0
    assert math.isnan(iaa([e, e], "ignore"))
    assert iaa([e, e], "one") == 1.0


def test_iaa_same_rater_exclusion_and_case_duck_typing():
    a = np.zeros((3, 3), bool)
    a[0] = True
    b = a.copy()
    c = np.zeros((3, 3), bool)
    c[:2] = True  # dice(a, c) = 2*3/(3+6) = 2/3
    masks = {"A04": a, "A04#2": b, "A06": c}
    raters = {"A04": "A04", "A04#2": "A04", "A06": "A06"}
    assert iaa(masks) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert iaa(masks, raters=raters, same_rater_pairs=False) == pytest.approx(2 / 3)

    class FakeCase:
        pass

    case = FakeCase()
    case.masks, case.raters = masks, raters
    assert iaa(case, same_rater_pairs=False) == pytest.approx(2 / 3)
    assert iaa(case) == pytest.approx(iaa(masks))
    assert as_mask_list(case)[0] == ["A04", "A04#2", "A06"]
    # all pairs by one annotator and excluded: NaN
    assert math.isnan(iaa([a, b], raters=["X", "X"], same_rater_pairs=False))


def test_label_values_count_as_foreground_and_stack_input():
    a = np.array([[0, 2], [3, 0]], np.int32)
    b = np.array([[0, 1], [0, 0]], np.uint8)
    assert dice(a, b) == pytest.approx(2 / 3)
    stack = np.stack([a != 0, b != 0])
    np.testing.assert_allclose(pairwise_dice(stack), pairwise_dice([a, b]))


def test_fewer_than_two_masks_is_nan():
    assert math.isnan(iaa([]))
    assert math.isnan(iaa([np.ones((2, 2))]))
    assert pairwise_dice([]).shape == (0, 0)


def test_bad_input_messages():
    with pytest.raises(ShapeMismatchError, match="'b'.*\\(2, 3\\)"):
        pairwise_dice({"a": np.zeros((2, 2)), "b": np.zeros((2, 3))})
    with pytest.raises(ShapeMismatchError):
        dice(np.zeros(3), np.zeros(4))
    with pytest.raises(ConfigError, match="empty-pair rule"):
        iaa([np.zeros(2), np.zeros(2)], empty="nan")
    with pytest.raises(ConfigError, match="raters has 1 entries"):
        iaa([np.zeros(2), np.zeros(2)], raters=["A"])


def test_iaa_from_matrix_skips_nan():
    m = np.array([[1, 0.5, np.nan], [0.5, 1, 0.7], [np.nan, 0.7, 1]])
    assert iaa_from_matrix(m) == pytest.approx(0.6)
