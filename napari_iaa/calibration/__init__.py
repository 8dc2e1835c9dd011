"""Calibrators (isotonic, peak + isotonic, temperature) and calibration metrics against several annotators.

Metrics come in two definitions: pooled over whole images (:mod:`.metrics`) and the
CURVAS challenge's per case and per annotator (:mod:`.curvas`).

Imports numpy, scipy, scikit-learn and matplotlib (Agg) only: no torch, Qt or napari.
"""

from __future__ import annotations

from napari_iaa.calibration.calibrators import (
    CALIBRATORS,
    IdentityCalibrator,
    IsotonicCalibrator,
    TemperatureCalibrator,
    calibrator_from_dict,
)
from napari_iaa.calibration.curvas import (
    CURVAS_BINS,
    CURVAS_MARGIN,
    CURVAS_THRESHOLDS,
    curvas_case,
    curvas_ece,
    curvas_thresholded_dice,
    curvas_volume_crps,
    union_bbox,
)
from napari_iaa.calibration.metrics import (
    DICE_THRESHOLDS,
    binary_ece,
    brier,
    mhr_to_levels,
    multirater_ece,
    reliability_curve,
    rps,
    rps_from_mhr,
    soft_level_cdf,
    soft_rps,
    thresholded_dice,
)
from napari_iaa.calibration.peak import PeakIsotonicCalibrator, plane_peaks
from napari_iaa.calibration.plots import plot_reliability, reliability_figure

__all__ = [
    "IsotonicCalibrator",
    "PeakIsotonicCalibrator",
    "plane_peaks",
    "TemperatureCalibrator",
    "IdentityCalibrator",
    "calibrator_from_dict",
    "CALIBRATORS",
    "brier",
    "rps",
    "rps_from_mhr",
    "mhr_to_levels",
    "binary_ece",
    "multirater_ece",
    "reliability_curve",
    "thresholded_dice",
    "CURVAS_THRESHOLDS",
    "CURVAS_BINS",
    "CURVAS_MARGIN",
    "DICE_THRESHOLDS",
    "curvas_case",
    "curvas_ece",
    "curvas_thresholded_dice",
    "curvas_volume_crps",
    "union_bbox",
    "soft_level_cdf",
    "soft_rps",
    "plot_reliability",
    "reliability_figure",
]
