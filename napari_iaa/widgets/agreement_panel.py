"""Old home of the agreement panel: now :mod:`napari_iaa.widgets.review.agreement_panel`."""
# shim: removed at integration

from napari_iaa.widgets.review.agreement_panel import *  # noqa: F403
from napari_iaa.widgets.review.agreement_panel import (
    EMPTY_RULE_LABELS,
    PER_MASK_COLUMNS,
    AgreementPanel,
    MHRLegend,
    heat_color,
)

__all__ = ["EMPTY_RULE_LABELS", "PER_MASK_COLUMNS", "AgreementPanel", "MHRLegend", "heat_color"]
