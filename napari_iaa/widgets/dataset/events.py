"""Messages of the data-set table's scoring worker (besides :class:`~.._common.Progress`)."""

from __future__ import annotations

from dataclasses import dataclass

from napari_iaa.scoring import CaseScore

__all__ = ["ScoredBatch"]


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    """Cases scored since the last message (rows are handed to the table in batches)."""

    scores: tuple[CaseScore, ...]
