"""The one-pass ECEs and the per-mask box give the per-mask formulas' values bit for bit.

The references are the straightforward code these replaced (one full pass per mask, float
0/1 weights, the stacked union), copied here verbatim; every comparison is ``==``.
Both the compiled (numba) and the numpy paths are checked.
"""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_iaa.calibration import curvas, metrics
from napari_iaa.calibration.curvas import (
    _bin_codes,
    _confidence_label,
    curvas_case,
    curvas_ece,
    curvas_ece_many,
    torchmetrics_bin_edges,
    union_bbox,
)
from napari_iaa.calibration.metrics import multirater_ece
from napari_iaa.predict.result import curvas_ece_of

PATHS = ["numba", "numpy"]

# -- the replaced code, as it was -------------------------------------------------------


def ref_curvas_ece(p, mask, n_bins=50):
    pa, ma = np.asarray(p), np.asarray(mask)
    if pa.size == 0:
        return float("nan")
    if not np.issubdtype(pa.dtype, np.floating):
        pa = pa.astype(np.float64)
    conf, label = _confidence_label(pa.ravel())
    correct = (label == (ma.ravel() != 0)).astype(np.float64)
    edges = torchmetrics_bin_edges(n_bins)
    idx = np.searchsorted(edges, conf, side="right") - 1
    nb = len(edges)
    n = np.bincount(idx, minlength=nb).astype(np.float64)
    sc = np.bincount(idx, weights=conf.astype(np.float64), minlength=nb)
    sa = np.bincount(idx, weights=correct, minlength=nb)
    keep = n > 0
    return float(np.sum(np.abs(sa[keep] - sc[keep])) / n.sum())


def ref_union_bbox(masks, margin=20):
    stack = [np.asarray(m) != 0 for m in masks]
    if not stack:
        return None
    union = np.logical_or.reduce(stack)
    if not union.any():
        return None
    m = np.broadcast_to(np.asarray(margin, dtype=np.int64), (union.ndim,))
    out = []
    for ax in range(union.ndim):
        hit = np.flatnonzero(union.any(axis=tuple(a for a in range(union.ndim) if a != ax)))
        out.append(slice(max(0, int(hit[0]) - int(m[ax])), int(hit[-1]) + int(m[ax])))
    return tuple(out)


def ref_multirater_ece(p, masks, n_bins=50, bin_range=(0.0, 1.0), chunk=1 << 18):
    pf = np.asarray(p).reshape(-1)
    stack = [np.asarray(m).reshape(-1) for m in masks]
    if not stack:
        return {"per_annotator": [], "mean": float("nan"), "pooled": float("nan")}
    lo, hi = bin_range
    edges = np.linspace(lo, hi, n_bins + 1)
    cnt, sconf = np.zeros(n_bins), np.zeros(n_bins)
    sacc = np.zeros((len(stack), n_bins))
    for s in range(0, pf.size, chunk):
        pc = pf[s:s + chunk].astype(np.float64)
        conf = np.maximum(pc, 1.0 - pc)
        idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
        cnt += np.bincount(idx, minlength=n_bins)
        sconf += np.bincount(idx, weights=conf, minlength=n_bins)
        label = pc >= 0.5
        for i, m in enumerate(stack):
            correct = (label == (m[s:s + chunk] != 0)).astype(np.float64)
            sacc[i] += np.bincount(idx, weights=correct, minlength=n_bins)

    def ece(n, sc, sa):
        total = n.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(np.nansum(np.abs(sa / n - sc / n) * n) / total) if total else float("nan")

    per = [ece(cnt, sconf, sa) for sa in sacc]
    k = float(len(stack))
    return {"per_annotator": per, "mean": float(np.mean(per)),
            "pooled": ece(k * cnt, k * sconf, sacc.sum(axis=0))}


# -- helpers ------------------------------------------------------------------------------


def _same(a, b) -> bool:
    """Equal floats, NaN equal to NaN (lists or scalars)."""
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def _path(which: str):
    """Run with the compiled kernels, or force the numpy path."""
    if which == "numba":
        if curvas.numba is None:
            pytest.skip("numba missing or disabled")
        return mock.patch.object(curvas, "numba", curvas.numba)
    return mock.patch.object(curvas, "numba", None)


def _edge_values():
    e32 = torchmetrics_bin_edges(50)
    e64 = np.linspace(0.0, 1.0, 51)
    near = [np.nextafter(e32, np.float32(2)), np.nextafter(e32, np.float32(-1))]
    return np.concatenate([e32, e64, *near, 1.0 - e32, 1.0 - e64, [0.0, 1.0, 0.5, 0.25, 0.75]])


EDGES = _edge_values()


def _map(rng, shape, dtype, kind):
    u = rng.random(shape)
    if kind == "edges":  # values on (and one ulp beside) the bin edges, 0, 1 and 0.5
        u = rng.choice(EDGES, shape)
    elif kind == "mixed":
        u = np.where(rng.random(shape) < 0.5, u, rng.choice(EDGES, shape))
    elif kind == "extremes":
        u = rng.choice([0.0, 1.0, 0.5, 0.02, 0.98, -0.25, 1.25], shape)
    return u.astype(dtype)


