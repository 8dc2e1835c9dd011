"""Dice, IoU, pairwise matrices and the inter-annotator agreement (IAA).

Foreground is nonzero: masks may be bool arrays or label images with values > 1. The
empty-pair rule says what a pair scores when both masks are empty (IMA++ and medpy score
it 0, the default here); a pair with one empty and one non-empty mask always scores 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from napari_iaa.agreement._counts import pairwise_counts
from napari_iaa.errors import ConfigError, ShapeMismatchError

EmptyRule = Literal["one", "zero", "ignore"]
EMPTY_RULES: tuple[str, ...] = ("one", "zero", "ignore")

__all__ = [
    "EMPTY_RULES",
    "EmptyRule",
    "as_mask_list",
    "dice",
    "dice_from_counts",
    "iaa",
    "iaa_from_matrix",
    "iou",
    "iou_from_counts",
    "pairwise_dice",
    "pairwise_iou",
    "rater_list",
]


def _check_empty(empty: str) -> None:
    if empty not in EMPTY_RULES:
        raise ConfigError(f"empty-pair rule must be one of {EMPTY_RULES}, got {empty!r}")


def _empty_value(empty: str) -> float:
    return {"one": 1.0, "zero": 0.0, "ignore": np.nan}[empty]


def as_mask_list(masks: Any) -> tuple[list[str], list[np.ndarray]]:
    """Normalise masks to ``(mask_ids, arrays)`` without copying.

    Parameters
    ----------
    masks : mapping, sequence, stacked array or Case-like
        ``{mask_id: array}``, a sequence of arrays (ids ``"0"``, ``"1"``, ...), an
        ``(N, ...)`` array, or an object with a ``.masks`` mapping (a ``Case``).

    Returns
    -------
    ids, arrays : list of str, list of ndarray
        All arrays have the same shape.

    Raises
    ------
    ShapeMismatchError
        If the masks do not all have the same shape.
    """
    if hasattr(masks, "masks") and isinstance(masks.masks, Mapping):
        masks = masks.masks
    if isinstance(masks, Mapping):
        ids = [str(k) for k in masks]
        arrays = [np.asarray(v) for v in masks.values()]
    elif isinstance(masks, np.ndarray):
        if masks.ndim < 1:
            raise ShapeMismatchError("masks: expected a stack of masks, got a scalar")
        ids = [str(i) for i in range(masks.shape[0])]
        arrays = list(masks)
    else:
        arrays = [np.asarray(v) for v in masks]
        ids = [str(i) for i in range(len(arrays))]
    if arrays:
        shape = arrays[0].shape
        for mid, a in zip(ids, arrays, strict=True):
            if a.shape != shape:
                raise ShapeMismatchError(
                    f"mask {mid!r} has shape {a.shape}, but mask {ids[0]!r} has {shape}"
                )
    return ids, arrays


def rater_list(ids: Sequence[str], raters: Any) -> list[str] | None:
    """Annotator of each mask, aligned with ``ids`` (``None`` if not given).

    ``raters`` may be a mapping mask id -> annotator (missing ids are their own
    annotator) or a sequence aligned with the masks.
    """
    if raters is None:
        return None
    if isinstance(raters, Mapping):
        return [str(raters.get(i, i)) for i in ids]
    out = [str(r) for r in raters]
    if len(out) != len(ids):
        raise ConfigError(f"raters has {len(out)} entries but there are {len(ids)} masks")
    return out


def _fg_count(a: np.ndarray) -> int:
    return int(np.count_nonzero(a))


def _pair_counts(a: Any, b: Any) -> tuple[int, int, int]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ShapeMismatchError(f"masks have different shapes: {a.shape} and {b.shape}")
    inter = int(np.count_nonzero(np.logical_and(a, b)))
    return _fg_count(a), _fg_count(b), inter


def dice(a: Any, b: Any, empty: EmptyRule = "zero") -> float:
    """Dice coefficient ``2|A & B| / (|A| + |B|)`` of two masks (foreground = nonzero).

    Parameters
    ----------
    a, b : array_like
        Masks of the same shape.
    empty : {"zero", "one", "ignore"}
        Score of a pair of two empty masks: 0 (IMA++, medpy), 1, or NaN.

    Examples
    --------
    >>> dice([1, 1, 0], [1, 0, 0])
    0.6666666666666666
    """
    _check_empty(empty)
    ca, cb, inter = _pair_counts(a, b)
    if ca + cb == 0:
        return _empty_value(empty)
    return 2.0 * inter / (ca + cb)


def iou(a: Any, b: Any, empty: EmptyRule = "zero") -> float:
    """Intersection over union (Jaccard) ``|A & B| / |A | B|`` of two masks.

    Parameters
    ----------
    a, b : array_like
        Masks of the same shape.
    empty : {"zero", "one", "ignore"}
        Score of a pair of two empty masks.
    """
    _check_empty(empty)
    ca, cb, inter = _pair_counts(a, b)
    union = ca + cb - inter
    if union == 0:
        return _empty_value(empty)
    return inter / union


def dice_from_counts(
    counts: np.ndarray, inter: np.ndarray, empty: EmptyRule = "zero"
) -> np.ndarray:
    """N x N Dice matrix from foreground counts and intersection counts."""
    _check_empty(empty)
    counts = np.asarray(counts, np.float64)
    denom = counts[:, None] + counts[None, :]
    # divide only where defined (no np.errstate: it costs more than the division at N = 15,
    # and the matrix is read after every brush stroke)
    d = np.full(denom.shape, _empty_value(empty))
    np.divide(2.0 * np.asarray(inter, np.float64), denom, out=d, where=denom != 0)
    return d


def iou_from_counts(counts: np.ndarray, inter: np.ndarray, empty: EmptyRule = "zero") -> np.ndarray:
    """N x N IoU matrix from foreground counts and intersection counts."""
    _check_empty(empty)
    counts = np.asarray(counts, np.float64)
    inter = np.asarray(inter, np.float64)
    union = counts[:, None] + counts[None, :] - inter
    j = np.full(union.shape, _empty_value(empty))
    np.divide(inter, union, out=j, where=union != 0)
    return j


def pairwise_dice(masks: Any, empty: EmptyRule = "zero") -> np.ndarray:
    """N x N pairwise Dice matrix (float64) of N masks.

    Parameters
    ----------
    masks : mapping, sequence, stacked array or Case-like
        See :func:`as_mask_list`.
    empty : {"zero", "one", "ignore"}
        Score of a pair of two empty masks (also the diagonal of an empty mask).
    """
    _check_empty(empty)
    _, arrays = as_mask_list(masks)
    counts, inter = pairwise_counts(arrays)
    return dice_from_counts(counts, inter, empty)


def pairwise_iou(masks: Any, empty: EmptyRule = "zero") -> np.ndarray:
    """N x N pairwise IoU matrix (float64) of N masks. See :func:`pairwise_dice`."""
    _check_empty(empty)
    _, arrays = as_mask_list(masks)
    counts, inter = pairwise_counts(arrays)
    return iou_from_counts(counts, inter, empty)


def _pair_values(
    matrix: np.ndarray, raters: Sequence[str] | None, same_rater_pairs: bool
) -> np.ndarray:
    m = np.asarray(matrix, np.float64)
    n = m.shape[0]
    iu, ju = np.triu_indices(n, k=1)
    if raters is not None and not same_rater_pairs:
        r = np.asarray(list(raters), dtype=object)
        keep = r[iu] != r[ju]
        iu, ju = iu[keep], ju[keep]
    return m[iu, ju]


def iaa_from_matrix(
    matrix: np.ndarray,
    raters: Sequence[str] | None = None,
    same_rater_pairs: bool = True,
) -> float:
    """IAA (mean over unordered pairs) of a pairwise Dice matrix.

    NaN entries (pairs dropped by the ``ignore`` rule) are left out; NaN if no pair is
    left. With ``raters`` and ``same_rater_pairs=False``, pairs of masks drawn by the
    same annotator are left out.
    """
    v = _pair_values(matrix, raters, same_rater_pairs)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")


def iaa(
    masks: Any,
    empty: EmptyRule = "zero",
    raters: Mapping[str, str] | Sequence[str] | None = None,
    same_rater_pairs: bool = True,
) -> float:
    """Inter-annotator agreement: mean pairwise Dice over unordered pairs of masks.

    Parameters
    ----------
    masks : mapping, sequence, stacked array or Case-like
        A ``Case`` (its ``raters`` are used when ``raters`` is not given).
    empty : {"zero", "one", "ignore"}
        Score of a pair of two empty masks; ``ignore`` leaves such pairs out.
    raters : mapping or sequence, optional
        Annotator of each mask (mask id -> annotator, or aligned with the masks).
    same_rater_pairs : bool
        Whether pairs drawn by the same annotator count (IMA++ counts them).

    Returns
    -------
    float
        NaN with fewer than two masks or when no pair is left.
    """
    if raters is None and hasattr(masks, "raters") and isinstance(masks.raters, Mapping):
        raters = masks.raters
    ids, arrays = as_mask_list(masks)
    if len(arrays) < 2:
        _check_empty(empty)
        return float("nan")
    d = pairwise_dice(arrays, empty)
    return iaa_from_matrix(d, rater_list(ids, raters), same_rater_pairs)
