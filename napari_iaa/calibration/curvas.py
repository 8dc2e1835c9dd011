"""The CURVAS challenge's calibration and segmentation metrics, per case and per annotator.

Re-implemented in numpy from the challenge's evaluation code (CURVAS-PDACVI 2025,
``evaluation_metrics/metrics_evaluation.py`` in github.com/SYCAI-Technologies/curvas-challenge;
the 2024 edition's ``evaluation_metrics/metrics.py`` uses the same ECE and CRPS):

- **ECE** (:func:`curvas_ece`): torchmetrics' ``MulticlassCalibrationError(num_classes=2,
  n_bins=50)`` (top-label, L1) of the two-class probabilities ``[1 - p, p]`` (each clamped
  at 1e-8, then renormalised) against one annotator's mask, computed inside the union of
  all annotators' masks' bounding box widened by 20 voxels (:func:`union_bbox`). The bins
  are torchmetrics': edges ``linspace(0, 1, 51)`` in float32, a confidence ``c`` goes to
  bin ``b`` with ``edge[b] <= c < edge[b + 1]``, so a confidence of exactly 1.0 sits in a
  51st bin of its own; the predicted label is the argmax with ties (p = 0.5) going to
  the background.
- **Thresholded Dice** (:func:`curvas_thresholded_dice`): at each ``t`` in
  ``linspace(0.1, 0.8, 6)``, Dice of ``p > t`` against ``mean(annotations) > t`` (strict),
  ``2 |A n B| / (|A| + |B| + 1e-6)``, and 1 when both are empty; the mean over thresholds.
- **CRPS of the volume** (:func:`curvas_volume_crps`): the annotators' volumes give a
  Gaussian (mean, population standard deviation); its CDF, linearly interpolated between
  100 points from its 1st to its 99th percentile (0 below, 1 above), is compared with the
  step at the predicted volume ``sum(p)`` over ``mean +- 3 sd``:
  ``integral (F(y) - H(y - v))^2 dy`` (computed exactly piecewise here; the challenge
  code uses ``scipy.integrate.quad``).

Deviations, all where the challenge code breaks or is 3-D only:

- the box's start is clipped at 0 (the challenge code's ``slice(min - 20, ...)`` wraps
  around when an annotation lies within 20 voxels of the border, giving an empty crop);
  its end is ``max + 20`` exclusive, as there;
- a case where no annotator marked anything has no box: its ECE is NaN (the challenge
  code raises) and aggregates leave it out and count it;
- images of any dimension (2-D slices here; the challenge code takes 3-D volumes only);
- masks count as foreground where non-zero (the challenge code counts ``== 1``).

A known property kept as is: the CRPS is integrated over ``mean +- 3 sd`` only, so it is
at most ``6 sd`` and 0 when all annotators' volumes agree, whatever the prediction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_iaa._jit import njit as _njit
from napari_iaa._jit import numba

__all__ = [
    "CURVAS_BINS",
    "CURVAS_MARGIN",
    "CURVAS_THRESHOLDS",
    "curvas_case",
    "curvas_ece",
    "curvas_ece_many",
    "curvas_thresholded_dice",
    "curvas_volume_crps",
    "torchmetrics_bin_edges",
    "union_bbox",
]

#: ``np.linspace(0.1, 0.8, 6)``: 0.1, 0.24, 0.38, 0.52, 0.66, 0.8
CURVAS_THRESHOLDS: tuple[float, ...] = tuple(float(t) for t in np.linspace(0.1, 0.8, 6))
CURVAS_BINS = 50
CURVAS_MARGIN = 20
_Z99 = 2.3263478740408408  # standard normal 99th percentile (scipy.stats.norm.ppf(0.99))
_CHUNK = 1 << 18  # pixels per pass of the ECE's binned sums: no image-sized temporaries


def _stack(masks: Sequence[Any] | np.ndarray) -> list[np.ndarray]:
    return [np.asarray(m) != 0 for m in masks]


def union_bbox(masks: Sequence[Any] | np.ndarray, margin: int | Sequence[int] = CURVAS_MARGIN
               ) -> tuple[slice, ...] | None:
    """Bounding box of the union of the masks, widened by ``margin`` voxels per axis.

    Parameters
    ----------
    masks : sequence of arrays or (N, ...) array
        One mask per annotator (non-zero is foreground), all of one shape.
    margin : int or sequence of int
        Voxels added before the first and after the last foreground index on each axis
        (one per axis, or one for all).

    Returns
    -------
    tuple of slice or None
        ``slice(max(0, lo - margin), hi + margin)`` per axis (the end exclusive, as the
        challenge code), or None when no mask has any foreground.
    """
    arrs = [np.asarray(m) for m in masks]
    if not arrs:
        return None
    shape = arrs[0].shape
    boxes = []
    for a in arrs:
        if a.shape != shape:
            raise ValueError(f"the masks differ in shape: {shape} and {a.shape}")
        box = _mask_box(a)
        if box is not None:
            boxes.append(box)
    if not boxes:
        return None
    # the union's box is the box around the masks' boxes
    lo = [min(b[0][ax] for b in boxes) for ax in range(len(shape))]
    hi = [max(b[1][ax] for b in boxes) for ax in range(len(shape))]
    m = np.broadcast_to(np.asarray(margin, dtype=np.int64), (len(shape),))
    return tuple(slice(max(0, int(a) - int(w)), int(b) + int(w)) for a, b, w in zip(lo, hi, m))


def _mask_box(m: np.ndarray) -> tuple[list[int], list[int]] | None:
    """First and last non-zero index per axis of one mask (None when it is empty).

    One ``any`` reduction per axis, each within the range the earlier axes found: no
    copy of the mask (a bool or an integer one alike).
    """
    if m.ndim == 0:
        return ([], []) if m != 0 else None
    lo: list[int] = []
    hi: list[int] = []
    for ax in range(m.ndim):
        hit = np.flatnonzero(m.any(axis=tuple(a for a in range(m.ndim) if a != ax)))
        if hit.size == 0:
            return None
        lo.append(int(hit[0]))
        hi.append(int(hit[-1]))
        m = m[(slice(None),) * ax + (slice(lo[-1], hi[-1] + 1),)]
    return lo, hi


def torchmetrics_bin_edges(n_bins: int = CURVAS_BINS) -> np.ndarray:
    """``torch.linspace(0, 1, n_bins + 1)`` in float32, computed as torch computes it.

    torch fills the first half from the start and the second half from the end
    (``start + i * step`` for ``i < steps / 2``, else ``end - (steps - 1 - i) * step``)
    with a fused multiply-add, i.e. one rounding to float32 per edge; this can differ
    from ``np.linspace(...).astype(np.float32)`` by one ulp, which moves confidences
    that sit on an edge (checked equal to torch for 1 to 400 bins).
    """
    steps = int(n_bins) + 1
    step = float(np.float32(1.0) / np.float32(steps - 1))
    i = np.arange(steps, dtype=np.float64)
    lo = (step * i).astype(np.float32)
    hi = (1.0 - step * (steps - 1 - i)).astype(np.float32)
    return np.where(i < steps // 2, lo, hi).astype(np.float32)


def _confidence_label(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-label confidence (float32) and label of ``[1 - p, p]`` as the challenge code forms them."""
    dt = np.float32 if p.dtype == np.float32 else np.float64
    fg = p.astype(dt, copy=False)
    bg = (dt(1.0) - fg).astype(dt)
    fg, bg = np.maximum(fg, dt(1e-8)), np.maximum(bg, dt(1e-8))
    s = bg + fg
    fg, bg = fg / s, bg / s
    label = fg > bg  # argmax: ties go to class 0 (background)
    return np.where(label, fg, bg).astype(np.float32), label