def _mask(rng, shape, kind, dtype):
    m = {"empty": lambda: np.zeros(shape, bool), "full": lambda: np.ones(shape, bool),
         "sparse": lambda: rng.random(shape) < 0.05,
         "blob": lambda: rng.random(shape) < rng.uniform(0.2, 0.8)}[kind]()
    return m if dtype == "bool" else m.astype(np.uint8) * 255


SHAPES = st.lists(st.integers(1, 23), min_size=1, max_size=3).map(tuple)
MASKS = st.lists(st.tuples(st.sampled_from(["empty", "full", "sparse", "blob"]),
                           st.sampled_from(["bool", "uint8"])), min_size=1, max_size=5)


# -- the CURVAS ECE ----------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=120, deadline=None)
@given(shape=SHAPES, dtype=st.sampled_from([np.float32, np.float64]),
       kind=st.sampled_from(["uniform", "edges", "mixed", "extremes"]), masks=MASKS,
       chunk=st.sampled_from([1, 7, 64, 1 << 18]), n_bins=st.sampled_from([50, 50, 7, 200]),
       seed=st.integers(0, 2**32 - 1))
def test_curvas_ece_many_is_the_per_mask_formula(path, shape, dtype, kind, masks, chunk, n_bins,
                                                 seed):
    rng = np.random.default_rng(seed)
    p = _map(rng, shape, dtype, kind)
    ms = [_mask(rng, shape, k, d) for k, d in masks]
    want = [ref_curvas_ece(p, m, n_bins) for m in ms]
    with _path(path), mock.patch.object(curvas, "_CHUNK", chunk):
        assert curvas_ece_many(p, ms, n_bins) == want
        assert [curvas_ece(p, m, n_bins) for m in ms] == want


@pytest.mark.parametrize("path", PATHS)
def test_curvas_ece_many_on_views_crops_integers_and_nan(path):
    rng = np.random.default_rng(5)
    p = rng.random((40, 30, 20)).astype(np.float32)
    ms = [rng.random(p.shape) < q for q in (0.1, 0.5, 0.9)] + [rng.integers(0, 3, p.shape)]
    box = (slice(3, 37), slice(5, 22), slice(1, 19))  # non-contiguous crops, as in a case
    with _path(path), mock.patch.object(curvas, "_CHUNK", 100):
        want = [ref_curvas_ece(p[box], m[box]) for m in ms]
        assert curvas_ece_many(p[box], [m[box] for m in ms]) == want
        ints = (p * 100).astype(np.int32)  # an integer map is taken as float64
        assert curvas_ece_many(ints, ms) == [ref_curvas_ece(ints, m) for m in ms]
        q = p.astype(np.float64)
        q[0, 0, :3] = np.nan  # NaN gives NaN, as before
        assert all(math.isnan(v) for v in curvas_ece_many(q, ms))
        assert curvas_ece_many(p, []) == []
        assert all(math.isnan(v) for v in curvas_ece_many(np.zeros((0, 3)), [np.zeros((0, 3))] * 2))
        with pytest.raises(ValueError, match="shape"):
            curvas_ece_many(p, [ms[0], ms[1][:, :, :5]])


@pytest.mark.parametrize("dtype,bin_range", [(np.float32, None), (np.float64, (0.0, 1.0)),
                                             (np.float64, (0.5, 1.0)), (np.float64, (0.2, 0.9))])
def test_compiled_bins_are_searchsorted_on_and_beside_every_edge(dtype, bin_range):
    if curvas.numba is None:
        pytest.skip("numba missing or disabled")
    for n_bins in (1, 7, 50, 333):
        if bin_range is None:
            edges, n_out = torchmetrics_bin_edges(n_bins), n_bins + 1
        else:
            edges, n_out = np.linspace(*bin_range, n_bins + 1), n_bins
        e = edges.astype(dtype)
        c = np.concatenate([e, np.nextafter(e, dtype(2)), np.nextafter(e, dtype(-1)),
                            np.random.default_rng(n_bins).random(5000), [np.nan, -0.5, 1.5, 2.0]])
        c = c.astype(dtype)
        label = np.arange(c.size) % 3 == 0
        ncode, wsum = np.zeros(2 * n_out, np.int64), np.zeros(n_out)
        code = _bin_codes(c, label, edges, n_out, ncode, wsum).astype(np.int64)
        idx = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, n_out - 1)
        assert np.array_equal(code, 2 * idx + label)
        assert np.array_equal(ncode, np.bincount(2 * idx + label, minlength=2 * n_out))
        ref_w = np.bincount(idx, weights=c.astype(np.float64), minlength=n_out)
        assert _same(wsum, ref_w)


