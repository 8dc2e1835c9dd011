"""The review dock: a case's masks, live agreement, consensus, saving, data set and cohort.

One job per module: :mod:`.dock` (the widget: UI and wiring), :mod:`.navigation`,
:mod:`.loader`, :mod:`.binding`, :mod:`.live` (with :mod:`.paint`), :mod:`.layers`,
:mod:`.reliability`, :mod:`.edits`, :mod:`.warmup`, :mod:`.agreement_panel`,
:mod:`.events`.
"""

from napari_iaa.widgets.review.agreement_panel import AgreementPanel
from napari_iaa.widgets.review.dock import ReviewWidget
from napari_iaa.widgets.review.layers import case_layer_data, tag_of
from napari_iaa.widgets.review.live import LiveAgreement, LiveSetup, prepare_live
from napari_iaa.widgets.review.navigation import UNSAVED_POLICIES
from napari_iaa.widgets.review.paint import paint_changes

__all__ = [
    "UNSAVED_POLICIES",
    "AgreementPanel",
    "LiveAgreement",
    "LiveSetup",
    "ReviewWidget",
    "case_layer_data",
    "paint_changes",
    "prepare_live",
    "tag_of",
]
