"""Typed results of the review dock's workers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ProfileResult", "ReliabilityResult"]


@dataclass(frozen=True, slots=True)
class ReliabilityResult:
    """Leave-one-out Dice, STAPLE and both consensus masks of one state of a case.

    ``gen`` and ``edits`` identify the request and the masks' state it was computed on
    (a result for an older request, or for masks edited since, is dropped). ``loo``,
    ``sens`` and ``spec`` are per mask (None when not computable); ``error`` says why
    reliability failed (the consensus then falls back to the majority vote). ``surface``
    holds the pairwise surface distances (a
    :class:`~napari_iaa.agreement.SurfaceDistances`) when they were asked for.
    """

    gen: int
    edits: int
    majority: np.ndarray
    staple: np.ndarray
    loo: np.ndarray | None = None
    sens: np.ndarray | None = None
    spec: np.ndarray | None = None
    error: str | None = None
    surface: Any = None


@dataclass(frozen=True, slots=True)
class ProfileResult:
    """Per-slice pairwise counts of some slices of a volume's masks, for the slice profile.

    ``gen`` identifies the case's opening (a result for another one is dropped);
    ``counts`` is :func:`~napari_iaa.widgets.review.slice_counts.measure_slices`' result
    ``(slice indices, (k, N) counts, (k, N, N) intersections)``.
    """

    gen: int
    counts: tuple[np.ndarray, np.ndarray, np.ndarray]
