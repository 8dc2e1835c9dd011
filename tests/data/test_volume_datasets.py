"""Data sets of volumes: folders and manifest layouts, bad files, edits, scores, consensus."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
from contextlib import redirect_stdout
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from napari_iaa.data import (
    open_dataset,
    read_mask,
    read_volume,
    save_edited_mask,
    volume_header,
    write_volume,
)
from napari_iaa.errors import IAAError, ImageReadError, ShapeMismatchError

SPACING = (2.5, 0.7, 0.7)
ORIGIN = (-12.0, 30.5, 7.25)
SHAPE = (8, 20, 24)


def _ball(center, radius, shape=SHAPE, spacing=SPACING) -> np.ndarray:
    """A ball in mm (anisotropic voxels)."""
    zz, yy, xx = np.indices(shape)
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip((zz, yy, xx), center, spacing, strict=True))
    return d2 <= radius**2


def _case(folder: Path, suffix: str = ".nii.gz", centers=((4, 10, 12), (4, 10, 13), (4, 11, 12))):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    write_volume(folder / f"image{suffix}", rng.integers(-100, 100, SHAPE).astype(np.int16),
                 spacing=SPACING, origin=ORIGIN)
    for k, c in enumerate(centers):
        write_volume(folder / f"r{k}{suffix}", _ball(c, 4.0), spacing=SPACING, origin=ORIGIN)
    return folder


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def volume_folders(tmp_path) -> Path:
    root = tmp_path / "vols"
    _case(root / "case1")
    _case(root / "case2", ".nrrd")
    _case(root / "case3", ".mha", centers=((4, 10, 12), (4, 10, 12)))
    return root


def test_folders_of_volumes_open_with_spacing(volume_folders):
    ds = open_dataset(volume_folders)
    assert ds.layout == "folders" and ds.ids == ["case1", "case2", "case3"] and not ds.problems
    assert ds.entry("case1").mask_ids == ["r0", "r1", "r2"]
    case = ds.load("case1")
    assert case.is_volume and case.shape == SHAPE and case.image.dtype == np.int16
    np.testing.assert_allclose(case.spacing, SPACING, rtol=1e-6)
    np.testing.assert_allclose(case.origin, ORIGIN, rtol=1e-6)
    assert case.direction == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert all(m.dtype == bool and m.shape == SHAPE for m in case.masks.values())
    np.testing.assert_array_equal(case.masks["r0"], _ball((4, 10, 12), 4.0))
    assert ds.load("case2").spacing == pytest.approx(SPACING)
    assert ds.load("case3").mask_ids == ["r0", "r1"]


def test_manifest_of_nrrd_and_mha(tmp_path):
    _case(tmp_path / "a", ".nrrd")
    _case(tmp_path / "b", ".mha")
    rows = [("A", "a/image.nrrd", f"R{k}", f"a/r{k}.nrrd") for k in range(3)]
    rows += [("B", "b/image.mha", f"R{k}", f"b/r{k}.mha") for k in range(3)]
    with open(tmp_path / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["case_id", "image", "annotator", "mask"])
        w.writerows(rows)
    ds = open_dataset(tmp_path)
    assert ds.layout == "manifest" and ds.ids == ["A", "B"]
    for cid in ds.ids:
        case = ds.load(cid)
        assert case.mask_ids == ["R0", "R1", "R2"] and case.shape == SHAPE
        assert case.spacing == pytest.approx(SPACING)


def _truncate(p: Path, n: int = 9) -> None:
    p.write_bytes(p.read_bytes()[:-n])


def _bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Bad masks in their own case folders: name -> (file, a word its message carries)."""
    bad: dict[str, tuple[Path, str]] = {}
    for name, suffix in [("trunc_nii", ".nii"), ("trunc_niigz", ".nii.gz"),
                         ("trunc_mha", ".mha"), ("trunc_nrrd", ".nrrd")]:
        d = _case(folder / name, suffix)
        if suffix == ".mha":
            write_volume(d / "r1.mha", _ball((4, 10, 13), 4.0), spacing=SPACING, origin=ORIGIN,
                         compress=False)
        _truncate(d / f"r1{suffix}")
        bad[name] = (d / f"r1{suffix}", "truncated" if suffix != ".mha" else "shorter")
    d = _case(folder / "gzip")
    raw = bytearray((d / "r1.nii.gz").read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 16] = b"\xff" * 16
    (d / "r1.nii.gz").write_bytes(bytes(raw))
    bad["corrupt_gzip"] = (d / "r1.nii.gz", "gzip")
    d = _case(folder / "not_gzip")
    (d / "r1.nii.gz").write_bytes(gzip.decompress((d / "r1.nii.gz").read_bytes()))
    bad["not_gzip"] = (d / "r1.nii.gz", "gzip")
    d = _case(folder / "four_d")
    four = sitk.JoinSeries([sitk.GetImageFromArray(_ball((4, 10, 12), 4.0).astype(np.uint8))] * 2)
    sitk.WriteImage(four, str(d / "r1.nii.gz"))
    bad["four_d"] = (d / "r1.nii.gz", "4D")
    d = _case(folder / "vector")
    vec = np.stack([_ball((4, 10, 12), 4.0)] * 3, axis=-1).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(vec, isVector=True), str(d / "r1.nii.gz"))
    bad["vector"] = (d / "r1.nii.gz", "values per voxel")
    d = _case(folder / "grid")
    write_volume(d / "r1.nii.gz", _ball((4, 10, 12), 4.0), spacing=(1.0, 0.7, 0.7), origin=ORIGIN)
    bad["grid"] = (d / "r1.nii.gz", "spacing")
    d = _case(folder / "shape")
    write_volume(d / "r1.nii.gz", _ball((4, 10, 12), 4.0, shape=(8, 20, 23)), spacing=SPACING,
                 origin=ORIGIN)
    bad["shape"] = (d / "r1.nii.gz", "shape")
    d = _case(folder / "mhd", ".mhd")
    (d / "r1.zraw").unlink()
    bad["mhd_without_data"] = (d / "r1.mhd", "")
    return bad


