"""The data-set table's background job: score cases with :mod:`napari_iaa.scoring`.

No Qt here; :func:`score_cases` is a generator for
:func:`~napari_iaa.widgets._common.start_worker`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

from napari_iaa.data import Dataset
from napari_iaa.scoring import CaseScore, score_id
from napari_iaa.widgets._common.events import Progress
from napari_iaa.widgets.dataset.events import ScoredBatch

__all__ = ["BATCH_SECONDS", "TABLE_TO_SCORE", "UNREADABLE", "score_cases", "table_values"]

#: rows reach the table at most this often (one queued signal and one table update per
#: case cost more than scoring a small case)
BATCH_SECONDS = 0.1
#: what the "lowest pair" cell of a case that cannot be read shows
UNREADABLE = "unreadable"


def score_cases(
    ds: Dataset, ids: Sequence[str], empty: str, same_rater_pairs: bool, surface: bool = True
) -> Iterator[ScoredBatch | Progress]:
    """Score ``ids`` one by one, yielding a :class:`ScoredBatch` and a :class:`Progress`
    about every :data:`BATCH_SECONDS` and after the last case.

    Parameters
    ----------
    ds : napari_iaa.data.Dataset
        The data set.
    ids : sequence of str
        The cases, in table order.
    empty, same_rater_pairs, surface
        As in :func:`napari_iaa.scoring.score_case`.
    """
    total = len(ids)
    batch: list[CaseScore] = []
    last = time.monotonic()
    for done, cid in enumerate(ids, start=1):
        batch.append(score_id(ds, cid, empty, same_rater_pairs, surface))
        if done == total or time.monotonic() - last >= BATCH_SECONDS:
            yield ScoredBatch(tuple(batch))
            yield Progress(done, total)
            batch, last = [], time.monotonic()


#: table column -> the CLI's column (``napari-iaa score``)
TABLE_TO_SCORE = {
    "IAA": "iaa",
    "min pair": "min_pair_dice",
    "lowest pair": "min_pair",
    "n marked": "n_marked",
    "detection": "detection_agreement",
    "IAA (marked)": "iaa_marked",
    "HD95": "hd95_mean",
    "ASSD": "assd_mean",
}


def table_values(score: CaseScore) -> dict[str, Any]:
    """The agreement cells of a scored case (the keys of :data:`TABLE_TO_SCORE`).

    The values are the CLI's (``iaa``, ``min_pair_dice``, ``min_pair`` as ``"a;b"``,
    ``n_marked``, ``detection_agreement``, ``iaa_marked``, ``hd95_mean``, ``assd_mean``;
    the last two NaN when not computed); a case that cannot be read shows
    :data:`UNREADABLE` as its lowest pair.
    """
    if score.row is None:
        return {"lowest pair": UNREADABLE}
    row = score.row
    return {col: row.get(key, math.nan) for col, key in TABLE_TO_SCORE.items()}
