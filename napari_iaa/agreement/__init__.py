"""Agreement between annotators: pure numpy/scipy (plus SimpleITK for STAPLE).

Dice/IoU and pairwise matrices, IAA (mean pairwise Dice) with an empty-pair rule, MHR and
agreement-level maps (and their block-mean display), majority vote and STAPLE consensus,
leave-one-out reliability, the incremental :class:`AgreementTracker` for live editing,
detection vs boundary agreement, surface distances (HD95/ASSD as MONAI defines them),
per-slice profiles of volumes, and cohort statistics.
"""

from __future__ import annotations

from napari_iaa.agreement._counts import pairwise_counts
from napari_iaa.agreement.cohort import (
    CohortResult,
    cohort_statistics,
    load_imapp_tables,
    plot_cohort,
)
from napari_iaa.agreement.consensus import (
    StapleResult,
    agreement_levels,
    annotator_count,
    leave_one_out_dice,
    majority_vote,
    mhr_map,
    staple,
)
from napari_iaa.agreement.detection import (
    DetectionAgreement,
    detection_agreement,
    detection_from_counts,
)
from napari_iaa.agreement.display import (
    MHR_DISPLAY_MAX_PIXELS,
    block_mean,
    mhr_display,
    mhr_factor,
)
from napari_iaa.agreement.metrics import (
    EMPTY_RULES,
    EmptyRule,
    as_mask_list,
    dice,
    dice_from_counts,
    iaa,
    iaa_from_matrix,
    iou,
    iou_from_counts,
    pairwise_dice,
    pairwise_iou,
)
from napari_iaa.agreement.profile import SliceProfile, slice_profile
from napari_iaa.agreement.summary import AgreementStats, summarize
from napari_iaa.agreement.surface import (
    SurfaceDistances,
    average_surface_distance,
    hausdorff_distance,
    mask_surface,
    pairwise_surface_distances,
)
from napari_iaa.agreement.tracker import AgreementTracker

__all__ = [
    "EMPTY_RULES",
    "MHR_DISPLAY_MAX_PIXELS",
    "AgreementStats",
    "AgreementTracker",
    "CohortResult",
    "DetectionAgreement",
    "EmptyRule",
    "SliceProfile",
    "StapleResult",
    "SurfaceDistances",
    "agreement_levels",
    "annotator_count",
    "as_mask_list",
    "average_surface_distance",
    "block_mean",
    "cohort_statistics",
    "detection_agreement",
    "detection_from_counts",
    "dice",
    "dice_from_counts",
    "hausdorff_distance",
    "iaa",
    "iaa_from_matrix",
    "iou",
    "iou_from_counts",
    "leave_one_out_dice",
    "load_imapp_tables",
    "majority_vote",
    "mask_surface",
    "mhr_display",
    "mhr_factor",
    "mhr_map",
    "pairwise_counts",
    "pairwise_dice",
    "pairwise_iou",
    "pairwise_surface_distances",
    "plot_cohort",
    "slice_profile",
    "staple",
    "summarize",
]