def test_each_bad_volume_is_named_and_the_rest_loads(tmp_path):
    root = tmp_path / "bad"
    _case(root / "good")
    bad = _bad_files(root)
    ds = open_dataset(root)
    assert ds.layout == "folders" and len(ds) == len(bad) + 1
    for name, (path, word) in bad.items():
        case_id = path.parent.name
        with pytest.raises((ImageReadError, ShapeMismatchError)) as info:
            ds.load(case_id)
        message = str(info.value)
        assert message.startswith(f"{path}:"), (name, message)
        assert word in message, (name, message)
        assert "Traceback" not in message and not re.search(r"0x[0-9a-f]{6}", message), message
        lenient = ds.load(case_id, strict=False)
        assert lenient.mask_ids == ["r0", "r2"], name
        assert lenient.meta["skipped_masks"] == [str(path)]
    kinds = {n: type(pytest.raises(IAAError, ds.load, p.parent.name).value)
             for n, (p, _) in bad.items()}
    assert kinds["grid"] is ShapeMismatchError and kinds["shape"] is ShapeMismatchError
    assert kinds["four_d"] is ImageReadError and kinds["vector"] is ImageReadError
    assert ds.load("good").n_masks == 3
    report = ds.validate(check_pixels=True)
    assert report.ok == ["good"]
    assert {str(p.path) for p in report.problems} == {str(p) for p, _ in bad.values()}


@pytest.mark.parametrize("kind", ["truncated", "corrupt_gzip", "four_d"])
def test_bad_volume_image_skips_only_its_case(tmp_path, kind):
    root = tmp_path / "ds"
    _case(root / "a")
    d = _case(root / "b")
    img = d / "image.nii.gz"
    if kind == "truncated":
        _truncate(img, 100)
    elif kind == "corrupt_gzip":
        raw = bytearray(img.read_bytes())
        raw[-40:-24] = b"\x00" * 16
        img.write_bytes(bytes(raw))
    else:
        sitk.WriteImage(sitk.JoinSeries([sitk.GetImageFromArray(np.zeros(SHAPE, np.int16))] * 3), str(img))
    ds = open_dataset(root)
    cases = list(ds)
    assert [c.case_id for c in cases] == ["a"]
    assert [str(p.path) for p in ds.problems] == [str(img)]


def test_score_cli_on_volume_folders(volume_folders, tmp_path):
    from napari_iaa.cli import main

    out = tmp_path / "scores.csv"
    assert main(["score", str(volume_folders), "-o", str(out), "-q"]) == 0
    rows = {r["case_id"]: r for r in csv.DictReader(out.open())}
    assert list(rows) == ["case1", "case2", "case3"]
    ds = open_dataset(volume_folders)
    for cid, row in rows.items():
        masks = list(ds.load(cid).masks.values())
        dice = [2 * (a & b).sum() / (a.sum() + b.sum())
                for i, a in enumerate(masks) for b in masks[i + 1 :]]
        assert float(row["iaa"]) == pytest.approx(np.mean(dice), abs=1e-9)
    assert float(rows["case3"]["iaa"]) == 1.0
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["score", str(volume_folders), "-q"]) == 0
    assert buf.getvalue().splitlines()[0].startswith("case_id,")


