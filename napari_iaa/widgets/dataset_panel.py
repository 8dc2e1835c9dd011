"""Moved to :mod:`napari_iaa.widgets.dataset`."""

# shim: removed at integration
from napari_iaa.widgets.dataset import *  # noqa: F403
from napari_iaa.widgets.dataset import CaseTableModel, DatasetPanel

__all__ = ["CaseTableModel", "DatasetPanel"]
