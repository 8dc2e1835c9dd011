"""Calibration metrics against straightforward loop references and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_iaa.calibration import (
    binary_ece,
    brier,
    mhr_to_levels,
    multirater_ece,
    plot_reliability,
    reliability_curve,
    rps,
    rps_from_mhr,
    thresholded_dice,
)

# -- loop references --------------------------------------------------------------------


def ref_rps(level_probs, levels):
    k = level_probs.shape[0]
    total, n = 0.0, 0
    for idx in np.ndindex(levels.shape):
        cum_p, s = 0.0, 0.0
        for j in range(k):
            cum_p += level_probs[(j,) + idx]
            obs = 1.0 if levels[idx] <= j else 0.0
            s += (cum_p - obs) ** 2
        total += s / (k - 1)
        n += 1
    return total / n


def ref_ece(p, mask, n_bins, lo=0.0, hi=1.0):
    p, mask = p.ravel(), mask.ravel()
    edges = np.linspace(lo, hi, n_bins + 1)  # bin b = [edges[b], edges[b+1]), last closed
    bins = [[] for _ in range(n_bins)]
    for pi, mi in zip(p, mask):
        conf = max(pi, 1 - pi)
        correct = float((pi >= 0.5) == bool(mi))
        b = 0
        for j in range(n_bins):
            if conf >= edges[j]:
                b = j
        bins[b].append((conf, correct))
    ece = 0.0
    for b in bins:
        if b:
            ece += abs(np.mean([c for c, _ in b]) - np.mean([a for _, a in b])) * len(b) / p.size
    return ece


# -- hand-computed ----------------------------------------------------------------------


def test_brier_hand():
    assert brier([0.0, 1.0, 0.5], [0.0, 0.0, 1.0]) == pytest.approx((0 + 1 + 0.25) / 3)
    assert math.isnan(brier(np.zeros(0), np.zeros(0)))
    with pytest.raises(ValueError):
        brier(np.zeros(3), np.zeros(4))


def test_rps_hand():
    # K=3, observed level 2; prediction all on level 0: CDF pred (1,1,1), obs (0,0,1)
    lp = np.array([1.0, 0.0, 0.0])[:, None]
    assert rps(lp, np.array([2])) == pytest.approx((1 + 1 + 0) / 2)
    # perfect prediction
    assert rps(np.array([0.0, 1.0, 0.0])[:, None], np.array([1])) == pytest.approx(0.0)
    # uniform prediction, observed level 0: CDF (1/3, 2/3, 1) vs (1, 1, 1)
    assert rps(np.full((3, 1), 1 / 3), np.array([0])) == pytest.approx(((2 / 3) ** 2 + (1 / 3) ** 2) / 2)
    with pytest.raises(ValueError):
        rps(np.full((3, 1), 1 / 3), np.array([3]))


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(2, 6),
    seed=st.integers(0, 10_000),
    shape=st.sampled_from([(1,), (5,), (3, 4)]),
)
def test_rps_matches_loop(k, seed, shape):
    rng = np.random.default_rng(seed)
    lp = rng.random((k,) + shape)
    lp /= lp.sum(0, keepdims=True)
    levels = rng.integers(0, k, size=shape)
    assert rps(lp, levels) == pytest.approx(ref_rps(lp, levels), abs=1e-12)


def test_mhr_to_levels_and_rps_from_mhr():
    mhr = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(mhr_to_levels(mhr, 5), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(mhr_to_levels(mhr, 3), [0, 1, 1, 2, 2])  # half up
    # three raters, five levels: 1/3 -> level round(4/3)=1
    np.testing.assert_array_equal(mhr_to_levels(np.array([1 / 3]), 5, n_raters=3), [1])
    from napari_iaa.agreement import agreement_levels  # same rounding as the agreement room

    masks = np.zeros((3, 1, 4), bool)
    masks[0, 0, 1:] = True
    masks[1, 0, 2:] = True
    masks[2, 0, 3:] = True  # counts 0, 1, 2, 3 of 3
    for k in (2, 3, 5):
        np.testing.assert_array_equal(
            mhr_to_levels(masks.mean(0), k), agreement_levels(masks, n_levels=k)
        )
    lp = np.eye(5)  # level i predicted with certainty for pixel i
    assert rps_from_mhr(lp, mhr, n_raters=4) == pytest.approx(0.0)


def test_ece_hand():
    # p = 0.9 on 10 pixels, 8 of them foreground: conf .9, acc .8 -> ECE .1
    p = np.full(10, 0.9)
    m = np.array([1] * 8 + [0] * 2, bool)
    assert binary_ece(p, m) == pytest.approx(0.1)
    # p = 0.2 -> label 0, conf 0.8; mask all zeros -> acc 1 -> ECE 0.2
    assert binary_ece(np.full(4, 0.2), np.zeros(4, bool)) == pytest.approx(0.2)


@settings(max_examples=40, deadline=None)
@given(
    p=arrays(np.float64, st.integers(1, 60), elements=st.floats(0, 1)),
    seed=st.integers(0, 1000),
    n_bins=st.sampled_from([1, 5, 10, 50]),
)
def test_ece_matches_loop(p, seed, n_bins):
    mask = np.random.default_rng(seed).random(p.shape) < 0.5
    assert binary_ece(p, mask, n_bins) == pytest.approx(ref_ece(p, mask, n_bins), abs=1e-9)
    assert binary_ece(p, mask, n_bins, (0.5, 1.0)) == pytest.approx(
        ref_ece(p, mask, n_bins, 0.5, 1.0), abs=1e-9
    )


def test_multirater_ece_per_annotator_mean_pooled():
    rng = np.random.default_rng(0)
    p = rng.random((8, 8))
    masks = [rng.random((8, 8)) < q for q in (0.2, 0.5, 0.8)]
    res = multirater_ece(p, masks, n_bins=10)
    assert len(res["per_annotator"]) == 3
    for m, e in zip(masks, res["per_annotator"]):
        assert e == pytest.approx(ref_ece(p, m, 10))
    assert res["mean"] == pytest.approx(np.mean(res["per_annotator"]))
    pooled_ref = ref_ece(np.tile(p.ravel(), 3), np.concatenate([m.ravel() for m in masks]), 10)
    assert res["pooled"] == pytest.approx(pooled_ref)
    assert math.isnan(multirater_ece(p, [])["mean"])


def test_multirater_ece_chunked_equals_whole_image(monkeypatch):
    """Chunked per-bin sums (no tiling per annotator) give the whole-image figures."""
    from napari_iaa.calibration import metrics

    rng = np.random.default_rng(3)
    p = rng.random((61, 37))
    masks = [(rng.random((61, 37)) < p).astype(np.uint8) * 255 for _ in range(4)]
    monkeypatch.setattr(metrics, "_CHUNK", 500)  # 5 chunks, the last one partial
    res = multirater_ece(p, masks, n_bins=20)
    for m, e in zip(masks, res["per_annotator"]):
        assert e == pytest.approx(ref_ece(p, m != 0, 20), abs=1e-12)
    pooled_ref = ref_ece(np.tile(p.ravel(), 4), np.concatenate([m.ravel() != 0 for m in masks]), 20)
    assert res["pooled"] == pytest.approx(pooled_ref, abs=1e-12)
    with pytest.raises(ValueError, match="shape"):
        multirater_ece(p, [masks[0].T])


def test_bin_reliability_chunked_equals_whole_image():
    from napari_iaa.predict import bin_reliability

    rng = np.random.default_rng(4)
    p = rng.random(2345)
    mhr = np.clip(p + rng.normal(0, 0.1, p.size), 0, 1)
    mp, me, n = bin_reliability(p, mhr, n_bins=10, chunk=100)
    idx = np.clip((p * 10).astype(int), 0, 9)
    for b in range(10):
        sel = idx == b
        assert n[b] == sel.sum()
        assert mp[b] == pytest.approx(p[sel].mean())
        assert me[b] == pytest.approx(mhr[sel].mean())


def test_reliability_curve_hand():
    p = np.array([0.05, 0.05, 0.55, 0.95])
    mhr = np.array([0.0, 0.5, 1.0, 1.0])
    c = reliability_curve(p, mhr, n_bins=2)
    np.testing.assert_array_equal(c["counts"], [2, 2])
    np.testing.assert_allclose(c["mean_pred"], [0.05, 0.75])
    np.testing.assert_allclose(c["mean_mhr"], [0.25, 1.0])
    c4 = reliability_curve(p, mhr, n_bins=4)
    assert np.isnan(c4["mean_pred"][1]) and c4["counts"][1] == 0


def test_thresholded_dice_hand():
    p = np.array([0.15, 0.45, 0.85, 0.0])
    mhr = np.array([0.25, 0.25, 1.0, 0.0])
    res = thresholded_dice(p, mhr, thresholds=(0.1, 0.3, 0.9))
    # t=.1: pred {0,1,2}, ref {0,1,2} -> 1; t=.3: pred {1,2}, ref {2} -> 2/3; t=.9: pred {}, ref {2} -> 0
    assert res["dice"] == pytest.approx([1.0, 2 / 3, 0.0])
    assert res["mean"] == pytest.approx((1 + 2 / 3) / 3)
    both_empty = thresholded_dice(np.zeros(3), np.zeros(3), thresholds=(0.5,), empty="ignore")
    assert math.isnan(both_empty["mean"])
    assert thresholded_dice(np.zeros(3), np.zeros(3), thresholds=(0.5,))["mean"] == 1.0


def test_plot_reliability_writes_png(tmp_path):
    rng = np.random.default_rng(1)
    p = rng.random(500)
    curves = {"raw": reliability_curve(p, p**2), "ideal": reliability_curve(p, p)}
    out = plot_reliability(curves, tmp_path / "sub" / "rel.png", title="test")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    assert not list((tmp_path / "sub").glob("*.tmp"))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 80), n_bins=st.sampled_from([1, 3, 10]))
def test_reliability_and_dice_match_loops(seed, n, n_bins):
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    mhr = rng.integers(0, 5, n) / 4
    c = reliability_curve(p, mhr, n_bins)
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        sel = [i for i in range(n) if lo <= p[i] < hi or (b == n_bins - 1 and p[i] == 1.0)]
        assert c["counts"][b] == len(sel)
        if sel:
            assert c["mean_pred"][b] == pytest.approx(np.mean(p[sel]))
            assert c["mean_mhr"][b] == pytest.approx(np.mean(mhr[sel]))
    res = thresholded_dice(p, mhr, thresholds=(0.25, 0.5))
    for t, d in zip((0.25, 0.5), res["dice"]):
        a = [p[i] >= t for i in range(n)]
        b_ = [mhr[i] >= t for i in range(n)]
        inter = sum(x and y for x, y in zip(a, b_))
        denom = sum(a) + sum(b_)
        assert d == pytest.approx(2 * inter / denom if denom else 1.0)
    assert brier(p, mhr) == pytest.approx(sum((p[i] - mhr[i]) ** 2 for i in range(n)) / n)