def test_save_edited_volume_keeps_header_and_original(volume_folders):
    original = volume_folders / "case1" / "r1.nii.gz"
    before = _sha(original)
    mask = read_mask(original)
    mask[0, 0, 0] = True
    when = datetime(2026, 1, 2, 3, 4, 5)
    out = save_edited_mask(mask, original, "Dr. Lee", when=when)
    assert out == volume_folders / "case1" / "r1_edited-Dr._Lee-20260102-030405.nii.gz"
    assert _sha(original) == before
    h0, h1 = volume_header(original), volume_header(out)
    assert (h1.shape, h1.spacing, h1.origin, h1.direction) == (h0.shape, h0.spacing, h0.origin, h0.direction)
    vol = read_volume(out, for_mask=True)
    assert vol.array.dtype == np.uint8
    np.testing.assert_array_equal(vol.array.astype(bool), mask)
    second = save_edited_mask(mask, original, "Dr. Lee", when=when)
    assert second.name == "r1_edited-Dr._Lee-20260102-030405-2.nii.gz"
    assert _sha(out) == _sha(second) and _sha(original) == before
    ds = open_dataset(volume_folders)  # an edit is not an annotator
    assert ds.entry("case1").mask_ids == ["r0", "r1", "r2"]
    assert not [p for p in (volume_folders / "case1").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(("suffix", "saved"), [(".nrrd", ".nrrd"), (".mha", ".mha"),
                                               (".mhd", ".mha"), (".nhdr", ".nrrd")])
def test_edits_keep_the_format(tmp_path, suffix, saved):
    p = write_volume(tmp_path / f"m{suffix}", _ball((4, 10, 12), 4.0), spacing=SPACING, origin=ORIGIN)
    out = save_edited_mask(_ball((4, 10, 13), 4.0), p, "R", when=datetime(2026, 1, 2, 3, 4, 5))
    assert out.name == f"m_edited-R-20260102-030405{saved}"
    assert volume_header(out).spacing == pytest.approx(volume_header(p).spacing, rel=1e-12)
    assert volume_header(out).origin == volume_header(p).origin


def test_edit_of_wrong_shape_refused(tmp_path):
    p = write_volume(tmp_path / "m.nii.gz", _ball((4, 10, 12), 4.0), spacing=SPACING)
    with pytest.raises(IAAError, match="shape") as info:
        save_edited_mask(np.zeros((3, 3, 3), bool), p, "R")
    assert str(p) in str(info.value)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["m.nii.gz"]


def test_consensus_of_volumes_keeps_format_and_header(volume_folders, tmp_path):
    from napari_iaa.cli import main

    out = tmp_path / "consensus"
    assert main(["consensus", str(volume_folders), "-o", str(out), "-q"]) == 0
    rows = {r["case_id"]: r for r in csv.DictReader((out / "consensus.csv").open())}
    assert {k: r["file"] for k, r in rows.items()} == {
        "case1": "case1.nii.gz", "case2": "case2.nrrd", "case3": "case3.mha"}
    ds = open_dataset(volume_folders)
    for cid, row in rows.items():
        image = ds.entry(cid).image_path
        h, hi = volume_header(out / row["file"]), volume_header(image)
        assert (h.shape, h.spacing, h.origin, h.direction) == (hi.shape, hi.spacing, hi.origin, hi.direction)
        masks = np.stack(list(ds.load(cid).masks.values()))
        majority = 2 * masks.sum(0) >= len(masks)
        np.testing.assert_array_equal(read_mask(out / row["file"]), majority)


def test_consensus_of_tiff_and_npy_volumes_is_nifti_as_help_says(tmp_path, capsys):
    from napari_iaa.cli import main

    root = tmp_path / "stacks"
    for cid, suffix in (("t", ".tif"), ("n", ".npy")):
        (root / cid).mkdir(parents=True)
        img = np.random.default_rng(0).integers(0, 255, SHAPE).astype(np.uint8)
        masks = [_ball((4, 10, 12), 4.0), _ball((4, 10, 13), 4.0)]
        if suffix == ".npy":
            np.save(root / cid / "image.npy", img)
            for k, m in enumerate(masks):
                np.save(root / cid / f"r{k}.npy", m.astype(np.uint8))
        else:
            import tifffile
            tifffile.imwrite(root / cid / "image.tif", img)
            for k, m in enumerate(masks):
                tifffile.imwrite(root / cid / f"r{k}.tif", m.astype(np.uint8) * 255)
    out = tmp_path / "consensus"
    assert main(["consensus", str(root), "-o", str(out), "-q"]) == 0
    rows = {r["case_id"]: r["file"] for r in csv.DictReader((out / "consensus.csv").open())}
    assert rows == {"n": "n.nii.gz", "t": "t.nii.gz"}
    assert volume_header(out / "t.nii.gz").spacing == (1.0, 1.0, 1.0)
    capsys.readouterr()
    assert main(["consensus", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "NIfTI (.nii.gz, unit spacing) for a multi-page TIFF or .npy volume" in help_text
