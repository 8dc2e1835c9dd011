"""The data-set table and its scoring run leave the garbage collector little to walk.

A full (generation-2) collection walks napari's whole heap (~600,000 objects, 150-180 ms
with the GIL held: a frozen viewer). It is triggered when the objects promoted into the
oldest generation since the last one exceed a quarter of it, so objects that live across
a run (a batch waiting up to ``BATCH_SECONDS``, rows kept by the table, results kept by
their futures) are what bring the next one on. These tests count GC-tracked objects, not
time.
"""

from __future__ import annotations

import gc
import math
import types

import pandas as pd

from napari_iaa.data import open_dataset
from napari_iaa.scoring import CaseScore
from napari_iaa.widgets.dataset import jobs
from napari_iaa.widgets.dataset.events import ScoredBatch

#: objects shared by the whole process (an instance refers to its class)
_SHARED = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)


def _tracked_reachable(root) -> int:
    """How many objects the cyclic garbage collector tracks among those reachable from
    ``root`` (what a collection walks because of it), classes and modules left out."""
    gc.collect()  # tuples of untracked items are untracked at the collection they meet
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or not gc.is_tracked(obj) or isinstance(obj, _SHARED):
            continue  # an untracked container holds untracked items only
        seen.add(id(obj))
        stack.extend(gc.get_referents(obj))
    return len(seen)


def test_a_batch_holds_few_gc_tracked_objects(synthetic_root, monkeypatch):
    """A batch waits up to BATCH_SECONDS in the worker: long enough for its objects to
    reach the oldest generation, whose growth triggers a full collection of napari's whole
    heap (~170 ms). Its cases are plain columns (strings, untracked row dicts), so the GC
    walks a few objects per batch, not several per case."""
    monkeypatch.setattr(jobs, "BATCH_SECONDS", float("inf"))  # one batch: every case
    ds = open_dataset(synthetic_root)
    ids = list(ds.ids)
    batch = next(m for m in jobs.score_cases(ds, ids, "zero", True, True, processes=0)
                 if isinstance(m, ScoredBatch))
    assert _tracked_reachable(batch) <= 4  # the batch and its three columns at most
    assert list(batch.case_ids) == ids


def test_the_processes_results_are_let_go_once_handed_on(synthetic_root, monkeypatch):
    """Each chunk's scores are dropped once they are in a batch (not kept by their futures
    until the run ends: a 10,000-case run's CaseScores were all promoted)."""
    monkeypatch.setattr(jobs, "BATCH_SECONDS", 0.0)  # a batch per chunk (one case here)
    ds = open_dataset(synthetic_root)
    ids = list(ds.ids)
    handed: set[str] = set()
    kept: list[set[str]] = []
    for m in jobs.score_cases(ds, ids, "zero", True, False, processes=1):
        if isinstance(m, ScoredBatch):
            handed.update(m.case_ids)
            assert _tracked_reachable(m) <= 4  # the rows unpickled from the process too
            # type(), not isinstance(): a dead weakref.proxy left by another test raises
            # ReferenceError when isinstance() asks it for its __class__
            alive = {o.case_id for o in gc.get_objects() if type(o) is CaseScore}
            kept.append(alive & handed)
    assert handed == set(ids)
    assert kept == [set()] * len(kept)


def test_the_tables_rows_are_not_walked_by_the_collector(qapp):
    """A scored 2,000-case table holds a handful of GC-tracked objects, not one per row."""
    from napari_iaa.widgets.dataset.table_model import (
        AGREEMENT_COLUMNS,
        NUMERIC_AGREEMENT_COLUMNS,
        CaseTableModel,
    )

    n = 2000
    df = pd.DataFrame({"case_id": [f"case-{i}" for i in range(n)], "n_annotators": 4,
                       "diagnosis": ["benign", "malignant"] * (n // 2)})
    for c in AGREEMENT_COLUMNS:
        df[c] = math.nan if c in NUMERIC_AGREEMENT_COLUMNS else ""
    model = CaseTableModel()
    model.set_frame(df)
    rows = {"iaa": 0.5, "min_pair_dice": 0.25, "min_pair": "a;b", "n_marked": 3,
            "detection_agreement": 0.75, "iaa_marked": 0.6, "hd95_mean": 2.0, "assd_mean": 1.0}
    for start in range(0, n, 500):  # as batches come
        model.update_cases([(f"case-{i}", jobs.table_values(dict(rows)))
                            for i in range(start, start + 500)])
    model.sort(model.columns.index("IAA"))
    assert model.n_flagged == n  # IAA 0.5 < the default threshold: every row was updated
    assert _tracked_reachable(vars(model)) < 50
