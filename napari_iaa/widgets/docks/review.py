"""The review dock as napari opens it: scrolled, tabbed with our other docks."""

from __future__ import annotations

from typing import Any

from napari_iaa.widgets._common.scroll import fit_dock
from napari_iaa.widgets.review import ReviewWidget
from napari_iaa.widgets.review.warmup import import_when_idle

__all__ = ["PREDICTIONS_MODULES", "ReviewDock", "TRAINING_MODULES"]

#: the Predictions dock's own modules (~8 ms of the click that opens it, more under load),
#: imported once the review dock has been idle (``warmup.import_when_idle``). Named here,
#: above both docks: ``widgets.predictions`` imports ``widgets.review``, which must not
#: name it back. Not torch: the dock imports that in a worker when it opens.
PREDICTIONS_MODULES = ("napari_iaa.widgets.predictions", "napari_iaa.widgets.docks.predictions")
#: the Training dock's (~20 ms of the click that opens it), the same way; no torch either:
#: its run's worker loads torch
TRAINING_MODULES = ("napari_iaa.widgets.training", "napari_iaa.widgets.docks.training")


class ReviewDock(ReviewWidget):
    """:class:`~napari_iaa.widgets.review.ReviewWidget` fitted to the window (see ``fit_dock``)."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer)
        fit_dock(self)
        import_when_idle(PREDICTIONS_MODULES + TRAINING_MODULES)
