"""Per-case scoring (``napari_iaa.scoring``): the table ``napari-iaa score`` writes.

The two baseline tables were written by ``napari-iaa score`` on the bundled sample data
before the scoring moved out of the CLI; the shared scorer must reproduce their columns
byte for byte (serially and in worker processes). Issue 12 added the detection and
surface columns after the old agreement columns; every old column keeps its name, values
and order.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_iaa.data import Case, open_dataset
from napari_iaa.errors import ConfigError
from napari_iaa.scoring import (
    DETECTION_COLUMNS,
    SCORE_COLUMNS,
    SURFACE_COLUMNS,
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


NEW_COLUMNS = DETECTION_COLUMNS + SURFACE_COLUMNS


@pytest.fixture(scope="module", params=sorted(SAMPLES))
def sample(request):
    return request.param, open_dataset(SAMPLES[request.param])


def old_columns_csv(result: ScoreResult) -> str:
    """The table without the columns issue 12 added: what ``napari-iaa score`` wrote before."""
    return result.to_frame().drop(columns=NEW_COLUMNS, errors="ignore").to_csv(index=False)


def test_score_dataset_reproduces_the_cli_baseline(sample):
    name, ds = sample
    result = score_dataset(ds)
    assert isinstance(result, ScoreResult) and not result.stopped
    assert result.n_cases == len(ds) == len(result.rows)
    assert result.problems == [] and result.warnings == []
    assert old_columns_csv(result) == (BASELINE / f"{name}.csv").read_text(encoding="utf-8")
    cols = list(result.to_frame().columns)
    # the old agreement columns first, then the new ones, then the metadata
    assert cols[: len(SCORE_COLUMNS) + len(NEW_COLUMNS)] == SCORE_COLUMNS + NEW_COLUMNS
    assert not result.to_frame()["n_marked"].isna().any()


def test_no_surface_leaves_the_surface_columns_out(sample):
    name, ds = sample
    result = score_dataset(ds, surface=False)
    cols = list(result.to_frame().columns)
    assert not set(SURFACE_COLUMNS) & set(cols) and set(DETECTION_COLUMNS) <= set(cols)
    assert old_columns_csv(result) == (BASELINE / f"{name}.csv").read_text(encoding="utf-8")


@pytest.mark.slow
def test_score_dataset_in_worker_processes_gives_the_same_table(sample):
    name, ds = sample
    result = score_dataset(ds, workers=2)
    assert old_columns_csv(result) == (BASELINE / f"{name}.csv").read_text(encoding="utf-8")
    assert result.to_csv() == score_dataset(ds).to_csv()


def test_score_id_matches_score_case_of_the_loaded_case(sample):
    _name, ds = sample
    cid = ds.ids[0]
    got = score_id(ds, cid)
    assert isinstance(got, CaseScore) and got.error is None and got.case_id == cid
    assert _same_row(got.row, score_case(ds.load(cid)))
    assert list(got.row)[: len(SCORE_COLUMNS)] == SCORE_COLUMNS
    assert set(load_masks(ds, cid).masks) == set(ds.entry(cid).mask_paths)


def _same_row(a: dict, b: dict) -> bool:
    """Rows equal, NaN equal to NaN."""
    def same(x, y):
        return (isinstance(x, float) and isinstance(y, float) and math.isnan(x)
                and math.isnan(y)) or x == y

    return list(a) == list(b) and all(same(a[k], b[k]) for k in a)


def _case(masks: dict[str, np.ndarray], raters: dict[str, str] | None = None,
          spacing=None, **meta) -> Case:
    shape = next(iter(masks.values())).shape
    return Case(case_id="c", image=np.zeros(shape, np.uint8), masks=masks,
                raters=raters or {m: m for m in masks}, meta=meta, spacing=spacing)


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


# ----------------------------------------------------------------------------- issue 12


def _pair_dice(a: np.ndarray, b: np.ndarray) -> float:
    tot = int(a.sum()) + int(b.sum())
    return 2 * int((a & b).sum()) / tot if tot else 0.0


def test_detection_columns_split_the_empty_masks_off():
    a, b, c = _disc(2, 2), _disc(3, 3), _disc(10, 10)
    empty = np.zeros_like(a)
    row = score_case(_case({"A": a, "B": b, "C": c, "D": empty}))
    assert row["n_marked"] == 3 and row["detection_agreement"] == 0.75
    assert row["iaa_marked"] == pytest.approx(
        np.mean([_pair_dice(a, b), _pair_dice(a, c), _pair_dice(b, c)]))
    # the old IAA counts the empty mask's three pairs as 0
    assert row["iaa"] == pytest.approx(row["iaa_marked"] * 3 / 6)
    one = score_case(_case({"A": a, "B": empty}))
    assert one["n_marked"] == 1 and one["detection_agreement"] == 0.5
    assert math.isnan(one["iaa_marked"]) and math.isnan(one["hd95_mean"])
    none = score_case(_case({"A": empty, "B": empty}))
    assert none["n_marked"] == 0 and none["detection_agreement"] == 0.0
    assert math.isnan(none["iaa_marked"]) and math.isnan(none["assd_mean"])


def test_surface_columns_are_the_agreement_rooms_means_with_the_cases_spacing():
    from napari_iaa.agreement import pairwise_surface_distances

    rng = np.random.default_rng(3)
    vols = {}
    for k, name in enumerate(["r0", "r1", "r2"]):
        v = np.zeros((6, 24, 24), bool)
        v[1 + k % 2 : 5, 4 + k : 16 + k, 5 : 17 + rng.integers(0, 3)] = True
        vols[name] = v
    vols["r3"] = np.zeros((6, 24, 24), bool)
    spacing = (2.5, 0.7, 0.7)
    row = score_case(_case(vols, spacing=spacing))
    ref = pairwise_surface_distances(vols, spacing)
    assert row["hd95_mean"] == pytest.approx(ref.mean("hd"))
    assert row["assd_mean"] == pytest.approx(ref.mean("assd"))
    unit = score_case(_case(vols))  # no spacing: unit voxels
    assert unit["hd95_mean"] == pytest.approx(pairwise_surface_distances(vols).mean("hd"))
    assert unit["hd95_mean"] != pytest.approx(row["hd95_mean"])
    assert list(score_case(_case(vols), surface=False)).count("hd95_mean") == 0


def test_same_rater_pairs_apply_to_the_new_columns():
    a, b, c = _disc(2, 2), _disc(3, 3), _disc(8, 8)
    case = _case({"A": a, "A#2": b, "B": c}, raters={"A": "A", "A#2": "A", "B": "B"})
    kept = score_case(case)
    left = score_case(case, same_rater_pairs=False)
    assert kept["iaa_marked"] == pytest.approx(
        np.mean([_pair_dice(a, b), _pair_dice(a, c), _pair_dice(b, c)]))
    assert left["iaa_marked"] == pytest.approx(np.mean([_pair_dice(a, c), _pair_dice(b, c)]))
    from napari_iaa.agreement import hausdorff_distance

    assert left["hd95_mean"] == pytest.approx(
        np.mean([hausdorff_distance(a, c), hausdorff_distance(b, c)]))


def test_spacing_comes_from_the_image_header(tmp_path):
    """The score path reads no image pixels: the spacing comes from the volume's header, and
    a NIfTI folder case scores as the same masks given with that spacing."""
    from napari_iaa.agreement import pairwise_surface_distances
    from napari_iaa.data import write_volume

    ds = open_dataset(SAMPLES["lidc"])
    assert load_masks(ds, ds.ids[0]).spacing is None  # PNG: unit voxels
    spacing = (2.5, 0.7, 0.7)
    case = tmp_path / "vols" / "nodule-1"
    case.mkdir(parents=True)
    vols = {}
    for k in range(3):
        v = np.zeros((6, 20, 20), bool)
        v[1 : 4 + k % 2, 3 + k : 12 + k, 4 : 13 + k] = True
        vols[f"r{k}"] = v
        write_volume(case / f"r{k}.nii.gz", v, spacing=spacing)
    write_volume(case / "image.nii.gz", np.zeros((6, 20, 20), np.int16), spacing=spacing)
    vds = open_dataset(tmp_path / "vols", layout="folders")
    got = load_masks(vds, "nodule-1")
    assert got.spacing == pytest.approx(spacing)
    row = score_id(vds, "nodule-1").row
    ref = pairwise_surface_distances(vols, spacing)
    assert row["hd95_mean"] == pytest.approx(ref.mean("hd"))
    assert row["assd_mean"] == pytest.approx(ref.mean("assd"))
    assert row["n_marked"] == 3 and row["iaa"] == pytest.approx(score_case(_case(vols))["iaa"])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.none(), st.tuples(st.integers(0, 9), st.integers(0, 9),
                                               st.integers(1, 6), st.integers(1, 6))),
                min_size=2, max_size=6),
       st.booleans())
def test_new_columns_equal_a_plain_loop_over_the_marked_masks(boxes, same_rater_pairs):
    masks, raters = {}, {}
    for k, box in enumerate(boxes):
        m = np.zeros((16, 16), bool)
        if box is not None:
            r, c, h, w = box
            m[r : r + h, c : c + w] = True
        masks[f"m{k}"] = m
        raters[f"m{k}"] = f"a{k // 2}"  # pairs of masks share an annotator
    row = score_case(_case(masks, raters=raters), same_rater_pairs=same_rater_pairs)
    ids = [k for k, m in masks.items() if m.any()]
    pairs = [(i, j) for x, i in enumerate(ids) for j in ids[x + 1:]
             if same_rater_pairs or raters[i] != raters[j]]
    assert row["n_marked"] == len(ids)
    assert row["detection_agreement"] == pytest.approx(len(ids) / len(masks))
    dices = [_pair_dice(masks[i], masks[j]) for i, j in pairs]
    hds = [_brute_hd95(masks[i], masks[j]) for i, j in pairs]
    if pairs:
        assert row["iaa_marked"] == pytest.approx(np.mean(dices))
        assert row["hd95_mean"] == pytest.approx(np.mean(hds))
    else:
        assert math.isnan(row["iaa_marked"]) and math.isnan(row["hd95_mean"])


def _brute_hd95(a: np.ndarray, b: np.ndarray) -> float:
    """HD95 as MONAI defines it, by brute force over the surface voxels."""
    from scipy import ndimage

    def surface(m):
        return np.argwhere(m & ~ndimage.binary_erosion(m, ndimage.generate_binary_structure(2, 1)))

    sa, sb = surface(a).astype(float), surface(b).astype(float)
    d = np.sqrt(((sa[:, None, :] - sb[None, :, :]) ** 2).sum(-1))
    return max(np.percentile(d.min(1), 95), np.percentile(d.min(0), 95))


def test_lidc_nodules_score_as_a_plain_numpy_stack(lidc_root):
    """Per nodule (issue 12): volumetric IAA, n_marked and iaa_marked of real LIDC nodules
    equal a plain loop over the slice PNGs stacked by hand."""
    import inspect
    import re

    from PIL import Image

    if "unit" not in inspect.signature(open_dataset).parameters:
        pytest.skip("open_dataset has no unit option yet")
    ds = open_dataset(lidc_root, unit="nodule")
    assert len(ds) > 3
    for cid in ds.ids:
        folder = Path(ds.root) / cid
        number = lambda p: int(re.search(r"(\d+)", p.stem).group(1))  # noqa: E731
        readers = sorted(folder.glob("mask-*"), key=number)
        names = sorted({p.name for r in readers for p in r.glob("*.png")},
                       key=lambda n: number(Path(n)))
        stacks = [np.stack([np.asarray(Image.open(r / n)) != 0 for n in names]) for r in readers]
        row = score_id(ds, cid).row
        marked = [s for s in stacks if s.any()]
        pairs = [_pair_dice(stacks[i], stacks[j])
                 for i in range(len(stacks)) for j in range(i + 1, len(stacks))]
        mpairs = [_pair_dice(marked[i], marked[j])
                  for i in range(len(marked)) for j in range(i + 1, len(marked))]
        assert row["iaa"] == pytest.approx(np.mean(pairs)), cid
        assert row["n_marked"] == len(marked) and row["n_masks"] == len(stacks)
        if mpairs:
            assert row["iaa_marked"] == pytest.approx(np.mean(mpairs)), cid
        else:
            assert math.isnan(row["iaa_marked"])
