"""Messages of the data-set table's scoring worker (besides :class:`~.._common.Progress`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ScoredBatch"]


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    """Cases scored since the last message (rows are handed to the table in batches), as
    three columns of the same length: the case ids, their score rows (``napari-iaa
    score``'s columns; None: unreadable) and the errors (None: scored).

    Plain tuples of strings and flat row dicts, not ``napari_iaa.scoring.CaseScore``
    objects: a batch waits up to ``jobs.BATCH_SECONDS`` in the worker, long enough for what
    it holds to be promoted to the garbage collector's oldest generation, and 10,000 cases
    of three tracked objects each then brought on a full collection of napari's whole heap
    (170 ms, the viewer frozen). Tuples of untracked items and dicts of numbers and strings
    are not tracked, so a batch is four objects to the collector, whatever its size.
    """

    case_ids: tuple[str, ...]
    rows: tuple[dict[str, Any] | None, ...]
    errors: tuple[str | None, ...]

    def __len__(self) -> int:
        return len(self.case_ids)
