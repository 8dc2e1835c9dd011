"""Moved to :mod:`napari_iaa.widgets.predictions.plots`."""

# shim: removed at integration
from napari_iaa.widgets.predictions.plots import *  # noqa: F403
from napari_iaa.widgets.predictions.plots import AsyncPlot, render_reliability, render_training

__all__ = ["AsyncPlot", "render_reliability", "render_training"]
