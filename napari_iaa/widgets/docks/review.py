"""The review dock as napari opens it: scrolled, tabbed with our other docks."""

from __future__ import annotations

from typing import Any

from napari_iaa.widgets._common.scroll import fit_dock
from napari_iaa.widgets.review import ReviewWidget

__all__ = ["ReviewDock"]


class ReviewDock(ReviewWidget):
    """:class:`~napari_iaa.widgets.review.ReviewWidget` fitted to the window (see ``fit_dock``)."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__(napari_viewer)
        fit_dock(self)
