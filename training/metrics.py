"""Held-out metrics for every task, against named baselines (numpy, no torch).

- ``iaa``: MAE, Pearson, Spearman of the predicted IAA; baseline: the constant median of
  the training targets (its MAE on the same cases). With a diagnosis head: balanced
  accuracy and AUROC (chance: 1 / n_classes and 0.5).
- ``mhr`` (and ``calibrate``): two sets side by side.
  *Pooled* (whole images, every case's pixels together): Brier and RPS against the
  empirical MHR (RPS against the soft target of the exact fraction, and against the
  half-up rounded level), multi-rater ECE (top-label, 50 bins, per annotator and pooled
  over annotators), thresholded Dice at 0.1 .. 0.8 (``>=``, both-empty cases left out),
  reliability curve (PNG, :func:`plot_reliability_curves`).
  *CURVAS* (``"curvas"``: the challenge's definitions, :mod:`napari_iaa.calibration.curvas`,
  averaged over cases): per case and per annotator ECE in the union-of-annotations box
  +-20 native pixels, thresholded Dice at ``linspace(0.1, 0.8, 6)`` (``>``, both-empty
  1), CRPS of the predicted area (volume in 3-D) in native pixels.
- ``quality``: Pearson, Spearman, MAE of the predicted Dice; baseline: constant median.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "THRESHOLDS",
    "classification_metrics",
    "curvas_metrics",
    "mhr_metrics",
    "mhr_summary",
    "plot_reliability_curves",
    "regression_metrics",
]

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)  # the pooled thresholded Dice's


def _corr(a: np.ndarray, b: np.ndarray, kind: str) -> float:
    from scipy import stats

    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    f = stats.pearsonr if kind == "pearson" else stats.spearmanr
    return float(f(a, b)[0])


def regression_metrics(pred: Sequence[float], target: Sequence[float], baseline: float) -> dict[str, float]:
    """MAE, Pearson, Spearman of ``pred`` and the MAE of the constant ``baseline``."""
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(t)
    p, t = p[ok], t[ok]
    mae = float(np.mean(np.abs(p - t))) if len(t) else float("nan")
    base = float(np.mean(np.abs(baseline - t))) if len(t) else float("nan")
    return {
        "n": int(len(t)),
        "mae": mae,
        "pearson": _corr(p, t, "pearson"),
        "spearman": _corr(p, t, "spearman"),
        "baseline_constant": float(baseline),
        "baseline_mae": base,
        "mae_vs_baseline": mae / base if base > 0 else float("nan"),
    }


def classification_metrics(probs: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Balanced accuracy and AUROC (one-vs-rest when more than two classes)."""
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    keep = labels >= 0
    probs, labels = probs[keep], labels[keep]
    out: dict[str, Any] = {"n": int(len(labels)), "classes": list(classes),
                           "chance_balanced_accuracy": 1.0 / max(1, len(classes)), "chance_auroc": 0.5}
    if len(labels) == 0:
        return out
    out["balanced_accuracy"] = float(balanced_accuracy_score(labels, probs.argmax(1)))
    try:
        if len(classes) == 2:
            out["auroc"] = float(roc_auc_score(labels, probs[:, 1]))
        else:
            out["auroc"] = float(roc_auc_score(labels, probs, multi_class="ovr", labels=list(range(len(classes)))))
    except ValueError:
        out["auroc"] = float("nan")
    return out


def _native_scale(size: tuple[int, ...], shape: Sequence[int] | None) -> tuple[list[int], float]:
    """CURVAS margin per axis and native pixels per evaluated pixel for a map of ``size``."""
    from napari_iaa.calibration import CURVAS_MARGIN

    if not shape:
        return [CURVAS_MARGIN] * len(size), 1.0
    native = [int(v) for v in shape][: len(size)]
    margin = [max(1, int(round(CURVAS_MARGIN * s / n))) for s, n in zip(size, native)]
    return margin, float(np.prod(native) / np.prod(size))


def curvas_metrics(
    p: np.ndarray,
    masks: Sequence[np.ndarray],
    raters: Sequence[Sequence[str]],
    shapes: Sequence[Sequence[int]] | None = None,
) -> dict[str, Any]:
    """The CURVAS challenge's metrics of MHR maps ``p`` (n, S, S), averaged over cases.

    Parameters
    ----------
    p : ndarray
        Predicted foreground probability per case.
    masks, raters : sequences
        Each case's ``(N_i, S, S)`` masks and their annotators.
    shapes : sequence, optional
        Each case's native image shape: the 20-pixel margin is scaled to the evaluated
        size and the area unit is a native pixel (the maps are evaluated at the model's
        size). Without it: 20 evaluated pixels, areas in evaluated pixels.

    Returns
    -------
    dict
        ``ece_mean`` (mean over cases of the mean over the case's annotators; cases
        nobody marked have no box and are left out, counted in
        ``n_cases_no_annotation``), ``ece_per_annotator`` (per annotator id, mean over
        the cases they drew), ``thresholded_dice`` (per threshold) and
        ``thresholded_dice_mean``, ``crps_mean`` (area per case), ``definition``.
    """
    from napari_iaa.calibration import CURVAS_THRESHOLDS, curvas_case

    eces, dices, crps = [], [], []
    by_rater: dict[str, list[float]] = {}
    for i, (ms, rs) in enumerate(zip(masks, raters)):
        margin, unit = _native_scale(p[i].shape, shapes[i] if shapes else None)
        c = curvas_case(p[i], ms, margin=margin, voxel_volume=unit)
        dices.append(c["thresholded_dice"])
        crps.append(c["crps"])
        if c["bbox"] is None:
            continue
        eces.append(c["ece_mean"])
        for r, e in zip(rs, c["ece_per_annotator"]):
            by_rater.setdefault(str(r), []).append(e)
    per_t = np.mean(dices, axis=0) if dices else np.full(len(CURVAS_THRESHOLDS), np.nan)

    def mean(v: list[float]) -> float:
        return float(np.mean(v)) if v else float("nan")

    return {
        "definition": "CURVAS (napari_iaa.calibration.curvas): per case; ECE per annotator in the "
                      "union-of-annotations box +-20 native px, 50 bins + a bin for 1.0; Dice at "
                      "linspace(0.1, 0.8, 6) with '>', both-empty 1; CRPS of the area in native px",
        "n_cases": int(len(dices)),
        "n_cases_no_annotation": int(len(dices) - len(eces)),
        "ece_mean": mean(eces),
        "ece_per_annotator": {r: mean(v) for r, v in sorted(by_rater.items())},
        "thresholded_dice": {f"{t:.2f}": float(v) for t, v in zip(CURVAS_THRESHOLDS, per_t)},
        "thresholded_dice_mean": mean([float(np.mean(d)) for d in dices]),
        "crps_mean": mean(crps),
    }


