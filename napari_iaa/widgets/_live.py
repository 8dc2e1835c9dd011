"""Old home of the live agreement: now :mod:`napari_iaa.widgets.review.live` (and
:mod:`napari_iaa.agreement.display` for the MHR display helpers)."""
# shim: removed at integration (the predictions dock imports block_mean from here)

from napari_iaa.agreement.display import (
    MHR_DISPLAY_MAX_PIXELS,
    block_mean,
    mhr_display,
    mhr_factor,
)
from napari_iaa.widgets.review.live import *  # noqa: F403
from napari_iaa.widgets.review.live import LiveAgreement, LiveSetup, prepare_live
from napari_iaa.widgets.review.paint import paint_changes

__all__ = [
    "MHR_DISPLAY_MAX_PIXELS", "LiveAgreement", "LiveSetup", "block_mean", "mhr_display",
    "mhr_factor", "paint_changes", "prepare_live",
]
