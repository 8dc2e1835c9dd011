"""Two kinds of disagreement: *whether* a lesion is there, and *where* its border runs.

On LIDC most low-IAA slices only say that a reader did not mark the slice (an empty mask
scores Dice 0 against every other). Splitting the IAA into detection agreement (how many
annotators marked anything) and boundary agreement (the IAA among those who marked) lets a
reviewer flag the two separately.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_iaa.agreement._counts import pairwise_counts
from napari_iaa.agreement.metrics import (
    as_mask_list,
    dice_from_counts,
    iaa_from_matrix,
    rater_list,
)

__all__ = ["DetectionAgreement", "detection_agreement", "detection_from_counts"]


@dataclass(frozen=True)
class DetectionAgreement:
    """Detection and boundary agreement of one case.

    Attributes
    ----------
    n_annotators : int
        Masks in the case.
    n_marked : int
        Masks that are not empty.
    detection_agreement : float
        ``n_marked / n_annotators`` (NaN without masks).
    iaa_marked : float
        IAA (mean pairwise Dice) over the non-empty masks only; NaN with fewer than two.
    marked : list of str
        Ids of the non-empty masks.
    """

    n_annotators: int
    n_marked: int
    detection_agreement: float
    iaa_marked: float
    marked: list[str]


def detection_from_counts(
    ids: Sequence[str],
    counts: np.ndarray,
    intersections: np.ndarray,
    raters: Sequence[str] | None = None,
    same_rater_pairs: bool = True,
) -> DetectionAgreement:
    """:class:`DetectionAgreement` from foreground and pairwise intersection counts.

    Parameters
    ----------
    ids : sequence of str
        Mask ids, aligned with ``counts``.
    counts : ndarray (N,)
        Foreground voxels per mask.
    intersections : ndarray (N, N)
        Pairwise intersection counts (as :func:`napari_iaa.agreement.pairwise_counts` or an
        ``AgreementTracker`` keep them).
    raters : sequence of str, optional
        Annotator of each mask, for ``same_rater_pairs=False``.
    same_rater_pairs : bool
        Whether pairs drawn by the same annotator count.
    """
    counts = np.asarray(counts)
    keep = np.flatnonzero(counts > 0)
    n, k = len(ids), int(keep.size)
    if k >= 2:
        sub = dice_from_counts(counts[keep], np.asarray(intersections)[np.ix_(keep, keep)])
        sub_raters = None if raters is None else [raters[i] for i in keep]
        iaa_marked = iaa_from_matrix(sub, sub_raters, same_rater_pairs)
    else:
        iaa_marked = float("nan")
    return DetectionAgreement(
        n_annotators=n,
        n_marked=k,
        detection_agreement=k / n if n else float("nan"),
        iaa_marked=iaa_marked,
        marked=[ids[i] for i in keep],
    )


def detection_agreement(
    masks: Any,
    raters: Mapping[str, str] | Sequence[str] | None = None,
    same_rater_pairs: bool = True,
) -> DetectionAgreement:
    """How many annotators marked the case, and how well those who did agree.

    Parameters
    ----------
    masks : mapping, sequence, stacked array or Case-like
        2D or 3D masks, foreground = nonzero.
    raters : mapping or sequence, optional
        Annotator of each mask (a ``Case``'s own are used when not given).
    same_rater_pairs : bool
        Whether pairs drawn by the same annotator count in ``iaa_marked``.

    Examples
    --------
    >>> a = np.zeros((4, 4), bool); a[1:3, 1:3] = True
    >>> d = detection_agreement({"r0": a, "r1": a, "r2": np.zeros_like(a)})
    >>> d.n_marked, round(d.detection_agreement, 3), d.iaa_marked
    (2, 0.667, 1.0)
    """
    if raters is None and hasattr(masks, "raters") and isinstance(masks.raters, Mapping):
        raters = masks.raters
    ids, arrays = as_mask_list(masks)
    if not arrays:
        return DetectionAgreement(0, 0, float("nan"), float("nan"), [])
    counts, inter = pairwise_counts(arrays)
    return detection_from_counts(ids, counts, inter, rater_list(ids, raters), same_rater_pairs)
