"""Qt widgets: the review dock with its agreement panel, data-set table and cohort tab,
the predictions dock and the training dock.

The only room that imports Qt and napari; it calls the core rooms and runs long work
through :func:`napari_iaa.widgets._common.start_worker`. ``PredictionsWidget`` and
``TrainingWidget`` are imported on first use (the training dock pulls in torch).
"""

from __future__ import annotations

from typing import Any

from napari_iaa.widgets._triton_guard import guard_triton

guard_triton()  # before anything imports timm: triton + Mesa's LLVM is a segfault

from napari_iaa.widgets.dataset import CaseTableModel, CohortPanel, DatasetPanel  # noqa: E402
from napari_iaa.widgets.review import AgreementPanel, ReviewWidget  # noqa: E402

__all__ = [
    "AgreementPanel",
    "CaseTableModel",
    "CohortPanel",
    "DatasetPanel",
    "PredictionsWidget",
    "ReviewWidget",
    "TrainingWidget",
]

_LAZY = {
    "PredictionsWidget": "napari_iaa.widgets.predictions",
    "TrainingWidget": "napari_iaa.widgets.training",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'napari_iaa.widgets' has no attribute {name!r}")
