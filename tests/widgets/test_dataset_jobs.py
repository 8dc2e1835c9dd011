"""The data-set table's scoring job gives the command line's scores in a thread or in
spawned processes, in table order, and stops when the table cancels it."""

from __future__ import annotations

import os

import pytest

from napari_iaa.data import open_dataset
from napari_iaa.scoring import score_id
from napari_iaa.widgets._common.events import Progress
from napari_iaa.widgets.dataset import jobs
from napari_iaa.widgets.dataset.events import ScoredBatch


def _scores(messages):
    out = []
    for m in messages:
        if isinstance(m, ScoredBatch):
            out.extend(zip(m.case_ids, m.rows, m.errors, strict=True))
    return out


def test_processes_and_thread_give_the_command_lines_scores(synthetic_root):
    ds = open_dataset(synthetic_root)
    ids = list(ds.ids)
    want = [score_id(ds, cid, "zero", True, True) for cid in ids]
    for processes in (0, 1):
        msgs = list(jobs.score_cases(ds, ids, "zero", True, True, processes=processes))
        got = _scores(msgs)
        assert [cid for cid, _, _ in got] == ids
        assert [row for _, row, _ in got] == [s.row for s in want]
        assert [err for _, _, err in got] == [s.error for s in want]
        assert isinstance(msgs[-1], Progress) and msgs[-1].done == len(ids)


def test_closing_the_job_cancels_the_rest(synthetic_root, monkeypatch):
    monkeypatch.setattr(jobs, "BATCH_SECONDS", 0.0)
    ds = open_dataset(synthetic_root)
    ids = list(ds.ids)
    gen = jobs.score_cases(ds, ids, "zero", True, False, processes=1)
    first = next(gen)
    assert isinstance(first, ScoredBatch) and 0 < len(first) < len(ids)
    gen.close()  # what worker.quit() does at a yield


def test_small_sets_stay_in_the_thread():
    assert jobs.scoring_processes(jobs.PROCESS_MIN_CASES - 1) == 0
    assert jobs.scoring_processes(jobs.PROCESS_MIN_CASES) >= 1



def test_a_run_given_up_at_a_yield_queues_no_more(synthetic_root, monkeypatch):
    """superqt never closes the generator of a worker told to quit, so a cancelled run stays
    at its last yield: it must not have queued the rest of its chunks (the pool scored the
    whole cancelled run, behind which the next run waited, and kept its results)."""
    from napari_iaa import scoring_pool

    monkeypatch.setattr(jobs, "BATCH_SECONDS", 0.0)
    submitted: list[list[str]] = []
    real = scoring_pool._spawned_pool

    class Counting:
        def __init__(self, pool):
            self.pool = pool

        def submit(self, fn, key, chunk, opts):
            submitted.append(chunk)
            return self.pool.submit(fn, key, chunk, opts)

    monkeypatch.setattr(scoring_pool, "_spawned_pool", lambda n: Counting(real(n)))
    ds = open_dataset(synthetic_root)
    ids = list(ds.ids)
    gen = jobs.score_cases(ds, ids, "zero", True, False, processes=1)
    first = next(gen)
    assert isinstance(first, ScoredBatch)
    queued = sum(len(c) for c in submitted)
    assert queued < len(ids)
    assert queued <= len(first) + 2 * scoring_pool.IN_FLIGHT_PER_PROCESS
    gen.close()


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="OS priorities are POSIX")
def test_scoring_processes_run_below_the_gui_priority():
    # the table's scoring processes must yield the cores to napari's repaints (and to the
    # software renderer's threads): a process spawned at the GUI's own priority competed
    # with every repaint for the machine's two cores
    from napari_iaa import scoring_pool

    gui = os.getpriority(os.PRIO_PROCESS, 0)
    pool = scoring_pool._spawned_pool(1)
    child = pool.submit(os.getpriority, os.PRIO_PROCESS, 0).result(timeout=120)
    assert child >= min(19, gui + 5)
    assert os.getpriority(os.PRIO_PROCESS, 0) == gui  # the GUI process itself is untouched