def mhr_metrics(
    p: np.ndarray,
    masks: Sequence[np.ndarray],
    raters: Sequence[Sequence[str]],
    level_probs: np.ndarray | None = None,
    n_bins: int = 50,
    shapes: Sequence[Sequence[int]] | None = None,
) -> dict[str, Any]:
    """Calibration and segmentation metrics of MHR maps ``p`` (n, S, S) against the masks.

    Pooled: per-annotator ECE pools each annotator's masks over the cases they drew;
    "pooled" pools every (case, annotator) pair; thresholded Dice is averaged over
    cases. ``"curvas"``: :func:`curvas_metrics` (``shapes``: native image shapes).
    """
    from napari_iaa.calibration import (
        binary_ece,
        brier,
        mhr_to_levels,
        reliability_curve,
        rps,
        soft_rps,
        thresholded_dice,
    )

    mhr = np.stack([m.mean(0) for m in masks]).astype(np.float32)
    out: dict[str, Any] = {"n_cases": int(len(p)), "brier": brier(p, mhr)}
    if level_probs is not None:
        k = level_probs.shape[1]
        lp = np.moveaxis(level_probs, 1, 0)
        out["rps"] = soft_rps(lp, mhr)
        out["rps_rounded_levels"] = rps(lp, mhr_to_levels(mhr, k))
        out["rps_levels"] = int(k)
    by_rater: dict[str, tuple[list, list]] = {}
    allp, allm = [], []
    for i, (ms, rs) in enumerate(zip(masks, raters)):
        for m, r in zip(ms, rs):
            by_rater.setdefault(str(r), ([], []))
            by_rater[str(r)][0].append(p[i].ravel())
            by_rater[str(r)][1].append(m.ravel())
            allp.append(p[i].ravel())
            allm.append(m.ravel())
    per = {r: binary_ece(np.concatenate(a), np.concatenate(b), n_bins) for r, (a, b) in sorted(by_rater.items())}
    out["ece_per_annotator"] = per
    out["ece_mean"] = float(np.mean(list(per.values()))) if per else float("nan")
    out["ece_pooled"] = binary_ece(np.concatenate(allp), np.concatenate(allm), n_bins) if allp else float("nan")
    td = np.array([thresholded_dice(p[i], mhr[i], THRESHOLDS, empty="ignore")["dice"] for i in range(len(p))], dtype=np.float64)
    with np.errstate(all="ignore"):
        per_t = np.nanmean(td, axis=0) if len(td) else np.full(len(THRESHOLDS), np.nan)
    out["thresholded_dice"] = {f"{t:.1f}": float(v) for t, v in zip(THRESHOLDS, per_t)}
    out["thresholded_dice_mean"] = float(np.nanmean(per_t)) if np.any(np.isfinite(per_t)) else float("nan")
    out["reliability"] = {k: np.asarray(v).tolist() for k, v in reliability_curve(p, mhr, 10).items()}
    out["curvas"] = curvas_metrics(p, masks, raters, shapes)
    return out


def mhr_summary(blocks: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The headline pooled and CURVAS numbers of each :func:`mhr_metrics` block, side by side.

    ``blocks`` maps a label (``uncalibrated``, ``isotonic``, ...) to an ``mhr_metrics``
    result; other entries are skipped. The result is what cards and tables quote.
    """
    out: dict[str, dict[str, float]] = {}
    for name, b in blocks.items():
        if not isinstance(b, dict) or "curvas" not in b:
            continue
        c = b["curvas"]
        out[name] = {"ece_pooled": b["ece_pooled"], "curvas_ece": c["ece_mean"],
                     "thresholded_dice_pooled": b["thresholded_dice_mean"],
                     "curvas_thresholded_dice": c["thresholded_dice_mean"],
                     "curvas_crps": c["crps_mean"], "brier": b["brier"]}
    return out


def plot_reliability_curves(curves: dict[str, dict], path: Path, title: str) -> None:
    """Write the reliability curves ``{label: mhr_metrics(...)["reliability"]}`` as a PNG."""
    from napari_iaa.calibration import plot_reliability

    arr = {k: {kk: np.asarray(vv, dtype=float) for kk, vv in v.items()} for k, v in curves.items()}
    plot_reliability(arr, path, title=f"Reliability: {title}")
