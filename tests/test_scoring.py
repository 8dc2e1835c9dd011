"""Per-case scoring (``napari_iaa.scoring``): the table ``napari-iaa score`` writes.

The two baseline tables were written by ``napari-iaa score`` on the bundled sample data
before the scoring moved out of the CLI; the shared scorer must reproduce them byte for
byte (serially and in worker processes).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from napari_iaa.data import Case, open_dataset
from napari_iaa.errors import ConfigError
from napari_iaa.scoring import (
    SCORE_COLUMNS,
    CaseScore,
    ScoreResult,
    load_masks,
    score_case,
    score_dataset,
    score_id,
)

ROOT = Path(__file__).resolve().parents[1]
BASELINE = Path(__file__).resolve().parent / "scoring_baseline"
SAMPLES = {"synthetic": ROOT / "sample_data" / "synthetic", "lidc": ROOT / "sample_data" / "lidc"}


@pytest.fixture(scope="module", params=sorted(SAMPLES))
def sample(request):
    return request.param, open_dataset(SAMPLES[request.param])


def test_score_dataset_reproduces_the_cli_baseline(sample):
    name, ds = sample
    result = score_dataset(ds)
    assert isinstance(result, ScoreResult) and not result.stopped
    assert result.n_cases == len(ds) == len(result.rows)
    assert result.problems == [] and result.warnings == []
    assert result.to_csv() == (BASELINE / f"{name}.csv").read_text(encoding="utf-8")


@pytest.mark.slow
def test_score_dataset_in_worker_processes_gives_the_same_table(sample):
    name, ds = sample
    result = score_dataset(ds, workers=2)
    assert result.to_csv() == (BASELINE / f"{name}.csv").read_text(encoding="utf-8")


def test_score_id_matches_score_case_of_the_loaded_case(sample):
    _name, ds = sample
    cid = ds.ids[0]
    got = score_id(ds, cid)
    assert isinstance(got, CaseScore) and got.error is None and got.case_id == cid
    assert got.row == score_case(ds.load(cid))
    assert list(got.row)[: len(SCORE_COLUMNS)] == SCORE_COLUMNS
    assert set(load_masks(ds, cid).masks) == set(ds.entry(cid).mask_paths)


def _case(masks: dict[str, np.ndarray], raters: dict[str, str] | None = None, **meta) -> Case:
    shape = next(iter(masks.values())).shape
    return Case(case_id="c", image=np.zeros(shape, np.uint8), masks=masks,
                raters=raters or {m: m for m in masks}, meta=meta)


def _disc(r0: int, c0: int, size: int = 6) -> np.ndarray:
    m = np.zeros((20, 20), bool)
    m[r0 : r0 + size, c0 : c0 + size] = True
    return m


def test_score_case_definitions():
    a, b, c = _disc(2, 2), _disc(3, 3), _disc(10, 10)
    row = score_case(_case({"A": a, "B": b, "C": c}, diagnosis="x", tags=["p", "q"], case_id="m"))
    dice_ab = 2 * 25 / 72
    assert row["n_pairs"] == 3 and row["n_masks"] == 3 and row["n_annotators"] == 3
    assert row["iaa"] == pytest.approx(dice_ab / 3)
    assert row["iaa_std"] == pytest.approx(np.std([dice_ab, 0.0, 0.0], ddof=1))  # IMA++: ddof=1
    assert row["min_pair_dice"] == 0.0 and row["min_pair"] == "A;C"
    assert row["annotators"] == "A;B;C" and row["group"] == ""
    assert row["diagnosis"] == "x" and row["tags"] == "p;q" and row["meta_case_id"] == "m"


def test_score_case_same_rater_pairs_and_empty_rule():
    a, b = _disc(2, 2), _disc(3, 3)
    same = _case({"A": a, "A#2": b}, raters={"A": "A", "A#2": "A"})
    assert score_case(same)["n_pairs"] == 1 and score_case(same)["n_annotators"] == 1
    left_out = score_case(same, same_rater_pairs=False)
    assert left_out["n_pairs"] == 0 and math.isnan(left_out["iaa"]) and left_out["min_pair"] == ""
    empty = _case({"A": np.zeros((4, 4), bool), "B": np.zeros((4, 4), bool)})
    assert score_case(empty)["iaa"] == 0.0
    assert score_case(empty, empty="one")["iaa"] == 1.0
    assert score_case(empty, empty="ignore")["n_pairs"] == 0
    single = score_case(_case({"A": a}))
    assert single["n_pairs"] == 0 and math.isnan(single["iaa_std"])
    with pytest.raises(ConfigError):
        score_case(empty, empty="half")


def test_unreadable_case_is_an_error_naming_the_file(tmp_path):
    import shutil

    src = SAMPLES["synthetic"]
    dst = tmp_path / "syn"
    shutil.copytree(src, dst)
    ds = open_dataset(dst)
    cid = ds.ids[1]
    bad = next(iter(ds.entry(cid).mask_paths.values()))
    bad.write_bytes(b"")
    got = score_id(ds, cid)
    assert got.row is None and str(bad) in got.error
    result = score_dataset(ds)
    assert len(result.rows) == len(ds) - 1
    assert any(p.startswith(f"case {cid}: ") and str(bad) in p for p in result.problems)


def test_progress_and_stop(sample):
    _name, ds = sample
    seen = []
    result = score_dataset(ds, progress=lambda d, n: seen.append((d, n)),
                           should_stop=lambda: len(seen) >= 3)
    assert result.stopped and len(result.rows) == 3
    assert seen == [(1, len(ds)), (2, len(ds)), (3, len(ds))]
