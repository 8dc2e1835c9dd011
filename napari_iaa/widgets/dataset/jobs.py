"""The data-set table's background job: score cases with :mod:`napari_iaa.scoring`.

No Qt here; :func:`score_cases` is a generator for
:func:`~napari_iaa.widgets._common.start_worker`.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from napari_iaa.data import Dataset
from napari_iaa.errors import IAAError
from napari_iaa.scoring import CaseScore, score_id
from napari_iaa.scoring_pool import iter_scores_in_processes
from napari_iaa.widgets._common.events import Progress
from napari_iaa.widgets.dataset.events import ScoredBatch

__all__ = ["BATCH_SECONDS", "PROCESS_MIN_CASES", "TABLE_TO_SCORE", "UNREADABLE", "score_cases",
           "scoring_processes", "table_values"]

#: rows reach the table at most this often. Each batch makes napari repaint its window
#: (table rows, progress bar, activity dock), which costs 20-35 ms of the GUI thread under
#: software OpenGL; at 10 batches a second that was most of the GUI thread and, through
#: the GIL, halved the worker's speed (the table took 2-3x the command line's time)
BATCH_SECONDS = 0.5
#: what the "lowest pair" cell of a case that cannot be read shows
UNREADABLE = "unreadable"


#: from this many cases on, the table scores in a spawned process (its start, about 1-3 s,
#: is then small next to the run): a worker thread shares the GUI process's GIL with
#: napari's repaints (its activity spinner alone repaints the window ~30 times a second,
#: 20-35 ms each under software OpenGL) and ran 2-3x slower than ``napari-iaa score``
PROCESS_MIN_CASES = 300


def scoring_processes(n_cases: int) -> int:
    """How many processes score ``n_cases`` for the table (0: a thread in the GUI process).

    One process per core but one (the GUI keeps a core), at least one and at most 4, from
    :data:`PROCESS_MIN_CASES` cases on.
    """
    if n_cases < PROCESS_MIN_CASES:
        return 0
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def _in_thread(ds: Dataset, ids: Sequence[str], empty: str, same_rater_pairs: bool,
               surface: bool) -> Generator[list[CaseScore], None, None]:
    for cid in ids:
        yield [score_id(ds, cid, empty, same_rater_pairs, surface)]


def _in_processes(ds: Dataset, ids: list[str], empty: str, same_rater_pairs: bool,
                  surface: bool, processes: int) -> Generator[list[CaseScore], None, None]:
    """Chunks scored in processes; in this thread instead if the processes cannot start
    (no usable interpreter, or the data set cannot be opened again from its folder)."""
    chunks = iter_scores_in_processes(ds, ids, empty, same_rater_pairs, surface, processes)
    first: list[list[CaseScore]] = []  # popped when yielded: this frame keeps no chunk
    try:
        first.extend(itertools.islice(chunks, 1))
    except (BrokenProcessPool, OSError, IAAError):
        chunks.close()
        yield from _in_thread(ds, ids, empty, same_rater_pairs, surface)
        return
    if not first:
        return
    try:
        yield first.pop()
        yield from chunks
    finally:
        chunks.close()


def score_cases(
    ds: Dataset, ids: Sequence[str], empty: str, same_rater_pairs: bool, surface: bool = True,
    processes: int | None = None,
) -> Iterator[ScoredBatch | Progress]:
    """Score ``ids``, yielding a :class:`ScoredBatch` and a :class:`Progress` about every
    :data:`BATCH_SECONDS` and after the last case.

    Parameters
    ----------
    ds : napari_iaa.data.Dataset
        The data set.
    ids : sequence of str
        The cases, in table order.
    empty, same_rater_pairs, surface
        As in :func:`napari_iaa.scoring.score_case`.
    processes : int, optional
        Score in this many spawned processes (0: in this thread); default
        :func:`scoring_processes`. The scores are the same either way (the command line's).
    """
    ids = list(ids)
    n_proc = scoring_processes(len(ids)) if processes is None else max(0, int(processes))
    chunks = (_in_processes(ds, ids, empty, same_rater_pairs, surface, n_proc) if n_proc
              else _in_thread(ds, ids, empty, same_rater_pairs, surface))
    total = len(ids)
    # the batch as columns of untracked items (see ScoredBatch): each chunk's CaseScores
    # are let go as soon as they are copied in, before a collection can promote them
    case_ids: list[str] = []
    rows: list[dict[str, Any] | None] = []
    errors: list[str | None] = []
    done = 0
    last = time.monotonic()
    try:
        for scores in chunks:
            for score in scores:
                case_ids.append(score.case_id)
                rows.append(score.row)
                errors.append(score.error)
            done += len(scores)
            scores = score = None  # nothing of the chunk stays referenced here
            if done == total or time.monotonic() - last >= BATCH_SECONDS:
                yield ScoredBatch(tuple(case_ids), tuple(rows), tuple(errors))
                yield Progress(done, total)
                case_ids, rows, errors = [], [], []
                last = time.monotonic()
    finally:  # a cancelled run (GeneratorExit at a yield) stops the processes' queue too
        chunks.close()


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


def table_values(row: dict[str, Any] | None) -> dict[str, Any]:
    """The agreement cells of a scored case's row (the keys of :data:`TABLE_TO_SCORE`).

    The values are the CLI's (``iaa``, ``min_pair_dice``, ``min_pair`` as ``"a;b"``,
    ``n_marked``, ``detection_agreement``, ``iaa_marked``, ``hd95_mean``, ``assd_mean``;
    the last two NaN when not computed); a case that cannot be read (``row`` None) shows
    :data:`UNREADABLE` as its lowest pair.
    """
    if row is None:
        return {"lowest pair": UNREADABLE}
    return {col: row.get(key, math.nan) for col, key in TABLE_TO_SCORE.items()}
