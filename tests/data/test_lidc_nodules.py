"""LIDC per nodule: each nodule's slices stacked into one volume case."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from napari_iaa.agreement import AgreementTracker, iaa
from napari_iaa.data import open_any, open_dataset
from napari_iaa.data.layouts import lidc as lidc_mod
from napari_iaa.errors import DatasetError, ShapeMismatchError


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)


def _slice_no(path: Path) -> int:
    return int(re.fullmatch(r"slice-(\d+)", path.stem).group(1))


def _numpy_iaa(masks: list[np.ndarray], both_empty: float) -> float:
    """Mean pairwise Dice over unordered pairs, written out; a both-empty pair scores
    ``both_empty`` (NaN: left out)."""
    vals = []
    for a, b in itertools.combinations(masks, 2):
        s = int(a.sum()) + int(b.sum())
        vals.append(2.0 * int(np.logical_and(a, b).sum()) / s if s else both_empty)
    vals = [v for v in vals if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _stack_by_hand(nodule: Path) -> tuple[list[int], np.ndarray, dict[str, np.ndarray]]:
    """Slice numbers, image and masks of a nodule folder, read with PIL, in slice order."""
    files = sorted((nodule / "images").glob("slice-*.png"), key=_slice_no)
    image = np.stack([np.asarray(Image.open(f)) for f in files])
    masks = {
        "r" + d.name[len("mask-"):]: np.stack([np.asarray(Image.open(d / f.name)) > 0 for f in files])
        for d in sorted(nodule.glob("mask-*"))
    }
    return [_slice_no(f) for f in files], image, masks


# ------------------------------------------------------------------ real LIDC


def test_real_nodules_3d_iaa_equals_a_numpy_loop(lidc_root):
    ds = open_dataset(lidc_root, unit="nodule")
    folders = sorted(p for p in lidc_root.glob("*/*") if (p / "images").is_dir())
    assert ds.ids == [f"{p.parent.name}/{p.name}" for p in sorted(
        folders, key=lambda p: (p.parent.name, int(p.name.rsplit("-", 1)[-1])))]
    assert not ds.problems
    n_multi = 0
    for folder in folders:
        cid = f"{folder.parent.name}/{folder.name}"
        case = ds[cid]
        slices, image, masks = _stack_by_hand(folder)
        k = len(slices)
        n_multi += k > 1
        assert case.is_volume and case.shape == (k, 128, 128) and case.spacing is None
        assert case.voxel_spacing == (1.0, 1.0, 1.0)
        assert case.meta["slices"] == slices == sorted(slices)
        assert case.meta["n_slices"] == k
        assert case.meta["patient"] == folder.parent.name and case.meta["nodule"] == folder.name
        assert case.group == folder.parent.name
        np.testing.assert_array_equal(case.image, image)  # slice order, not file order
        assert case.mask_ids == list(masks) == ["r0", "r1", "r2", "r3"]
        for mid, m in masks.items():
            assert case.masks[mid].dtype == bool and case.masks[mid].shape == (k, 128, 128)
            np.testing.assert_array_equal(case.masks[mid], m)
        arrays = list(masks.values())
        for rule, both_empty in (("zero", 0.0), ("one", 1.0), ("ignore", np.nan)):
            want = _numpy_iaa(arrays, both_empty)
            got = iaa(case, empty=rule)
            assert got == pytest.approx(want, abs=1e-12, nan_ok=True), (cid, rule)
        assert AgreementTracker(case.masks).iaa() == pytest.approx(_numpy_iaa(arrays, 0.0), abs=1e-12)
    assert n_multi >= 2  # real stacks, not only one-slice nodules


def test_real_nodules_cover_the_slices(lidc_root):
    per_slice = open_dataset(lidc_root)  # the default unit is still the slice
    nodules = open_dataset(lidc_root, unit="nodule")
    assert all(cid.count("/") == 2 for cid in per_slice.ids)
    want: dict[str, list[int]] = {}
    for e in per_slice.entries:
        want.setdefault(e.case_id.rsplit("/", 1)[0], []).append(e.meta["slice"])
    assert {e.case_id: e.meta["slices"] for e in nodules.entries} == {
        cid: sorted(v) for cid, v in want.items()}
    assert sum(e.meta["n_slices"] for e in nodules.entries) == len(per_slice)


# ------------------------------------------------------------------ built trees


def _nodule(root: Path, patient: str, nodule: str, slices: list[int], readers: int = 3,
            seed: int = 0) -> dict[int, tuple[np.ndarray, list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    out = {}
    for n in slices:
        img = rng.integers(0, 255, (16, 16))
        masks = [rng.random((16, 16)) < 0.3 for _ in range(readers)]
        _png(root / patient / nodule / "images" / f"slice-{n}.png", img)
        for r, m in enumerate(masks):
            _png(root / patient / nodule / f"mask-{r}" / f"slice-{n}.png", m * 255)
        out[n] = (img, masks)
    return out


def test_gaps_keep_slice_order_and_ids(tmp_path):
    root = tmp_path / "LIDC-IDRI-slices"
    a = _nodule(root, "P1", "nodule-0", [10, 2, 3, 9], seed=1)  # gap 4..8; 10 after 9
    _nodule(root, "P1", "nodule-1", [0], seed=2)
    _nodule(root, "P2", "nodule-0", [0, 1], seed=3)
    ds = open_dataset(tmp_path, unit="nodule")  # the parent of LIDC-IDRI-slices works too
    assert ds.ids == ["P1/nodule-0", "P1/nodule-1", "P2/nodule-0"]
    case = ds["P1/nodule-0"]
    assert case.meta["slices"] == [2, 3, 9, 10] and case.meta["n_slices"] == 4
    np.testing.assert_array_equal(case.image, np.stack([a[n][0] for n in (2, 3, 9, 10)]))
    for r in range(3):
        np.testing.assert_array_equal(case.masks[f"r{r}"], np.stack([a[n][1][r] for n in (2, 3, 9, 10)]))
    assert ds["P1/nodule-1"].shape == (1, 16, 16)
    assert ds.entry("P1/nodule-0").files()[0].name == "slice-2.png"
    # the slice unit, unchanged
    assert open_dataset(tmp_path).ids[:4] == [
        "P1/nodule-0/slice-2", "P1/nodule-0/slice-3", "P1/nodule-0/slice-9", "P1/nodule-0/slice-10"]


def test_indexing_reads_no_pixels(tmp_path, monkeypatch):
    root = tmp_path / "LIDC-IDRI-slices"
    _nodule(root, "P1", "nodule-0", [0, 1, 2])

    def boom(*a, **k):
        raise AssertionError("pixels read while indexing")

    import napari_iaa.data.layouts._stack as stack

    monkeypatch.setattr(stack, "read_image", boom)
    monkeypatch.setattr(stack, "read_mask", boom)
    ds = open_dataset(root, unit="nodule")
    entry = ds.entry("P1/nodule-0")
    assert [p.name for p in entry.image_slices] == ["slice-0.png", "slice-1.png", "slice-2.png"]
    assert len(entry.files()) == 3 + 3 * 3
    assert ds.validate().is_valid  # file checks only
    assert ds.metadata()["n_slices"].tolist() == [3]


def test_missing_reader_file_and_image_without_masks(tmp_path):
    root = tmp_path / "LIDC-IDRI-slices"
    _nodule(root, "P1", "nodule-0", [0, 1, 2])
    (root / "P1" / "nodule-0" / "mask-1" / "slice-1.png").unlink()
    _png(root / "P1" / "nodule-0" / "images" / "slice-7.png", np.zeros((16, 16)))  # no masks
    ds = open_dataset(root, unit="nodule")
    case = ds["P1/nodule-0"]
    assert case.mask_ids == ["r0", "r2"] and case.meta["slices"] == [0, 1, 2]
    msgs = [str(p) for p in ds.problems]
    assert any("mask-1" in m and "slice-1" in m and "r1 left out" in m for m in msgs)
    assert any("slice-7.png" in m and "image without masks" in m for m in msgs)


def test_bad_slice_is_named(tmp_path):
    root = tmp_path / "LIDC-IDRI-slices"
    _nodule(root, "P1", "nodule-0", [0, 1, 2])
    _nodule(root, "P1", "nodule-1", [0, 1])
    bad = root / "P1" / "nodule-0" / "mask-2" / "slice-1.png"
    _png(bad, np.zeros((8, 8)))
    _png(root / "P1" / "nodule-1" / "images" / "slice-1.png", np.zeros((16, 20)))
    ds = open_dataset(root, unit="nodule")
    with pytest.raises(ShapeMismatchError, match=re.escape(str(bad))):
        ds.load("P1/nodule-0")
    case = ds.load("P1/nodule-0", strict=False)  # the reader with the bad slice is left out
    assert case.mask_ids == ["r0", "r1"] and case.meta["skipped_masks"] == [str(bad)]
    assert any(p.path == bad for p in ds.problems)
    with pytest.raises(ShapeMismatchError, match="slice-1.png: slice shape 16x20 differs"):
        ds.load("P1/nodule-1")
    assert [c.case_id for c in ds] == []  # iteration (strict) skips both and records
    assert {p.case_id for p in ds.problems} >= {"P1/nodule-0", "P1/nodule-1"}
    report = ds.validate(check_pixels=True)
    assert report.ok == [] and {p.case_id for p in report.problems} >= {"P1/nodule-0", "P1/nodule-1"}


def test_unit_option(tmp_path):
    root = tmp_path / "LIDC-IDRI-slices"
    _nodule(root, "P1", "nodule-0", [0, 1])
    assert open_dataset(root, unit="slice").ids == open_dataset(root).ids
    assert open_dataset(root, layout="lidc", unit="nodule").ids == ["P1/nodule-0"]
    assert open_any(root, unit="nodule").ids == ["P1/nodule-0"]
    assert open_any(root).ids == ["P1/nodule-0/slice-0", "P1/nodule-0/slice-1"]
    with pytest.raises(DatasetError, match="unit 'lesion'"):
        open_dataset(root, unit="lesion")
    with pytest.raises(DatasetError, match="unknown unit"):
        lidc_mod.read_lidc(root, unit="lesion")
    case = tmp_path / "folders" / "c1"
    _png(case / "image.png", np.zeros((8, 8)))
    _png(case / "A.png", np.zeros((8, 8)))
    with pytest.raises(DatasetError, match="folders layout has one case per image"):
        open_dataset(tmp_path / "folders", unit="nodule")
    assert open_dataset(tmp_path / "folders").ids == ["c1"]


def test_bundled_nodule_volumes_equal_the_lidc_stacking(lidc_root):
    from napari_iaa.data import sample_data_path

    sample = open_dataset(sample_data_path("lidc_nodules"))
    assert sample.layout == "folders" and len(sample) == 5
    nodules = open_dataset(lidc_root, unit="nodule")
    checked = 0
    for cid in sample.ids:
        patient, nodule = cid.rsplit("_", 1)
        if f"{patient}/{nodule}" not in nodules:
            continue
        vol, stacked = sample[cid], nodules[f"{patient}/{nodule}"]
        assert vol.spacing == (1.0, 1.0, 1.0) and vol.meta["slices"] == ",".join(
            map(str, stacked.meta["slices"]))
        np.testing.assert_array_equal(vol.image, stacked.image)
        assert vol.mask_ids == stacked.mask_ids
        for mid in vol.mask_ids:
            np.testing.assert_array_equal(vol.masks[mid], stacked.masks[mid])
        for rule in ("zero", "one", "ignore"):
            assert iaa(vol, empty=rule) == pytest.approx(iaa(stacked, empty=rule), nan_ok=True)
        checked += 1
    assert checked >= 1  # LIDC-IDRI-0004 is among the patients the fixture extracts


def test_nifti_nodules_score_like_the_lidc_stacking(lidc_root):
    """`napari-iaa score` rows of the NIfTI sample equal those of `--unit nodule` on LIDC:
    IAA under each rule, the detection columns and the surface distances (1 mm = 1 voxel)."""
    from napari_iaa.data import sample_data_path
    from napari_iaa.scoring import score_dataset

    sample = open_dataset(sample_data_path("lidc_nodules"))
    nodules = open_dataset(lidc_root, unit="nodule")
    pairs = {cid: "/".join(cid.rsplit("_", 1)) for cid in sample.ids}
    pairs = {a: b for a, b in pairs.items() if b in nodules}
    assert pairs
    for rule in ("zero", "one", "ignore"):
        a = {r["case_id"]: r for r in score_dataset(sample.subset(list(pairs)), empty=rule).rows}
        b = {r["case_id"]: r for r in score_dataset(nodules.subset(list(pairs.values())),
                                                    empty=rule).rows}
        for sid, nid in pairs.items():
            for col in ("iaa", "n_marked", "detection_agreement", "iaa_marked", "hd95_mean",
                        "assd_mean"):
                assert a[sid][col] == pytest.approx(b[nid][col], nan_ok=True), (sid, col)