def _code_dtype(n_codes: int) -> type:
    return np.uint8 if n_codes <= 1 << 8 else np.uint16 if n_codes <= 1 << 16 else np.intp


if numba is not None:

    @_njit
    def _bin_kernel(conf, label, edges, lo, scale, n_out, ncode, wsum, code):  # pragma: no cover
        # np.searchsorted(edges, c, "right") - 1, clipped to [0, n_out - 1]: a guess from
        # the (near) equal widths, then walked to the exact edges; NaN goes last as there
        last = edges.size - 1
        for i in range(conf.size):
            c = conf[i]
            if c != c:
                t = last
            else:
                x = (np.float64(c) - lo) * scale
                t = last if x >= last else (int(x) if x >= 0.0 else -1)
                while t >= 0 and edges[t] > c:
                    t -= 1
                while t < last and edges[t + 1] <= c:
                    t += 1
            t = min(max(t, 0), n_out - 1)
            k = 2 * t + (1 if label[i] else 0)
            code[i] = k
            ncode[k] += 1
            wsum[t] += np.float64(c)

    @_njit
    def _count_kernel(code, mask, out):  # pragma: no cover - compiled
        for i in range(code.size):
            if mask[i]:
                out[code[i]] += 1


def _bin_codes(conf: np.ndarray, label: np.ndarray, edges: np.ndarray, n_out: int,
               ncode: np.ndarray, wsum: np.ndarray) -> np.ndarray:
    """Per pixel ``2 * bin + label``, counted into ``ncode`` and summed into ``wsum``.

    The bin is ``searchsorted(edges, conf, "right") - 1`` clipped to ``[0, n_out - 1]``;
    ``ncode`` (int64) gets each code's pixel count, ``wsum[bin]`` the confidences (as
    float64) added one by one in pixel order, as ``np.bincount`` adds its weights, so
    chunks passed in order give the floats one whole-image bincount gives.
    """
    code = np.empty(conf.size, _code_dtype(2 * n_out))
    if numba is not None:
        lo, span = float(edges[0]), float(edges[-1]) - float(edges[0])
        scale = (edges.size - 1) / span if span > 0 else 0.0
        _bin_kernel(conf, label, edges, lo, scale, n_out, ncode, wsum, code)
        return code
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_out - 1)
    np.add.at(wsum, idx, conf.astype(np.float64))
    np.add(2 * idx, label, out=code, casting="unsafe")
    ncode += np.bincount(code, minlength=2 * n_out)
    return code


