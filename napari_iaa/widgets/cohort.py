"""Moved to :mod:`napari_iaa.widgets.dataset`."""

# shim: removed at integration
from napari_iaa.widgets.dataset import *  # noqa: F403
from napari_iaa.widgets.dataset import CohortPanel, result_frame

__all__ = ["CohortPanel", "result_frame"]
