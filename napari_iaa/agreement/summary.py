"""One call that gives everything the review dock and the CLI show for a case."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from napari_iaa.agreement._counts import pairwise_counts
from napari_iaa.agreement.consensus import leave_one_out_dice, staple
from napari_iaa.agreement.metrics import (
    EmptyRule,
    _check_empty,
    _pair_values,
    as_mask_list,
    dice_from_counts,
    iaa_from_matrix,
    iou_from_counts,
    rater_list,
)
from napari_iaa.data import json_safe

__all__ = ["AgreementStats", "summarize"]


def _float_array(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.asarray(a, dtype=float)


@dataclass
class AgreementStats:
    """Agreement summary of one case.

    Attributes
    ----------
    mask_ids : list of str
    dice, iou : ndarray (N, N)
        Pairwise matrices.
    iaa : float
        Mean pairwise Dice over the counted unordered pairs (NaN if none).
    iaa_std : float
        Sample standard deviation (ddof=1, as IMA++) of the counted pairwise Dice
        values; NaN with fewer than two pairs.
    min_pair : tuple (id_a, id_b, dice) or None
        The least agreeing counted pair.
    mean_dice : ndarray (N,)
        Each mask's mean Dice to the other masks.
    loo_dice : ndarray (N,)
        Dice of each mask against the consensus of the others.
    staple_sensitivity, staple_specificity : ndarray (N,) or None
        Only when ``summarize(..., with_staple=True)``.
    raters : list of str or None
    empty : str
        The empty-pair rule used.
    n_pairs : int
        Number of pairs counted in ``iaa``.
    """

    mask_ids: list[str]
    dice: np.ndarray
    iou: np.ndarray
    iaa: float
    iaa_std: float
    min_pair: tuple[str, str, float] | None
    mean_dice: np.ndarray
    loo_dice: np.ndarray
    staple_sensitivity: np.ndarray | None = None
    staple_specificity: np.ndarray | None = None
    raters: list[str] | None = None
    empty: str = "zero"
    n_pairs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_masks(self) -> int:
        """Number of masks."""
        return len(self.mask_ids)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (NaN becomes ``None``, by :func:`napari_iaa.data.json_safe`)."""
        return json_safe({
            "mask_ids": list(self.mask_ids),
            "raters": None if self.raters is None else list(self.raters),
            "empty": self.empty,
            "n_pairs": int(self.n_pairs),
            "iaa": float(self.iaa),
            "iaa_std": float(self.iaa_std),
            "min_pair": None
            if self.min_pair is None
            else [self.min_pair[0], self.min_pair[1], float(self.min_pair[2])],
            "dice": _float_array(self.dice),
            "iou": _float_array(self.iou),
            "mean_dice": _float_array(self.mean_dice),
            "loo_dice": _float_array(self.loo_dice),
            "staple_sensitivity": _float_array(self.staple_sensitivity),
            "staple_specificity": _float_array(self.staple_specificity),
        })


def summarize(
    case_or_masks: Any,
    empty: EmptyRule = "zero",
    raters: Mapping[str, str] | Sequence[str] | None = None,
    same_rater_pairs: bool = True,
    loo_consensus: Literal["majority", "staple"] | None = "majority",
    with_staple: bool = False,
) -> AgreementStats:
    """Pairwise matrices, IAA and per-mask reliability of one case.

    Parameters
    ----------
    case_or_masks : Case-like, mapping, sequence or stacked array
        A ``Case`` (its ``raters`` are used unless ``raters`` is given) or masks.
    empty : {"zero", "one", "ignore"}
        Score of a pair of two empty masks.
    raters : mapping or sequence, optional
        Annotator of each mask.
    same_rater_pairs : bool
        Whether pairs by the same annotator count in ``iaa``, ``iaa_std`` and
        ``min_pair``.
    loo_consensus : {"majority", "staple"} or None
        Consensus of the others for the leave-one-out Dice; None skips it (NaN).
    with_staple : bool
        Also run STAPLE on all masks for per-mask sensitivity and specificity (slow on
        large images).
    """
    _check_empty(empty)
    if (
        raters is None
        and hasattr(case_or_masks, "raters")
        and isinstance(case_or_masks.raters, Mapping)
    ):
        raters = case_or_masks.raters
    ids, arrays = as_mask_list(case_or_masks)
    rl = rater_list(ids, raters)
    n = len(arrays)
    counts, inter = pairwise_counts(arrays)
    d = dice_from_counts(counts, inter, empty)
    j = iou_from_counts(counts, inter, empty)
    value = iaa_from_matrix(d, rl, same_rater_pairs) if n >= 2 else float("nan")
    pair_vals = _counted_pairs(d, rl, same_rater_pairs)
    std = float(np.std(pair_vals, ddof=1)) if pair_vals.size >= 2 else float("nan")
    min_pair = _lowest_pair(d, ids, rl, same_rater_pairs)
    mean_d = _mean_dice_to_others(d)
    if loo_consensus is None:
        loo = np.full(n, np.nan)
    else:
        loo = leave_one_out_dice(arrays, consensus=loo_consensus, empty=empty)
    sens = spec = None
    if with_staple and n >= 1:
        st = staple(arrays)
        sens, spec = st.sensitivity, st.specificity
    return AgreementStats(
        mask_ids=ids,
        dice=d,
        iou=j,
        iaa=value,
        iaa_std=std,
        min_pair=min_pair,
        mean_dice=mean_d,
        loo_dice=loo,
        staple_sensitivity=sens,
        staple_specificity=spec,
        raters=rl,
        empty=empty,
        n_pairs=int(pair_vals.size),
    )


def _counted_pairs(
    d: np.ndarray, rl: Sequence[str] | None, same_rater_pairs: bool
) -> np.ndarray:
    """Dice of the unordered pairs that count (NaN pairs of the ``ignore`` rule dropped)."""
    if d.shape[0] < 2:
        return np.zeros(0)
    vals = _pair_values(d, rl, same_rater_pairs)
    return vals[~np.isnan(vals)]


def _lowest_pair(
    d: np.ndarray, ids: Sequence[str], rl: Sequence[str] | None, same_rater_pairs: bool
) -> tuple[str, str, float] | None:
    """``(id_a, id_b, dice)`` of the least-agreeing counted pair (None if none counts)."""
    n = d.shape[0]
    if n < 2:
        return None
    iu, ju = np.triu_indices(n, k=1)
    keep = np.ones(iu.size, bool)
    if rl is not None and not same_rater_pairs:
        r = np.asarray(rl, dtype=object)
        keep = r[iu] != r[ju]
    vals = d[iu, ju]
    keep &= ~np.isnan(vals)
    if not keep.any():
        return None
    k = int(np.flatnonzero(keep)[np.argmin(vals[keep])])
    return ids[iu[k]], ids[ju[k]], float(vals[k])


def _mean_dice_to_others(d: np.ndarray) -> np.ndarray:
    """Per mask, the mean Dice to every other mask (NaN entries skipped)."""
    n = d.shape[0]
    mean_d = np.full(n, np.nan)
    if n < 2:
        return mean_d
    off = d.copy()
    np.fill_diagonal(off, np.nan)
    for i in range(n):
        row = off[i][~np.isnan(off[i])]
        mean_d[i] = row.mean() if row.size else np.nan
    return mean_d
