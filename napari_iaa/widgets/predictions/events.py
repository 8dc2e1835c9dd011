"""Typed results and messages of the predictions dock's workers.

The workers also yield the shared :class:`~napari_iaa.widgets._common.events.Progress`
and :class:`~napari_iaa.widgets._common.events.DeviceInUse`; these are the dock's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_iaa.predict import CasePrediction

__all__ = ["LAYER_UNCAL", "CaseResult", "MapLayer", "QualityScore", "TriageRows"]

#: the name of the MHR map of a model without a calibrator (never called calibrated)
LAYER_UNCAL = "predicted MHR (uncalibrated)"


@dataclass(frozen=True, slots=True)
class MapLayer:
    """One predicted map as it is shown: layer name, data, colormap, contrast limits,
    ``k`` (``data`` holds k x k block means of the full-resolution map when ``k > 1``) and
    the case's voxel ``spacing`` (a volume's; None for a 2D case)."""

    name: str
    data: np.ndarray
    colormap: str
    limits: tuple[float, float]
    k: int = 1
    spacing: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class CaseResult:
    """What the case worker returns: the prediction, the map layers to show and its
    reliability diagram (RGBA, drawn in the worker; None when it was not drawn there)."""

    prediction: CasePrediction
    maps: tuple[MapLayer, ...]
    reliability: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class QualityScore:
    """A mask's predicted quality beside its actual Dice (leave-one-out for an annotator,
    against the annotators' majority for any other layer), and the model that predicted it."""

    predicted: float
    actual: float
    annotator: str
    model: str = ""


@dataclass(frozen=True, slots=True)
class TriageRows:
    """Rows of the triage table predicted by one batch (``case_id``, ``predicted_iaa``,
    ``n_masks``, ``empirical_iaa``, ``image_path``)."""

    rows: tuple[dict[str, Any], ...]
