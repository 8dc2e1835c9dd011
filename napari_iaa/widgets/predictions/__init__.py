"""The predictions dock: the open case's predicted IAA, MHR maps and mask quality beside
what the annotators did; triage of a folder or data set; the model settings.

One job per module: :mod:`.dock` (the tabs, wired), :mod:`.case_tab`, :mod:`.quality`,
:mod:`.triage_tab`, :mod:`.models_tab`, :mod:`.case_source` (where the case comes from),
:mod:`.map_layers` (the predicted maps as layers), :mod:`.jobs` (the worker bodies, no
Qt), :mod:`.events` (their typed messages), :mod:`.worker_slot` (one running job per
kind). Its figures are drawn off the GUI thread by ``widgets._common.plots``.
"""

from napari_iaa.widgets.predictions.dock import PredictionsWidget
from napari_iaa.widgets.predictions.map_layers import LAYER_CAL, LAYER_DIFF, LAYER_RAW

__all__ = ["LAYER_CAL", "LAYER_DIFF", "LAYER_RAW", "PredictionsWidget"]