# -- the box ------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(shape=SHAPES, masks=st.lists(st.tuples(st.sampled_from(["empty", "full", "sparse", "dot"]),
                                              st.sampled_from(["bool", "uint8", "int64"])),
                                    min_size=1, max_size=4),
       margin=st.one_of(st.integers(0, 25), st.lists(st.integers(0, 9), min_size=3, max_size=3)),
       seed=st.integers(0, 2**32 - 1))
def test_union_bbox_is_the_stacked_unions_box(shape, masks, margin, seed):
    rng = np.random.default_rng(seed)
    ms = []
    for kind, dtype in masks:
        if kind == "dot":
            m = np.zeros(shape, bool)
            m[tuple(rng.integers(0, s) for s in shape)] = True
        else:
            m = _mask(rng, shape, kind, "bool")
        ms.append(m.astype(dtype) * (7 if dtype == "int64" else 1))
    margin = margin if isinstance(margin, int) else margin[:len(shape)]
    assert union_bbox(ms, margin) == ref_union_bbox(ms, margin)
    assert union_bbox(np.stack(ms), margin) == ref_union_bbox(ms, margin)


def test_union_bbox_edge_cases():
    assert union_bbox([]) is None
    assert union_bbox([np.zeros((3, 4), np.uint8)] * 2) is None
    a = np.zeros((30, 40), bool)
    a[4, 7] = a[20, 2] = True
    b = np.zeros((30, 40), np.int16)
    b[29, 39] = -1  # non-zero is foreground, whatever its sign
    assert union_bbox([a, b], (3, 50)) == ref_union_bbox([a, b], (3, 50)) == (
        slice(1, 32), slice(0, 89))
    assert union_bbox(np.ones((), bool)[None]) == ref_union_bbox(np.ones((), bool)[None])
    with pytest.raises(ValueError, match="shape"):
        union_bbox([a, a.T])


# -- the pooled multi-rater ECE -----------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=80, deadline=None)
@given(shape=SHAPES, dtype=st.sampled_from([np.float32, np.float64]),
       kind=st.sampled_from(["uniform", "edges", "mixed", "extremes"]), masks=MASKS,
       chunk=st.sampled_from([1, 13, 100, 1 << 18]), n_bins=st.sampled_from([50, 10, 3]),
       bin_range=st.sampled_from([(0.0, 1.0), (0.5, 1.0)]), seed=st.integers(0, 2**32 - 1))
def test_multirater_ece_is_the_per_mask_loop(path, shape, dtype, kind, masks, chunk, n_bins,
                                             bin_range, seed):
    rng = np.random.default_rng(seed)
    p = _map(rng, shape, dtype, kind)
    ms = [_mask(rng, shape, k, d) for k, d in masks]
    want = ref_multirater_ece(p, ms, n_bins, bin_range, chunk)
    with _path(path), mock.patch.object(metrics, "_CHUNK", chunk):
        got = multirater_ece(p, ms, n_bins, bin_range)
    assert got["per_annotator"] == want["per_annotator"]
    assert _same(got["mean"], want["mean"]) and _same(got["pooled"], want["pooled"])


@pytest.mark.parametrize("path", PATHS)
def test_multirater_ece_inexact_float64_sums_and_nan(path):
    """float64 confidences whose sums depend on their order: the old chunks' order is kept."""
    rng = np.random.default_rng(11)
    p = rng.random((301, 257))
    ms = [rng.random(p.shape) < 0.4, (rng.random(p.shape) < 0.6).astype(np.uint8) * 255]
    with _path(path), mock.patch.object(metrics, "_CHUNK", 4096):
        assert multirater_ece(p, ms) == ref_multirater_ece(p, ms, chunk=4096)
        p[3, :5] = np.nan
        got, want = multirater_ece(p, ms), ref_multirater_ece(p, ms, chunk=4096)
    assert _same(got["per_annotator"], want["per_annotator"]) and _same(got["pooled"], want["pooled"])


# -- a case ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_case_ece_is_the_per_annotator_crop(path):
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:300, :400]
    ms = [((yy - 150 - dy) ** 2 / 60**2 + (xx - 200 - dx) ** 2 / 90**2 <= 1) for dy, dx in
          [(0, 0), (8, -5), (-6, 9), (3, 3)]]
    ms[1] = ms[1].astype(np.uint8) * 255
    mhr = np.mean([m != 0 for m in ms], 0)
    p = np.clip(mhr + rng.normal(0, 0.2, yy.shape), 0, 1).astype(np.float32)
    box = ref_union_bbox(ms, 20)
    want = [ref_curvas_ece(p[box], m[box]) for m in ms]
    with _path(path):
        got = curvas_ece_of(p, ms)
        case = curvas_case(p, ms)
    assert got["curvas_per_annotator"] == want and got["curvas"] == float(np.mean(want))
    assert case["ece_per_annotator"] == want
    assert case["bbox"] == [[s.start, s.stop] for s in box]
