"""Prediction for one case (or one batch of images) beside the values measured on it."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_iaa.data import Case
from napari_iaa.predict.models import ModelSet

if TYPE_CHECKING:
    from napari_iaa.models import IAAPredictor, QualityPredictor

__all__ = [
    "CasePrediction",
    "bin_reliability",
    "ece_value",
    "fill_reliability",
    "predict_case",
    "predict_iaa_images",
    "predict_quality",
]


def predict_iaa_images(
    predictor: IAAPredictor,
    images: Sequence[np.ndarray],
    batch_size: int = 8,
    should_stop: Callable[[], bool] | None = None,
) -> list[float]:
    """Predicted IAA for a list of images (batched by the predictor; NaN for a bad image)."""
    preds = predictor.predict_many(list(images), batch_size=batch_size, should_stop=should_stop)
    return [p.iaa for p in preds]


@dataclass
class CasePrediction:
    """Everything predicted (and measured) for one case."""

    case_id: str
    mask_ids: list[str] = field(default_factory=list)
    raters: dict[str, str] = field(default_factory=dict)
    predicted_iaa: float = float("nan")
    empirical_iaa: float = float("nan")
    mhr_raw: np.ndarray | None = None
    mhr_calibrated: np.ndarray | None = None
    mhr_empirical: np.ndarray | None = None
    quality: dict[str, float] = field(default_factory=dict)
    loo_dice: dict[str, float] = field(default_factory=dict)
    ece: dict[str, Any] | None = None
    reliability: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def mhr_difference(self) -> np.ndarray | None:
        """Calibrated predicted MHR minus the empirical MHR (None without both)."""
        if self.mhr_calibrated is None or self.mhr_empirical is None:
            return None
        if self.mhr_calibrated.shape != self.mhr_empirical.shape:
            return None
        return self.mhr_calibrated - self.mhr_empirical

    def rows(self, mhr_map: str = "") -> list[dict[str, Any]]:
        """CSV rows (one per mask, or one for a case without masks)."""
        base = {
            "case_id": self.case_id,
            "n_masks": len(self.mask_ids),
            "predicted_iaa": self.predicted_iaa,
            "empirical_iaa": self.empirical_iaa,
            "mhr_map": mhr_map,
        }
        if not self.mask_ids:
            return [{**base, "mask_id": "", "annotator": "", "predicted_quality": math.nan,
                     "loo_dice": math.nan}]
        return [
            {
                **base,
                "mask_id": mid,
                "annotator": self.raters.get(mid, mid),
                "predicted_quality": self.quality.get(mid, math.nan),
                "loo_dice": self.loo_dice.get(mid, math.nan),
            }
            for mid in self.mask_ids
        ]


def _empirical(case: Case, empty: str) -> tuple[float, dict[str, float], np.ndarray | None]:
    """Empirical IAA, leave-one-out Dice per mask, and the empirical MHR map."""
    from napari_iaa import agreement as ag

    ids = list(case.mask_ids)
    if not ids:
        return math.nan, {}, None
    stack = case.stack()
    mhr = np.asarray(ag.mhr_map(stack), dtype=np.float32)
    iaa = float(ag.iaa(stack, empty=empty)) if len(ids) >= 2 else math.nan
    loo: dict[str, float] = {}
    if len(ids) >= 2:
        vals = np.asarray(ag.leave_one_out_dice(stack), float).ravel()
        loo = {mid: float(v) for mid, v in zip(ids, vals)}
    return iaa, loo, mhr


def predict_quality(pred: QualityPredictor, image: np.ndarray, masks: Mapping[str, np.ndarray],
                    batch_size: int = 8, should_stop: Callable[[], bool] | None = None,
                    ) -> dict[str, float]:
    """Predicted quality (Dice) for each mask of one image (NaN for an unusable mask)."""
    ids = list(masks)
    if not ids:
        return {}
    vals = pred.predict_many([(image, masks[k]) for k in ids], batch_size=batch_size,
                             should_stop=should_stop)
    return dict(zip(ids, vals))


def predict_case(
    case: Case,
    models: ModelSet,
    empty: str = "zero",
    n_bins: int = 10,
    with_ece: bool = True,
) -> CasePrediction:
    """Predict IAA, MHR maps and mask quality for one case, beside the empirical values."""
    out = CasePrediction(case_id=str(case.case_id), mask_ids=list(case.mask_ids),
                         raters=dict(case.raters or {}))
    out.empirical_iaa, out.loo_dice, out.mhr_empirical = _empirical(case, empty)
    image = case.image
    if models.iaa is not None:
        out.predicted_iaa = models.iaa.predict(image).iaa
    if models.mhr is not None:
        maps = models.mhr.predict(image)
        out.mhr_raw = np.asarray(maps.raw, dtype=np.float32)
        out.mhr_calibrated = np.asarray(maps.calibrated, dtype=np.float32)
        if with_ece and out.mhr_empirical is not None and out.mhr_calibrated.shape == out.mhr_empirical.shape:
            fill_reliability(out, [case.masks[m] for m in case.mask_ids], n_bins)
    if models.quality is not None and case.mask_ids:
        out.quality = predict_quality(models.quality, image, case.masks)
    return out


def bin_reliability(
    p: np.ndarray, mhr: np.ndarray, n_bins: int = 10, chunk: int = 1 << 18
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reliability curve: per equal-width bin of ``p``, mean p, mean MHR and pixel count.

    Accumulated over ``chunk`` pixels at a time (no full-size temporaries; a worker
    never holds the GIL for long).
    """
    p = np.asarray(p).reshape(-1)
    mhr = np.asarray(mhr).reshape(-1)
    counts, sp, se = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
    for s in range(0, p.size, chunk):
        pc = p[s:s + chunk].astype(np.float64)
        idx = np.clip((pc * n_bins).astype(int), 0, n_bins - 1)
        counts += np.bincount(idx, minlength=n_bins)
        sp += np.bincount(idx, weights=pc, minlength=n_bins)
        se += np.bincount(idx, weights=mhr[s:s + chunk].astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sp / counts, se / counts, counts


def fill_reliability(out: CasePrediction, masks: Sequence[np.ndarray], n_bins: int = 10) -> None:
    """Fill ``out.reliability`` (raw and calibrated curves) and ``out.ece`` (multi-rater).

    ``masks``: the annotators' masks (views are fine: nothing is copied or stacked).
    Nothing is filled unless the calibrated and empirical maps have the same shape.
    """
    emp, cal_map = out.mhr_empirical, out.mhr_calibrated
    if cal_map is None or emp is None or np.shape(cal_map) != np.shape(emp):
        return
    for label, p in (("raw", out.mhr_raw), ("calibrated", cal_map)):
        if p is not None and np.shape(p) == np.shape(emp):
            out.reliability[label] = bin_reliability(p, emp, n_bins)
    try:
        from napari_iaa import calibration as cal

        out.ece = dict(cal.multirater_ece(cal_map, list(masks)))
    except Exception as exc:  # noqa: BLE001 - the plot still works without the ECE
        out.ece = {"error": str(exc)}


def ece_value(ece: Mapping[str, Any] | None) -> float:
    """The pooled multi-rater ECE out of ``multirater_ece``'s dict (NaN if absent)."""
    if not ece or "pooled" not in ece:
        return math.nan
    return float(ece["pooled"])
