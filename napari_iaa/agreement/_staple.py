"""STAPLE from the annotator-set code histogram: ITK's EM on at most 2**N distinct pixels.

Why not SimpleITK's ``STAPLEImageFilter`` for every case: its EM walks every pixel of
every mask twice per iteration on one thread (ITK's ``GenerateData``), so 15 masks of
6000 x 4000 took 29 s of CPU in the review dock's worker after each edit. Every pixel's
E-step depends on nothing but its annotator-set code (bit ``i``: mask ``i`` marks it), and
every M-step sum is a sum over pixels, so the same EM runs on the code histogram (the
live tracker's compiled kernel, one read of the masks) and the per-pixel probability is
a table lookup by code: 29 s -> well under a second at that size.

The iteration is ITK's, step for step (``itkSTAPLEImageFilter.hxx``): the first W is the
fraction of masks marking a pixel; the prior ``g_t`` is its mean times the confidence
weight; each iteration estimates sensitivity ``p`` and specificity ``q`` from W, then
recomputes W = g a / (g a + (1 - g) b) with the products taken over the masks in order;
it stops, after the second iteration at the earliest, once every ``p`` and ``q`` moved by
at most 1e-7 (squared change <= 1e-14), or at the iteration limit. Only the order of the
sums differs (ITK adds pixel by pixel; here each code's W is added once, times its
count), so results agree with the filter's to rounding: the tests compare both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_iaa.agreement import _kernels
from napari_iaa.agreement._counts import code_histogram

__all__ = ["HIST_MAX_MASKS", "as_probability", "code_lookup", "staple_codes", "staple_em"]

#: up to this many masks STAPLE runs on the code histogram (2**16 codes)
HIST_MAX_MASKS = 16
_MIN_SQ_CHANGE = 1.0e-14  # ITK's "7 digits of precision"
_CHUNK = 1 << 18  # pixels per chunk of :func:`code_lookup`


def staple_em(
    hist: np.ndarray, n: int, confidence_weight: float = 1.0,
    max_iterations: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """ITK's STAPLE EM on a code histogram.

    Parameters
    ----------
    hist
        Pixel count of every code ``0 .. 2**n - 1`` (bit ``i``: mask ``i`` marks it).
    n
        Number of masks.
    confidence_weight
        Scales the prior, as ITK's ``ConfidenceWeight``.
    max_iterations
        Stop after this many iterations (default: ITK's, until converged).

    Returns
    -------
    w : ndarray of float64, shape (2**n,)
        The foreground probability of a pixel with each code (NaN where it is 0 / 0, as
        in ITK; codes no pixel has are computed the same way).
    sensitivity, specificity : ndarray of float64, shape (n,)
    iterations : int
        ITK's ``ElapsedIterations``.
    """
    hist = np.asarray(hist, dtype=np.int64)
    codes = np.arange(hist.size, dtype=np.int64)
    bits = ((codes[:, None] >> np.arange(n)) & 1).astype(bool)  # (2**n, n)
    occupied = hist > 0
    h = hist[occupied].astype(np.float64)
    b = bits[occupied]
    w = bits.sum(axis=1) / float(n)  # the first W: the fraction of masks marking it
    g_t = float(h @ w[occupied]) / float(h.sum()) * confidence_weight
    limit = np.iinfo(np.uint32).max if max_iterations is None else max(1, int(max_iterations))
    last_p = np.full(n, -10.0)  # ITK's starting values: the first iteration never converges
    last_q = np.full(n, -10.0)
    p = q = last_p
    it = 0
    while it < limit:
        wo = w[occupied]
        hw, hv = h * wo, h * (1.0 - wo)
        p = (hw @ b) / hw.sum()
        q = (hv @ ~b) / hv.sum()
        alpha = np.ones(hist.size)
        beta = np.ones(hist.size)
        for i in range(n):  # in ITK's order, so each code's W is its W
            alpha *= np.where(bits[:, i], p[i], 1.0 - p[i])
            beta *= np.where(bits[:, i], 1.0 - q[i], q[i])
        with np.errstate(invalid="ignore", divide="ignore"):
            w = g_t * alpha / (g_t * alpha + (1.0 - g_t) * beta)
        done = it != 0 and bool(np.all((p - last_p) ** 2 <= _MIN_SQ_CHANGE)
                                and np.all((q - last_q) ** 2 <= _MIN_SQ_CHANGE))
        last_p, last_q = p, q
        if done:
            break
        it += 1
    return w, np.asarray(p, np.float64), np.asarray(q, np.float64), it


def code_lookup(arrays: Sequence[np.ndarray], table: np.ndarray) -> np.ndarray:
    """``table[code]`` at every pixel, the code built from ``arrays`` (nonzero: marked).

    Block by block, so the codes never exist at full size (a 6000 x 4000 case's codes
    would be 48 MB of uint16): the compiled kernel for one-byte masks, numpy otherwise
    (and without numba).
    """
    shape = np.asarray(arrays[0]).shape
    flats = [np.asarray(a).reshape(-1) for a in arrays]
    out = np.empty(flats[0].size, table.dtype)
    if _kernels.AVAILABLE and all(f.dtype.itemsize == 1 for f in flats):
        _kernels.lookup_codes(tuple(f.view(np.uint8) for f in flats), table, out)
        return out.reshape(shape)
    code = np.empty(min(_CHUNK, out.size), np.uint16)
    bit = np.empty_like(code)
    for s in range(0, out.size, _CHUNK):
        e = min(s + _CHUNK, out.size)
        c, t = code[: e - s], bit[: e - s]
        c[:] = 0
        for i, f in enumerate(flats):
            np.not_equal(f[s:e], 0, out=t, casting="unsafe")
            np.left_shift(t, np.uint16(i), out=t)
            c |= t
        np.take(table, c, out=out[s:e])
    return out.reshape(shape)


def staple_codes(arrays: Sequence[np.ndarray], confidence_weight: float = 1.0,
                 max_iterations: int | None = None, threads: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """STAPLE's probability map, sensitivities and specificities for <= 16 masks.

    Returns
    -------
    probability : ndarray of float32, the shape of a mask (the filter's float64 read as
        float32, NaN (0 / 0) as 0, clipped to [0, 1])
    sensitivity, specificity : ndarray of float64, shape (N,)
    """
    n = len(arrays)
    hist = code_histogram([np.asarray(a).reshape(-1) for a in arrays], threads=threads)
    w, p, q, _ = staple_em(hist, n, confidence_weight, max_iterations)
    return code_lookup(arrays, as_probability(w)), p, q  # cleaned once per code


def as_probability(w: np.ndarray) -> np.ndarray:
    """STAPLE's float64 W as the result holds it: float32, 0 / 0 as 0, clipped to [0, 1]."""
    return np.clip(np.nan_to_num(np.asarray(w).astype(np.float32), nan=0.0), 0.0, 1.0)
