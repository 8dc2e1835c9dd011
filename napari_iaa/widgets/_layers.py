"""Old home of the review dock's layer tagging: now :mod:`napari_iaa.widgets.review.layers`."""
# shim: removed at integration (napari_iaa/_napari.py and the training dock import from here)

from napari_iaa.widgets.review.layers import *  # noqa: F403
from napari_iaa.widgets.review.layers import (
    MAJORITY_COLOR,
    MHR_COLORMAP,
    STAPLE_COLOR,
    TAG,
    annotator_color,
    apply_contours,
    case_layer_data,
    new_load_id,
    single_color_labels,
    tag_of,
)
from napari_iaa.widgets.review.warmup import freeze_gc_once

__all__ = [
    "MAJORITY_COLOR", "MHR_COLORMAP", "STAPLE_COLOR", "TAG", "annotator_color",
    "apply_contours", "case_layer_data", "freeze_gc_once", "new_load_id",
    "single_color_labels", "tag_of",
]
