"""Held-out metrics for every task, against named baselines.

- ``iaa``: MAE, Pearson, Spearman of the predicted IAA; baseline: the constant median of
  the training targets (its MAE on the same cases). With a diagnosis head: balanced
  accuracy and AUROC (chance: 1 / n_classes and 0.5).
- ``mhr`` (and ``calibrate``): Brier and RPS against the empirical MHR, multi-rater ECE
  (top-label, 50 bins, per annotator and pooled over annotators), thresholded Dice at
  0.1 .. 0.8 (CURVAS), reliability curve (PNG).
- ``quality``: Pearson, Spearman, MAE of the predicted Dice; baseline: constant median.

``evaluate_checkpoint`` (``python -m training evaluate``) loads a checkpoint and runs the
metrics of its task on the test split recorded in its card (or on every case).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

__all__ = [
    "regression_metrics",
    "classification_metrics",
    "predict_batches",
    "predict_mhr",
    "mhr_metrics",
    "evaluate_checkpoint",
    "THRESHOLDS",
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


def predict_batches(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    fn: Callable[[torch.nn.Module, dict], Any],
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    should_stop: Callable[[], bool] | None = None,
) -> list[Any]:
    """Run ``fn(model, batch_on_device)`` over a data set in eval mode; list of outputs."""
    model.eval()
    outs = []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    with torch.no_grad():
        for batch in loader:
            if should_stop is not None and should_stop():
                raise InterruptedError("evaluation cancelled")
            batch = {k: v.to(device) for k, v in batch.items()}
            outs.append(fn(model, batch))
    return outs


def predict_mhr(models: Sequence[torch.nn.Module], dataset, device="cpu", batch_size: int = 64) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean expected fraction ``(n, S, S)`` over models, and level probs of the first (or None)."""
    from napari_iaa.models.networks import expected_fraction

    ps, lps = [], []
    for k, m in enumerate(models):
        def fn(model, batch, keep=(k == 0)):
            logits = model(batch["image"])
            if logits.dim() == 3:  # an ensemble already returns the fraction
                return logits.float().cpu().numpy(), None
            probs = torch.softmax(logits.float(), 1)
            return expected_fraction(logits).cpu().numpy(), (probs.cpu().numpy().astype(np.float32) if keep else None)

        outs = predict_batches(m, dataset, fn, device, batch_size)
        ps.append(np.concatenate([o[0] for o in outs]))
        if k == 0 and outs and outs[0][1] is not None:
            lps = np.concatenate([o[1] for o in outs])
    p = np.mean(ps, axis=0).astype(np.float32)
    return p, (lps if isinstance(lps, np.ndarray) else None)


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


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    """Write metrics JSON atomically (NaN -> null)."""
    from training.engine import atomic_write_text

    atomic_write_text(Path(path), json.dumps(_clean(metrics), indent=1))


def evaluate_checkpoint(
    model_path: str | Path,
    data: str | Path,
    layout: str | None = None,
    split: str = "test",
    max_cases: int | None = None,
    device: str = "auto",
    out: str | Path | None = None,
    workers: int = 2,
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Metrics of a saved checkpoint on a data set.

    Parameters
    ----------
    model_path : path
        Checkpoint (``.json`` card, ``.safetensors`` or stem).
    data : path
        Data set.
    split : {"test", "val", "calib", "all"}
        Which cases: the groups the card's split put into that split (cases of groups the
        model never saw when the data set differs), or every case with ``"all"``.
    out : path, optional
        Folder for ``<name>.eval.json`` and the reliability PNG.

    Returns
    -------
    dict
        The metrics (also written when ``out`` is given).
    """
    from napari_iaa.models.checkpoint import load_checkpoint
    from napari_iaa.models.device import pick_device
    from training.datasets import build_cache
    from training.fitting import task_for_card
    from training.tasks import TASKS, select_split

    dev = pick_device(device)
    model, card = load_checkpoint(model_path, device=dev)
    size = TASKS[card.task].cache_size(int(card.input_size[0]))

    cache = build_cache(data, size, layout=layout, empty=(card.extra or {}).get("empty_pair", "zero"),
                        max_cases=max_cases, workers=workers, cache_dir=cache_dir,
                        progress=progress, should_stop=should_stop)
    idx = select_split(cache, card.split, split)
    task = task_for_card(card, cache, data)
    metrics = task.evaluate(model, card, cache, idx, dev, out_png=(Path(out) / f"{card.name}_reliability.png") if out else None)
    metrics = {"model": str(model_path), "data": str(data), "split": split, "n_cases": len(idx), **metrics}
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        write_metrics(Path(out) / f"{card.name}.eval.json", metrics)
    return _clean(metrics)
