"""Calibrators (isotonic, temperature) and calibration metrics against several annotators.

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
from napari_iaa.calibration.metrics import (
    CURVAS_THRESHOLDS,
    binary_ece,
    brier,
    mhr_to_levels,
    multirater_ece,
    reliability_curve,
    rps,
    rps_from_mhr,
    thresholded_dice,
)
from napari_iaa.calibration.plots import plot_reliability, reliability_figure

__all__ = [
    "IsotonicCalibrator",
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
    "plot_reliability",
    "reliability_figure",
]
