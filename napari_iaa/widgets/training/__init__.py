"""The training dock: a form generated from ``training.FitConfig``, a fit in a worker,
typed messages from its callback, the trained model registered for the predictions dock.

``dock`` (the widget), ``form`` (Qt rows from the config's fields), ``events`` (the
messages and the callback that sends them), ``run`` (settings -> config, the worker body).
"""

from napari_iaa.widgets.training.dock import TrainingWidget
from napari_iaa.widgets.training.run import BACKBONES, TASK_CHOICES

__all__ = ["BACKBONES", "TASK_CHOICES", "TrainingWidget"]
