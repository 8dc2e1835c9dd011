"""Moved: the Models tab to :mod:`napari_iaa.widgets.predictions.models_tab`, the shared
registry and ``MODEL_EVENTS`` to :mod:`napari_iaa.widgets._common.model_events`,
``notify_error`` to :mod:`napari_iaa.widgets._common`."""

# shim: removed at integration
from collections.abc import Mapping
from typing import Any

from napari_iaa.widgets._common import notify_error
from napari_iaa.widgets._common.model_events import MODEL_EVENTS, _ModelEvents, shared_registry
from napari_iaa.widgets.predictions.models_tab import *  # noqa: F403
from napari_iaa.widgets.predictions.models_tab import (
    SLOTS,
    ModelInfo,
    ModelSettingsWidget,
    metrics_summary,
)

#: use napari_iaa.models.DEVICE_CHOICES
DEVICES = ("auto", "cuda", "mps", "cpu")
_SHARED_REGISTRY = None  # tests patched it here; the real one is in _common.model_events


def card_summary(card: Any, limit: int = 3) -> str:
    """A card's (or ``{"metrics": ...}``'s) held-out metrics; use ``metrics_summary``."""
    metrics = card.get("metrics") if isinstance(card, Mapping) else card.metrics
    return metrics_summary(metrics, limit)


__all__ = ["DEVICES", "MODEL_EVENTS", "SLOTS", "ModelInfo", "ModelSettingsWidget",
           "_ModelEvents", "card_summary", "metrics_summary", "notify_error",
           "shared_registry"]
