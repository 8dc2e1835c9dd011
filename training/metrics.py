"""Held-out metrics for every task, against named baselines (numpy, no torch).

- ``iaa``: MAE, Pearson, Spearman of the predicted IAA; baseline: the constant median of
  the training targets (its MAE on the same cases). With a diagnosis head: balanced
  accuracy and AUROC (chance: 1 / n_classes and 0.5).
- ``mhr`` (and ``calibrate``): Brier and RPS against the empirical MHR, multi-rater ECE
  (top-label, 50 bins, per annotator and pooled over annotators), thresholded Dice at
  0.1 .. 0.8 (CURVAS), reliability curve (PNG, :func:`plot_reliability_curves`).
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
    "mhr_metrics",
    "plot_reliability_curves",
    "regression_metrics",
]

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


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


def mhr_metrics(
    p: np.ndarray,
    masks: Sequence[np.ndarray],
    raters: Sequence[Sequence[str]],
    level_probs: np.ndarray | None = None,
    n_bins: int = 50,
) -> dict[str, Any]:
    """Calibration and segmentation metrics of MHR maps ``p`` (n, S, S) against the masks.

    Per-annotator ECE pools each annotator's masks over the cases they drew; "pooled"
    pools every (case, annotator) pair. Thresholded Dice is averaged over cases.
    """
    from napari_iaa.calibration import binary_ece, brier, reliability_curve, rps, thresholded_dice

    mhr = np.stack([m.mean(0) for m in masks]).astype(np.float32)
    out: dict[str, Any] = {"n_cases": int(len(p)), "brier": brier(p, mhr)}
    if level_probs is not None:
        k = level_probs.shape[1]
        levels = np.rint(mhr * (k - 1)).astype(np.int64)
        out["rps"] = rps(np.moveaxis(level_probs, 1, 0), levels)
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
    return out


def plot_reliability_curves(curves: dict[str, dict], path: Path, title: str) -> None:
    """Write the reliability curves ``{label: mhr_metrics(...)["reliability"]}`` as a PNG."""
    from napari_iaa.calibration import plot_reliability

    arr = {k: {kk: np.asarray(vv, dtype=float) for kk, vv in v.items()} for k, v in curves.items()}
    plot_reliability(arr, path, title=f"Reliability: {title}")
