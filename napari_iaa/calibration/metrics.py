"""Calibration metrics of a probability map against several annotators.

All functions take numpy arrays of any matching shape (one image or a stack of images);
pixels are pooled. ``mhr`` is the empirical mean human response (fraction of annotators
per pixel, :func:`napari_iaa.agreement.mhr_map`).

These are the pooled whole-image definitions used before the CURVAS ones were added;
the challenge's per-case, per-annotator definitions are in
:mod:`napari_iaa.calibration.curvas` (``CURVAS_THRESHOLDS`` comes from there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_iaa.agreement.consensus import fraction_to_level
from napari_iaa.calibration.curvas import CURVAS_THRESHOLDS, _bin_codes, _count_masked

__all__ = [
    "brier",
    "rps",
    "rps_from_mhr",
    "soft_level_cdf",
    "soft_rps",
    "mhr_to_levels",
    "binary_ece",
    "multirater_ece",
    "reliability_curve",
    "thresholded_dice",
    "CURVAS_THRESHOLDS",
    "DICE_THRESHOLDS",
]

#: thresholds of the pooled :func:`thresholded_dice` (``>=``); the challenge's are
#: ``CURVAS_THRESHOLDS`` = ``linspace(0.1, 0.8, 6)`` with ``>``
DICE_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
_CHUNK = 1 << 18  # pixels per chunk of the binned sums


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _same_shape(p: np.ndarray, q: np.ndarray, what: str) -> None:
    if p.shape != q.shape:
        raise ValueError(f"p has shape {p.shape} but {what} has shape {q.shape}")


def brier(p: Any, mhr: Any) -> float:
    """Mean squared difference between probabilities and the empirical MHR.

    NaN if there are no pixels.
    """
    p, m = _f64(p), _f64(mhr)
    _same_shape(p, m, "mhr")
    if p.size == 0:
        return float("nan")
    return float(np.mean((p - m) ** 2))


def rps(level_probs: Any, levels: Any) -> float:
    """Ranked probability score of ordinal predictions.

    Parameters
    ----------
    level_probs : ndarray, shape (K, ...)
        Probability of each of the K ordinal levels per pixel (summing to 1 over axis 0).
    levels : int ndarray, shape (...)
        Observed level per pixel, in ``0 .. K-1``.

    Returns
    -------
    float
        ``mean over pixels of 1/(K-1) * sum_k (CDFpred_k - CDFobs_k)^2`` (0 is perfect,
        1 is the worst).
    """
    lp = _f64(level_probs)
    lv = np.asarray(levels)
    k = lp.shape[0]
    if k < 2:
        raise ValueError("rps needs at least 2 levels")
    if lp.shape[1:] != lv.shape:
        raise ValueError(f"level_probs has shape {lp.shape} but levels has shape {lv.shape}")
    if lv.size and (lv.min() < 0 or lv.max() >= k):
        raise ValueError(f"levels must lie in [0, {k - 1}]")
    if lv.size == 0:
        return float("nan")
    cdf_pred = np.cumsum(lp, axis=0)
    ks = np.arange(k).reshape((k,) + (1,) * lv.ndim)
    cdf_obs = (lv[None] <= ks).astype(np.float64)
    return float(np.mean(np.sum((cdf_pred - cdf_obs) ** 2, axis=0) / (k - 1)))


def mhr_to_levels(mhr: Any, n_levels: int, n_raters: int | np.ndarray | None = None) -> np.ndarray:
    """Map an MHR map onto ``n_levels`` ordinal levels.

    The level is :func:`napari_iaa.agreement.consensus.fraction_to_level` (round half
    up), the rounding of :func:`napari_iaa.agreement.agreement_levels` and of the
    training targets.

    With ``n_raters`` the annotator count is recovered first (``round(mhr * n_raters)``)
    and then mapped, which keeps the exact levels when ``n_levels == n_raters + 1``.
    """
    m = np.clip(_f64(mhr), 0.0, 1.0)
    if n_raters is not None:
        r = np.asarray(n_raters, dtype=np.float64)
        m = np.where(r > 0, np.floor(m * r + 0.5) / np.maximum(r, 1), m)
    return fraction_to_level(m, n_levels)


def rps_from_mhr(p_levels: Any, mhr: Any, n_raters: int | np.ndarray | None = None) -> float:
    """RPS of level probabilities ``(K, ...)`` against an MHR map (see :func:`mhr_to_levels`)."""
    lp = _f64(p_levels)
    return rps(lp, mhr_to_levels(mhr, lp.shape[0], n_raters))


def soft_level_cdf(mhr: Any, n_levels: int) -> np.ndarray:
    """Soft cumulative target of an exact fraction: ``P(level <= k) = clip(k + 1 - m (K-1), 0, 1)``.

    The mass sits on the two levels around ``m (K - 1)`` (all on one when it is an
    integer), so the expected level is exactly ``m (K - 1)``: 1 of 8 annotators on 5
    levels is 0.5 (half on level 0, half on level 1), 2/5 and 3/5 are 1.6 and 2.4.

    Returns
    -------
    ndarray
        ``(K, ...)`` CDF over the levels (the last is 1).
    """
    m = np.clip(_f64(mhr), 0.0, 1.0)
    k = int(n_levels)
    ks = np.arange(k, dtype=np.float64).reshape((k,) + (1,) * m.ndim)
    return np.clip(ks + 1.0 - m[None] * (k - 1), 0.0, 1.0)


def soft_rps(level_probs: Any, mhr: Any) -> float:
    """RPS of level probabilities ``(K, ...)`` against the soft target of the exact MHR.

    Same normalisation as :func:`rps` (0 perfect, 1 worst), with :func:`soft_level_cdf`
    in place of the rounded level's step; equal to :func:`rps` where ``mhr (K-1)`` is an
    integer.
    """
    lp = _f64(level_probs)
    k = lp.shape[0]
    if k < 2:
        raise ValueError("soft_rps needs at least 2 levels")
    m = _f64(mhr)
    if lp.shape[1:] != m.shape:
        raise ValueError(f"level_probs has shape {lp.shape} but mhr has shape {m.shape}")
    if m.size == 0:
        return float("nan")
    diff = np.cumsum(lp, axis=0) - soft_level_cdf(m, k)
    return float(np.mean(np.sum(diff ** 2, axis=0) / (k - 1)))


def _ece_bins(conf: np.ndarray, correct: np.ndarray, n_bins: int, lo: float, hi: float
              ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    edges = np.linspace(lo, hi, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    n = np.bincount(idx, minlength=n_bins).astype(np.float64)
    sc = np.bincount(idx, weights=conf, minlength=n_bins)
    sa = np.bincount(idx, weights=correct, minlength=n_bins)
    total = n.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        mc, ma = sc / n, sa / n
    ece = float(np.nansum(np.abs(ma - mc) * n) / total) if total else float("nan")
    return ece, n, mc, ma


def binary_ece(
    p: Any, mask: Any, n_bins: int = 50, bin_range: tuple[float, float] = (0.0, 1.0)
) -> float:
    """Top-label ECE of a foreground probability map against one binary mask.

    Confidence is ``max(p, 1 - p)``, the predicted label ``p >= 0.5``, accuracy whether
    the label equals the mask. ``n_bins`` equal-width bins over ``bin_range`` (default
    [0, 1]; confidences are >= 0.5 so only the upper half is populated), the last bin
    closed. ``ECE = sum_b |acc_b - conf_b| * n_b / N``. NaN if there are no pixels.
    The challenge's ECE differs (1.0 in a bin of its own, p = 0.5 labelled background,
    computed in the annotations' box): :func:`napari_iaa.calibration.curvas.curvas_ece`.
    """
    pf, mf = _f64(p), np.asarray(mask).astype(bool)
    _same_shape(pf, mf.astype(np.float64), "mask")
    pf, mf = pf.ravel(), mf.ravel()
    conf = np.maximum(pf, 1.0 - pf)
    correct = ((pf >= 0.5) == mf).astype(np.float64)
    return _ece_bins(conf, correct, n_bins, *bin_range)[0]


def multirater_ece(
    p: Any,
    masks: Sequence[Any] | np.ndarray,
    n_bins: int = 50,
    bin_range: tuple[float, float] = (0.0, 1.0),
) -> dict[str, Any]:
    """Pooled whole-image multi-rater ECE: top-label ECE against each annotator's mask.

    Same binning as :func:`binary_ece`; the challenge's per-case definition is
    :func:`napari_iaa.calibration.curvas.curvas_case`.

    Parameters
    ----------
    p : ndarray
        Foreground probability map.
    masks : sequence of bool arrays or (N, ...) array
        One binary mask per annotator, each the shape of ``p``.
    n_bins : int
        Equal-width bins over ``bin_range`` (default [0, 1]).

    Returns
    -------
    dict
        ``{"per_annotator": [ece_i], "mean": mean of those, "pooled": ECE over all
        annotators' pixels together}`` (NaN when there are no masks).
    """
    pf = np.asarray(p).reshape(-1)
    stack = [np.asarray(m).reshape(-1) for m in masks]
    if not stack:
        return {"per_annotator": [], "mean": float("nan"), "pooled": float("nan")}
    for m in masks:
        _same_shape(np.asarray(p), np.asarray(m), "mask")
    # per-bin sums accumulated chunk by chunk: the pooled ECE is over N x pixels, but the
    # map is never tiled per annotator (a 6000 x 4000 map with 15 masks would need
    # 2.9 GB), and no single numpy call holds the GIL for long. Per chunk the bins and
    # labels are found once; each annotator adds only its pixels per code 2 * bin + label,
    # as integers: its correct pixels in a bin are its labelled-foreground ones plus the
    # labelled-background ones outside it (exact counts, as the old sums of 0/1 weights)
    lo, hi = bin_range
    edges = np.linspace(lo, hi, n_bins + 1)
    ncode, sconf = np.zeros(2 * n_bins, np.int64), np.zeros(n_bins)
    hits = np.zeros((len(stack), 2 * n_bins), np.int64)
    for s in range(0, pf.size, _CHUNK):
        pc = pf[s:s + _CHUNK].astype(np.float64)
        conf = np.maximum(pc, 1.0 - pc)
        wsum = np.zeros(n_bins)  # this chunk's confidence sums, added as its bincount was
        code = _bin_codes(conf, pc >= 0.5, edges, n_bins, ncode, wsum)
        sconf += wsum
        for m, hit in zip(stack, hits):
            mc = m[s:s + _CHUNK]
            _count_masked(code, mc if mc.dtype == np.bool_ else mc != 0, hit)
    cnt = (ncode[0::2] + ncode[1::2]).astype(np.float64)
    sacc = (hits[:, 1::2] + (ncode[0::2] - hits[:, 0::2])).astype(np.float64)

    def ece(n: np.ndarray, sc: np.ndarray, sa: np.ndarray) -> float:
        total = n.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(np.nansum(np.abs(sa / n - sc / n) * n) / total) if total else float("nan")

    per = [ece(cnt, sconf, sa) for sa in sacc]
    k = float(len(stack))
    return {"per_annotator": per, "mean": float(np.mean(per)),
            "pooled": ece(k * cnt, k * sconf, sacc.sum(axis=0))}


def reliability_curve(p: Any, mhr: Any, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Mean predicted probability vs mean empirical MHR per equal-width bin of ``p``.

    Returns
    -------
    dict
        ``bin_edges`` (n_bins + 1), ``mean_pred``, ``mean_mhr`` (NaN in empty bins) and
        ``counts`` (n_bins each).
    """
    pf, mf = _f64(p).ravel(), _f64(mhr).ravel()
    if pf.shape != mf.shape:
        raise ValueError(f"p has {pf.size} values but mhr has {mf.size}")
    _, n, mp, mm = _ece_bins(np.clip(pf, 0.0, 1.0), mf, n_bins, 0.0, 1.0)
    return {
        "bin_edges": np.linspace(0.0, 1.0, n_bins + 1),
        "mean_pred": mp,
        "mean_mhr": mm,
        "counts": n.astype(np.int64),
    }


def thresholded_dice(
    p: Any,
    mhr: Any,
    thresholds: Sequence[float] = DICE_THRESHOLDS,
    empty: str = "one",
) -> dict[str, Any]:
    """Pooled thresholded Dice: Dice of ``p >= t`` vs ``mhr >= t`` at each threshold.

    Not the challenge's definition (that is ``>`` at ``linspace(0.1, 0.8, 6)`` with a
    1e-6 in the denominator: :func:`napari_iaa.calibration.curvas.curvas_thresholded_dice`).

    Parameters
    ----------
    empty : {"one", "zero", "ignore"}
        Score when both masks are empty at a threshold (``ignore`` -> NaN, left out of
        the mean).

    Returns
    -------
    dict
        ``{"thresholds": [...], "dice": [...], "mean": float}``.
    """
    if empty not in ("one", "zero", "ignore"):
        raise ValueError(f"empty must be 'one', 'zero' or 'ignore', got {empty!r}")
    pf, mf = _f64(p), _f64(mhr)
    _same_shape(pf, mf, "mhr")
    both_empty = {"one": 1.0, "zero": 0.0, "ignore": float("nan")}[empty]
    scores = []
    for t in thresholds:
        a, b = pf >= t, mf >= t
        denom = int(a.sum()) + int(b.sum())
        scores.append(2.0 * int(np.logical_and(a, b).sum()) / denom if denom else both_empty)
    arr = np.asarray(scores, dtype=np.float64)
    mean = float(np.nanmean(arr)) if np.any(np.isfinite(arr)) else float("nan")
    return {"thresholds": [float(t) for t in thresholds], "dice": scores, "mean": mean}
