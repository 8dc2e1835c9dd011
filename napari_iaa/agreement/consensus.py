"""MHR map, agreement levels, majority vote, STAPLE and leave-one-out reliability."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from napari_iaa.agreement._counts import code_histogram
from napari_iaa.agreement._staple import HIST_MAX_MASKS, as_probability, staple_codes
from napari_iaa.agreement.metrics import (
    EmptyRule,
    _check_empty,
    _empty_value,
    as_mask_list,
    dice,
)
from napari_iaa.errors import ConfigError

__all__ = [
    "StapleResult",
    "agreement_levels",
    "annotator_count",
    "fraction_to_level",
    "leave_one_out_dice",
    "majority_vote",
    "mhr_map",
    "staple",
]


def annotator_count(masks: Any) -> np.ndarray:
    """Number of masks marking each pixel (uint8 for N < 256, else uint16)."""
    _, arrays = as_mask_list(masks)
    if not arrays:
        raise ConfigError("no masks given")
    dtype = np.uint8 if len(arrays) < 256 else np.uint16
    out = np.zeros(arrays[0].shape, dtype)
    for a in arrays:
        if a.dtype == np.bool_:
            out += a
        else:
            out += a != 0
    return out


def mhr_map(masks: Any) -> np.ndarray:
    """Empirical mean human response: fraction of annotators marking each pixel.

    Returns
    -------
    ndarray of float32
        Same shape as the masks, values in [0, 1].
    """
    _, arrays = as_mask_list(masks)
    c = annotator_count(arrays)
    return (c.astype(np.float32) / np.float32(len(arrays))).astype(np.float32)


def fraction_to_level(fraction: Any, n_levels: int) -> np.ndarray:
    """The one rounding of an annotator fraction onto ordinal levels: round half up.

    ``level = floor(fraction * (n_levels - 1) + 1/2)``: 1 of 8 annotators on 5 levels is
    level 1 (0.5 rounds up; numpy's ``rint`` rounds it to the even 0). Some fractions
    share a level whatever the rounding (2/5 and 3/5 on 5 levels: 1.6 and 2.4 -> 2);
    the soft cumulative target of ``training.losses.soft_rps_loss`` keeps every fraction
    apart. Every place that maps a fraction to a level (:func:`agreement_levels`,
    ``napari_iaa.calibration.mhr_to_levels``, the training targets and metrics) calls
    this function.

    Parameters
    ----------
    fraction : array_like
        Fraction of annotators per pixel, clipped to [0, 1].
    n_levels : int
        Number of levels (2 .. 256).

    Returns
    -------
    ndarray of int64
        Levels ``0 .. n_levels - 1``. A tolerance of 1e-4 makes ``k / n`` fractions
        whose scaled value is an exact half round up even when stored in float32
        (5/6 as float32, times 3, is 2.49999994); a scaled ``k / n`` that is not a half
        lies at least ``1 / (2n)`` from one, far beyond the tolerance for n < 256.
    """
    if not 2 <= int(n_levels) <= 256:
        raise ConfigError(f"n_levels must be between 2 and 256, got {n_levels}")
    f = np.clip(np.asarray(fraction, dtype=np.float64), 0.0, 1.0)
    return np.floor(f * (int(n_levels) - 1) + 0.5 + 1e-4).astype(np.int64)


def agreement_levels(masks: Any, n_levels: int | None = None) -> np.ndarray:
    """Ordinal agreement level per pixel (uint8).

    Parameters
    ----------
    masks : mapping, sequence, stacked array or Case-like
    n_levels : int, optional
        Without it: the number of annotators marking each pixel (0..N). With it: the
        MHR mapped onto ``n_levels`` levels ``0..n_levels-1`` by
        :func:`fraction_to_level` (halves round up), for data sets whose number of
        annotators varies between images.
    """
    _, arrays = as_mask_list(masks)
    c = annotator_count(arrays)
    if n_levels is None:
        if len(arrays) > 255:
            raise ConfigError("agreement_levels: more than 255 masks do not fit in uint8")
        return c.astype(np.uint8)
    return fraction_to_level(c / float(len(arrays)), n_levels).astype(np.uint8)


def majority_vote(
    masks: Any, tie: Literal["foreground", "background"] = "foreground"
) -> np.ndarray:
    """Majority-vote consensus (bool): more than half of the masks mark the pixel.

    Parameters
    ----------
    tie : {"foreground", "background"}
        What exactly half of the masks (even N) gives.
    """
    if tie not in ("foreground", "background"):
        raise ConfigError(f"tie must be 'foreground' or 'background', got {tie!r}")
    _, arrays = as_mask_list(masks)
    c = annotator_count(arrays).astype(np.int32)
    n = len(arrays)
    return (2 * c >= n) if tie == "foreground" else (2 * c > n)


@dataclass
class StapleResult:
    """Output of :func:`staple`.

    Attributes
    ----------
    probability : ndarray of float32
        STAPLE's posterior probability of foreground per pixel.
    consensus : ndarray of bool
        ``probability >= threshold``.
    sensitivity, specificity : ndarray of float64, shape (N,)
        Per-mask estimates (NaN where undefined, e.g. sensitivity when every mask is
        empty).
    mask_ids : list of str
    """

    probability: np.ndarray
    consensus: np.ndarray
    sensitivity: np.ndarray
    specificity: np.ndarray
    mask_ids: list[str]


def staple(
    masks: Any,
    threshold: float = 0.5,
    max_iterations: int | None = None,
    confidence_weight: float | None = None,
    threads: int | None = None,
    engine: Literal["auto", "simpleitk"] = "auto",
) -> StapleResult:
    """STAPLE consensus: ITK's ``STAPLEImageFilter`` algorithm (Warfield et al. 2004).

    Parameters
    ----------
    masks : mapping, sequence, stacked array or Case-like
    threshold : float
        Probability at or above which the consensus is foreground.
    max_iterations : int, optional
        Passed to the filter.
    confidence_weight : float, optional
        Passed to the filter.
    threads : int, optional
        Threads of the code histogram, or of SimpleITK's filter (default: one per core);
        the review dock's worker leaves a core to the GUI.
    engine : {"auto", "simpleitk"}
        ``"auto"``: up to 16 masks, ITK's EM run on the annotator-set code histogram
        (:mod:`napari_iaa.agreement._staple`: the same iteration, ~100x faster on large
        images; results equal the filter's to rounding); more masks, SimpleITK's
        ``STAPLEImageFilter`` itself. ``"simpleitk"``: always the filter.

    Notes
    -----
    When every mask is empty (or every mask is full) the filter's estimate is
    undefined; the result is then the common mask, specificity (sensitivity) 1 and the
    undefined rate NaN. With two masks STAPLE cannot tell which is right where they
    disagree: those pixels get exactly 0.5 (in either order), so the consensus at the
    default threshold is their union (one mask empty: the other), and any threshold above
    0.5 gives their intersection.
    """
    ids, arrays = as_mask_list(masks)
    if not arrays:
        raise ConfigError("staple: no masks given")
    n = len(arrays)
    if engine not in ("auto", "simpleitk"):
        raise ConfigError(f"staple: engine must be 'auto' or 'simpleitk', got {engine!r}")
    if max_iterations is not None and int(max_iterations) < 1:
        # ITK would return its estimates uninitialised
        raise ConfigError(f"staple: max_iterations must be at least 1, got {max_iterations}")
    # one-byte masks as they are (the histogram reads nonzero as marked), others as bool
    bytes_ = [a if a.dtype.itemsize == 1 else a != 0 for a in arrays]
    any_fg = any(bool(b.any()) for b in bytes_)
    all_fg = all(bool(b.all()) for b in bytes_)
    if not any_fg or all_fg:
        value = 1.0 if all_fg else 0.0
        prob = np.full(arrays[0].shape, value, np.float32)
        sens = np.full(n, 1.0 if all_fg else np.nan)
        spec = np.full(n, np.nan if all_fg else 1.0)
        return StapleResult(prob, prob >= threshold, sens, spec, ids)
    if n <= HIST_MAX_MASKS and engine != "simpleitk":
        prob, sens, spec = staple_codes(
            bytes_, 1.0 if confidence_weight is None else float(confidence_weight),
            max_iterations, threads)
        return StapleResult(prob, prob >= threshold, sens, spec, ids)
    import SimpleITK as sitk

    images = [sitk.GetImageFromArray((b != 0).astype(np.uint8)) for b in bytes_]
    f = sitk.STAPLEImageFilter()
    f.SetForegroundValue(1.0)
    if max_iterations is not None:
        f.SetMaximumIterations(int(max_iterations))
    if confidence_weight is not None:
        f.SetConfidenceWeight(float(confidence_weight))
    if threads is not None:
        f.SetNumberOfThreads(max(1, int(threads)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = f.Execute(images)
    prob = as_probability(sitk.GetArrayFromImage(out))
    return StapleResult(prob, prob >= threshold, np.asarray(f.GetSensitivity(), np.float64),
                        np.asarray(f.GetSpecificity(), np.float64), ids)


def leave_one_out_dice(
    masks: Any,
    consensus: Literal["majority", "staple"] = "majority",
    empty: EmptyRule = "zero",
    tie: Literal["foreground", "background"] = "foreground",
) -> np.ndarray:
    """Per-mask reliability: Dice of each mask against the consensus of the others.

    Parameters
    ----------
    consensus : {"majority", "staple"}
        How the other masks are combined (with one other mask, it is that mask).
    empty : {"zero", "one", "ignore"}
        Score when both the mask and the consensus are empty.
    tie : {"foreground", "background"}
        Majority-vote tie rule.

    Returns
    -------
    ndarray of float64, shape (N,)
        NaN for every mask when there is only one.
    """
    if consensus not in ("majority", "staple"):
        raise ConfigError(f"consensus must be 'majority' or 'staple', got {consensus!r}")
    _, arrays = as_mask_list(masks)
    n = len(arrays)
    out = np.full(n, np.nan)
    if n < 2:
        return out
    if consensus == "majority" and n <= HIST_MAX_MASKS:
        return _loo_majority_from_codes(arrays, empty, tie)
    if consensus == "majority":
        total = annotator_count(arrays).astype(np.int32)
        for i, a in enumerate(arrays):
            others = total - (a != 0)
            k = n - 1
            cons = (2 * others >= k) if tie == "foreground" else (2 * others > k)
            out[i] = dice(a, cons, empty)
    else:
        for i, a in enumerate(arrays):
            rest = [b for j, b in enumerate(arrays) if j != i]
            cons = rest[0] if len(rest) == 1 else staple(rest).consensus
            out[i] = dice(a, cons, empty)
    return out


def _loo_majority_from_codes(arrays: list[np.ndarray], empty: str, tie: str) -> np.ndarray:
    """:func:`leave_one_out_dice` against the majority of the others, from one pass.

    Every pixel's annotator-set code (bit ``i``: mask ``i`` marks it) is histogrammed once
    (the live tracker's compiled kernel, :func:`~napari_iaa.agreement._counts.code_histogram`);
    mask ``i``'s size, its consensus's size and their overlap are sums over the codes, as
    the pixel-by-pixel version counts them, so every Dice is the same float. One read of
    the masks instead of N full-size consensus arrays (15 x 6000 x 4000: ~20 ms, was 1 s).
    """
    _check_empty(empty)
    n = len(arrays)
    hist = code_histogram([np.asarray(a).reshape(-1) for a in arrays])
    codes = np.arange(hist.size, dtype=np.int64)
    bits = (codes[:, None] >> np.arange(n)) & 1  # (2**n, n)
    others = bits.sum(axis=1)[:, None] - bits
    k = n - 1
    cons = (2 * others >= k) if tie == "foreground" else (2 * others > k)
    ca = hist @ bits
    cc = hist @ cons.astype(np.int64)
    inter = hist @ (bits & cons)
    out = np.empty(n)
    for i in range(n):
        tot = int(ca[i]) + int(cc[i])
        out[i] = _empty_value(empty) if tot == 0 else 2.0 * int(inter[i]) / tot
    return out
