"""Scoring in a kept pool of spawned processes, for the data-set table.

A worker *thread* of the GUI process shares its GIL with napari's repaints (PyQt holds
it while the window paints), which made the table 2-3x slower than ``napari-iaa score``;
processes are spawned, not forked (forking a process that runs Qt threads is unsafe).
They run at a lower OS priority than napari (:mod:`napari_iaa._priority`): when the GUI
repaints, its thread and the software renderer's threads get the cores first.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from napari_iaa._priority import lower_thread_priority
from napari_iaa.data import Dataset, open_dataset
from napari_iaa.scoring import CaseScore, _chunks, _open_kwargs, _Options, _score_ids

__all__ = ["iter_scores_in_processes"]

#: chunks queued per process at a time: the processes never wait for the next one, and a
#: run abandoned at a yield without being closed (superqt never closes the generator of a
#: worker told to quit) leaves the pool no more than these to score
IN_FLIGHT_PER_PROCESS = 2

_SPAWNED: dict[int, ProcessPoolExecutor] = {}
_REOPENED: dict[tuple[Any, ...], Dataset] = {}


def _spawned_pool(processes: int) -> ProcessPoolExecutor:
    """A pool of spawned processes kept for the next run (no 2-4 s start per run), each
    process lowered by its initializer to nice +10 below the priority it started with."""
    pool = _SPAWNED.get(processes)
    if pool is None:
        pool = ProcessPoolExecutor(max_workers=processes, mp_context=mp.get_context("spawn"),
                                   initializer=lower_thread_priority)
        _SPAWNED[processes] = pool
    return pool


def _score_reopened(key: tuple[Any, ...], ids: list[str], opts: _Options) -> list[CaseScore]:
    """In a spawned process: score ``ids`` of the data set ``key`` names (opened once per run)."""
    ds = _REOPENED.get(key)
    if ds is None:
        _REOPENED.clear()
        root, open_kw = key[0], dict(key[1])
        ds = _REOPENED[key] = open_dataset(root, **open_kw)
    return _score_ids(ds, ids, opts)


def iter_scores_in_processes(
    ds: Dataset, ids: list[str], empty: str = "zero", same_rater_pairs: bool = True,
    surface: bool = True, processes: int = 1,
) -> Iterator[list[CaseScore]]:
    """Score ``ids`` in ``processes`` spawned processes; yield each chunk's scores in order.

    For a GUI: the work runs outside the GUI process, so neither its GIL nor its repaints
    slow it down, and the processes are *spawned* (forking a process that runs Qt threads
    is unsafe). They are kept for later runs; each run opens the data set again from
    ``ds.root`` (its layout and unit) once per process. Chunks are submitted as the run
    goes (:data:`IN_FLIGHT_PER_PROCESS` per process ahead), so a run given up at a yield
    stops there; closing the generator cancels the chunks not started. Scores are those of
    :func:`score_id` (the command line's), with each case's warnings recorded. A broken
    pool raises ``BrokenProcessPool`` (and is not reused).
    """
    processes = max(1, int(processes))
    opts: _Options = (empty, bool(same_rater_pairs), bool(surface))
    key = (str(ds.root), tuple(sorted(_open_kwargs(ds).items())), uuid.uuid4().hex)
    pool = _spawned_pool(processes)
    chunks = iter(_chunks(ids, processes))
    # each future is let go once its chunk is handed on: kept to the run's end, a
    # 10,000-case run's CaseScores all lived long enough to be promoted to the garbage
    # collector's oldest generation and brought on a full collection of the GUI's heap
    pending: deque[Future[list[CaseScore]]] = deque()

    def submit(n: int) -> None:
        for chunk in itertools.islice(chunks, n):
            pending.append(pool.submit(_score_reopened, key, chunk, opts))

    try:
        submit(IN_FLIGHT_PER_PROCESS * processes)
        while pending:
            submit(1)  # the next chunk queued before this one is waited for
            yield pending.popleft().result()
    except BrokenProcessPool:
        _SPAWNED.pop(processes, None)
        raise
    finally:
        for f in pending:
            f.cancel()
