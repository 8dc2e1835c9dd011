"""Prediction for one case (an image, a slice or a volume) or one batch of images."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from napari_iaa.data import Case
from napari_iaa.predict.models import ModelSet
from napari_iaa.predict.result import CasePrediction, empirical_values, fill_reliability
from napari_iaa.predict.volume import run_steps, volume_steps

if TYPE_CHECKING:
    from napari_iaa.models import IAAPredictor, QualityPredictor

__all__ = [
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
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CasePrediction:
    """Predict IAA, MHR maps and mask quality for one case, beside the empirical values.

    A volume (``case.is_volume``) is predicted slice by slice, ``batch_size`` slices per
    forward pass, and aggregated as :mod:`napari_iaa.predict.volume` documents;
    ``progress(slices done, total)`` is called after every batch and ``should_stop()``
    checked between batches (a stopped run returns a prediction with ``complete=False``
    and no predicted values). A 2D case is one forward pass per model (``batch_size``,
    ``progress`` and ``should_stop`` do not apply).
    """
    if case.is_volume:
        steps = volume_steps(case, models, empty=empty, n_bins=n_bins, with_ece=with_ece,
                             batch_size=batch_size)
        pred = run_steps(steps, progress, should_stop)
        if pred is None:
            return CasePrediction(case_id=str(case.case_id), mask_ids=list(case.mask_ids),
                                  raters=dict(case.raters or {}), spacing=case.spacing,
                                  complete=False)
        return pred
    out = CasePrediction(case_id=str(case.case_id), mask_ids=list(case.mask_ids),
                         raters=dict(case.raters or {}))
    models.stamp(out)
    out.empirical_iaa, out.loo_dice, out.mhr_empirical = empirical_values(case, empty)
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
