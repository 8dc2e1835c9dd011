"""What a prediction of one case holds, beside the values measured on it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_iaa.data import Case

__all__ = [
    "CasePrediction",
    "bin_reliability",
    "curvas_ece_of",
    "curvas_ece_value",
    "ece_value",
    "empirical_values",
    "fill_reliability",
]


@dataclass
class CasePrediction:
    """Everything predicted (and measured) for one case (an image, a slice or a volume)."""

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
    #: a volume's voxel spacing (array axis order; None: a 2D case or unit voxels)
    spacing: tuple[float, ...] | None = None
    #: volumes: the IAA predicted per slice (NaN where the model did not run) and the
    #: weights of the volume's aggregate (see :mod:`napari_iaa.predict.volume`)
    slice_iaa: np.ndarray | None = None
    slice_weights: np.ndarray | None = None
    #: volumes: per mask, its quality predicted per slice (NaN where it is empty)
    slice_quality: dict[str, np.ndarray] = field(default_factory=dict)
    #: False when the run was stopped before every slice was predicted
    complete: bool = True
    #: slot (iaa, mhr, quality) -> the name of the model that predicted it
    models: dict[str, str] = field(default_factory=dict)
    #: False when the MHR model has no calibrator: ``mhr_calibrated`` is then its raw
    #: output and must not be presented as calibrated
    mhr_is_calibrated: bool = True

    @property
    def mhr_label(self) -> str:
        """"calibrated" or "uncalibrated" ("" without an MHR prediction)."""
        if "mhr" not in self.models:
            return ""
        return "calibrated" if self.mhr_is_calibrated else "uncalibrated"

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
            "iaa_model": self.models.get("iaa", ""),
            "quality_model": self.models.get("quality", ""),
            "mhr_model": self.models.get("mhr", ""),
            "mhr_calibration": self.mhr_label,
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


def empirical_values(case: Case, empty: str) -> tuple[float, dict[str, float], np.ndarray | None]:
    """Empirical IAA, leave-one-out Dice per mask, and the empirical MHR map."""
    from napari_iaa import agreement as ag

    ids = list(case.mask_ids)
    if not ids:
        return math.nan, {}, None
    # the masks as they are (views), not ``case.stack()``: a copy of every mask (360 MB
    # for 15 x 6000 x 4000) that each of these reads only once
    masks = [case.masks[m] for m in ids]
    mhr = np.asarray(ag.mhr_map(masks), dtype=np.float32)
    iaa = float(ag.iaa(masks, empty=empty)) if len(ids) >= 2 else math.nan
    loo: dict[str, float] = {}
    if len(ids) >= 2:
        vals = np.asarray(ag.leave_one_out_dice(masks), float).ravel()
        loo = {mid: float(v) for mid, v in zip(ids, vals)}
    return iaa, loo, mhr


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
    """Fill ``out.reliability`` (raw and calibrated curves; one "uncalibrated" curve when
    ``out.mhr_is_calibrated`` is False) and ``out.ece``.

    ``out.ece`` holds the CURVAS challenge's ECE of the case (:func:`curvas_ece_of`:
    ``curvas``, ``curvas_per_annotator``), the field-standard figure docs/metrics.md
    quotes, beside the pooled multi-rater ECE over the whole image (``pooled``, ``mean``,
    ``per_annotator`` of :func:`~napari_iaa.calibration.multirater_ece`).

    ``masks``: the annotators' masks (views are fine: nothing is copied or stacked).
    Nothing is filled unless the calibrated and empirical maps have the same shape.
    """
    emp, cal_map = out.mhr_empirical, out.mhr_calibrated
    if cal_map is None or emp is None or np.shape(cal_map) != np.shape(emp):
        return
    # an MHR model without a calibrator: its "calibrated" map is the raw one, one curve
    curves = (("raw", out.mhr_raw), ("calibrated", cal_map)) if out.mhr_is_calibrated else (
        ("uncalibrated", cal_map),)
    for label, p in curves:
        if p is not None and np.shape(p) == np.shape(emp):
            out.reliability[label] = bin_reliability(p, emp, n_bins)
    try:
        from napari_iaa import calibration as cal

        ece = dict(cal.multirater_ece(cal_map, list(masks)))
        ece.update(curvas_ece_of(cal_map, masks))
        out.ece = ece
    except Exception as exc:  # noqa: BLE001 - the plot still works without the ECE
        out.ece = {"error": str(exc)}


def curvas_ece_of(p: np.ndarray, masks: Sequence[np.ndarray]) -> dict[str, Any]:
    """The CURVAS ECE of one case: per annotator, inside the union of the masks' box.

    :func:`~napari_iaa.calibration.curvas_ece` (50-bin top-label ECE, confidence 1.0 in a
    bin of its own) of ``p`` against each mask, all in one pass
    (:func:`~napari_iaa.calibration.curvas.curvas_ece_many`), on the union of all masks'
    bounding box widened by 20 native pixels (voxels in 3D); ``curvas`` is their mean, NaN
    when no annotator marked anything (no box).
    """
    from napari_iaa import calibration as cal
    from napari_iaa.calibration.curvas import curvas_ece_many

    box = cal.union_bbox(masks, cal.CURVAS_MARGIN)
    if box is None:
        return {"curvas_per_annotator": [math.nan] * len(masks), "curvas": math.nan}
    # one pass over p for all annotators (the bins depend on p alone)
    per = curvas_ece_many(np.asarray(p)[box], [np.asarray(m)[box] for m in masks])
    return {"curvas_per_annotator": per, "curvas": float(np.mean(per)) if per else math.nan}


def ece_value(ece: Mapping[str, Any] | None) -> float:
    """The pooled multi-rater ECE out of :func:`fill_reliability`'s dict (NaN if absent)."""
    if not ece or "pooled" not in ece:
        return math.nan
    return float(ece["pooled"])


def curvas_ece_value(ece: Mapping[str, Any] | None) -> float:
    """The case's CURVAS ECE out of :func:`fill_reliability`'s dict (NaN if absent)."""
    if not ece or "curvas" not in ece:
        return math.nan
    return float(ece["curvas"])