def _count_masked(code: np.ndarray, mask: np.ndarray, out: np.ndarray) -> None:
    """Add to ``out`` (int64) how many pixels of each code lie in ``mask`` (bool)."""
    if numba is not None:
        _count_kernel(code, np.ascontiguousarray(mask), out)
    else:
        out += np.bincount(code[mask], minlength=out.size)


def _blocks(shape: tuple[int, ...], chunk: int | None = None):
    """Index tuples cutting an array into consecutive runs (C order) of at most ``chunk`` pixels."""
    chunk = _CHUNK if chunk is None else chunk
    inner, ax = 1, len(shape)
    while ax > 0 and inner * shape[ax - 1] <= chunk:
        ax -= 1
        inner *= shape[ax]
    if ax == 0:
        yield (Ellipsis,)
        return
    ax -= 1  # the axis cut into runs of ``step``; the axes after it go whole
    step = max(1, chunk // inner)
    for lead in np.ndindex(*shape[:ax]):
        for s in range(0, shape[ax], step):
            yield (*lead, slice(s, s + step))


def curvas_ece(p: Any, mask: Any, n_bins: int = CURVAS_BINS) -> float:
    """Top-label ECE of a foreground probability map against one annotator's mask.

    torchmetrics' ``MulticlassCalibrationError(num_classes=2, n_bins=n_bins, norm="l1")``
    of ``[1 - p, p]`` as the CURVAS code builds it (see the module docstring). Crop to
    :func:`union_bbox` first for the challenge's definition (:func:`curvas_case` does).
    Several annotators' masks at once: :func:`curvas_ece_many` (the same values).

    Parameters
    ----------
    p : ndarray
        Foreground probabilities (float32 keeps the challenge code's float32 arithmetic).
    mask : ndarray
        The annotator's mask, the shape of ``p``.
    n_bins : int
        Equal-width bins over [0, 1], plus the bin of confidence 1.0.

    Returns
    -------
    float
        ``sum_b |acc_b - conf_b| n_b / N``; NaN if there are no pixels.
    """
    return curvas_ece_many(p, [mask], n_bins)[0]


def curvas_ece_many(p: Any, masks: Sequence[Any] | np.ndarray, n_bins: int = CURVAS_BINS
                    ) -> list[float]:
    """:func:`curvas_ece` of one probability map against each of several masks.

    The confidences, labels, bins, bin counts and confidence sums depend on ``p`` alone
    and are computed once; each mask adds only its per-bin count of correct pixels
    (``label == mask``), counted as integers. The values are :func:`curvas_ece`'s,
    bit for bit. Runs over :data:`_CHUNK` pixels at a time (no image-sized temporaries).

    Parameters
    ----------
    p : ndarray
        Foreground probabilities (float32 keeps the challenge code's float32 arithmetic).
    masks : sequence of arrays or (N, ...) array
        The annotators' masks (non-zero is foreground), each the shape of ``p``.
    n_bins : int
        Equal-width bins over [0, 1], plus the bin of confidence 1.0.

    Returns
    -------
    list of float
        One ECE per mask, in order; NaN for each if there are no pixels.
    """
    pa = np.asarray(p)
    ms = [np.asarray(m) for m in masks]
    for ma in ms:
        if pa.shape != ma.shape:
            raise ValueError(f"p has shape {pa.shape} but mask has shape {ma.shape}")
    if pa.size == 0 or not ms:
        return [float("nan")] * len(ms)
    edges = torchmetrics_bin_edges(n_bins)
    nb = len(edges)
    ncode = np.zeros(2 * nb, np.int64)  # pixels per code 2 * bin + label
    sc = np.zeros(nb)
    hits = np.zeros((len(ms), 2 * nb), np.int64)  # per mask, its pixels per code
    for blk in _blocks(pa.shape):
        pc = pa[blk].ravel()
        if not np.issubdtype(pc.dtype, np.floating):
            pc = pc.astype(np.float64)
        conf, label = _confidence_label(pc)
        code = _bin_codes(conf, label, edges, nb, ncode, sc)  # torch.bucketize(right=True) - 1
        for ma, hit in zip(ms, hits):
            mc = ma[blk]
            _count_masked(code, (mc if mc.dtype == np.bool_ else mc != 0).ravel(), hit)
    # correct = labelled foreground in the mask + labelled background outside it
    n = (ncode[0::2] + ncode[1::2]).astype(np.float64)
    keep = n > 0
    out = []
    for hit in hits:
        sa = (hit[1::2] + (ncode[0::2] - hit[0::2])).astype(np.float64)
        out.append(float(np.sum(np.abs(sa[keep] - sc[keep])) / n.sum()))
    return out


def curvas_thresholded_dice(p: Any, masks: Sequence[Any] | np.ndarray,
                            thresholds: Sequence[float] = CURVAS_THRESHOLDS) -> dict[str, Any]:
    """CURVAS thresholded Dice of ``p`` against the annotators' mean, strict ``>``.

    Parameters
    ----------
    p : ndarray
        Foreground probabilities.
    masks : sequence of arrays or (N, ...) array
        The annotators' masks (their mean is the reference).
    thresholds : sequence of float
        Default ``linspace(0.1, 0.8, 6)``.

    Returns
    -------
    dict
        ``{"thresholds": [...], "dice": [...], "mean": float}``; a threshold where both
        ``p > t`` and ``mean > t`` are empty scores 1.
    """
    pf = np.asarray(p, dtype=np.float64)
    stack = _stack(masks)
    if not stack:
        raise ValueError("curvas_thresholded_dice needs at least one mask")
    avg = np.mean(np.stack(stack), axis=0, dtype=np.float64)
    if avg.shape != pf.shape:
        raise ValueError(f"p has shape {pf.shape} but the masks have shape {avg.shape}")
    scores = []
    for t in thresholds:
        a, b = pf > t, avg > t
        sa, sb = int(a.sum()), int(b.sum())
        scores.append(1.0 if sa + sb == 0 else 2.0 * int(np.logical_and(a, b).sum()) / (sa + sb + 1e-6))
    return {"thresholds": [float(t) for t in thresholds], "dice": scores, "mean": float(np.mean(scores))}


def _normal_cdf(x: np.ndarray, mu: float, sd: float) -> np.ndarray:
    return np.array([0.5 * math.erfc(-(v - mu) / (sd * math.sqrt(2.0))) for v in x])


def curvas_volume_crps(p: Any, masks: Sequence[Any] | np.ndarray, voxel_volume: float = 1.0) -> dict[str, float]:
    """CURVAS CRPS of the predicted volume ``sum(p)`` against the annotators' volumes.

    Parameters
    ----------
    p : ndarray
        Foreground probabilities.
    masks : sequence of arrays or (N, ...) array
        The annotators' masks.
    voxel_volume : float
        Volume of one voxel (the challenge code's ``voxel_proportion``), e.g. mm^3, or the
        native pixels one evaluated pixel stands for.

    Returns
    -------
    dict
        ``crps``, ``predicted_volume``, ``mean_volume``, ``sd_volume`` (in units of
        ``voxel_volume``); ``crps`` is 0 when the annotators' volumes agree (sd 0).
    """
    stack = _stack(masks)
    if not stack:
        raise ValueError("curvas_volume_crps needs at least one mask")
    vols = np.array([float(m.sum()) * voxel_volume for m in stack])
    mu, sd = float(np.mean(vols)), float(np.std(vols))
    v = float(np.asarray(p, dtype=np.float64).sum()) * voxel_volume
    out = {"predicted_volume": v, "mean_volume": mu, "sd_volume": sd, "crps": 0.0}
    if not sd > 0:
        return out  # the challenge code integrates over the empty interval [mu, mu]
    knots = np.linspace(mu - _Z99 * sd, mu + _Z99 * sd, 100)
    cdf = _normal_cdf(knots, mu, sd)
    a, b = mu - 3.0 * sd, mu + 3.0 * sd
    cuts = np.unique(np.concatenate([[a, b], knots[(knots > a) & (knots < b)], [v] if a < v < b else []]))
    total = 0.0
    for y0, y1 in zip(cuts[:-1], cuts[1:]):
        mid = 0.5 * (y0 + y1)
        if y1 <= knots[0]:
            f0 = f1 = 0.0
        elif y0 >= knots[-1]:
            f0 = f1 = 1.0
        else:
            f0, f1 = np.interp([y0, y1], knots, cdf)
        h = 1.0 if mid > v else 0.0
        g0, g1 = f0 - h, f1 - h
        total += (y1 - y0) * (g0 * g0 + g0 * g1 + g1 * g1) / 3.0  # exact for a linear piece
    out["crps"] = float(total)
    return out


def curvas_case(
    p: Any,
    masks: Sequence[Any] | np.ndarray,
    margin: int | Sequence[int] = CURVAS_MARGIN,
    n_bins: int = CURVAS_BINS,
    thresholds: Sequence[float] = CURVAS_THRESHOLDS,
    voxel_volume: float = 1.0,
) -> dict[str, Any]:
    """All CURVAS metrics of one case: ECE per annotator (in the box), Dice, volume CRPS.

    Parameters
    ----------
    p : ndarray
        Foreground probability map of the case.
    masks : sequence of arrays or (N, ...) array
        Each annotator's mask, the shape of ``p``.
    margin : int or sequence of int
        Voxels around the union of the masks (20 at the challenge's resolution; scale it
        when the maps were resampled).
    voxel_volume : float
        Volume of one voxel for the CRPS.

    Returns
    -------
    dict
        ``ece_per_annotator`` (list, in mask order), ``ece_mean`` (NaN and ``bbox`` None
        when no annotator marked anything), ``thresholded_dice`` (list),
        ``thresholded_dice_mean``, ``crps`` and the volumes of :func:`curvas_volume_crps`.
    """
    pa = np.asarray(p)
    stack = _stack(masks)
    for m in stack:
        if m.shape != pa.shape:
            raise ValueError(f"p has shape {pa.shape} but a mask has shape {m.shape}")
    box = union_bbox(stack, margin)
    if box is None:
        eces = [float("nan")] * len(stack)
    else:
        eces = curvas_ece_many(pa[box], [m[box] for m in stack], n_bins)
    td = curvas_thresholded_dice(pa, stack, thresholds)
    vol = curvas_volume_crps(pa, stack, voxel_volume)
    return {
        "bbox": None if box is None else [[s.start, s.stop] for s in box],
        "ece_per_annotator": eces,
        "ece_mean": float(np.mean(eces)) if box is not None and eces else float("nan"),
        "thresholded_dice": td["dice"],
        "thresholded_dice_mean": td["mean"],
        **vol,
    }
