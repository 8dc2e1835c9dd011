"""Manifests and metadata CSVs separated by ';' (European Excel) or tab, and what a CSV
that still cannot be read says."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from napari_iaa.data import detect_layout, open_dataset
from napari_iaa.errors import DatasetError


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _files(root):
    rng = np.random.default_rng(0)
    _png(root / "imgs" / "a,1.png", rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    m = np.zeros((12, 16), np.uint8)
    m[2:8, 3:10] = 255
    _png(root / "masks" / "r1.png", m)
    m[2:9, 3:11] = 255
    _png(root / "masks" / "r2.png", m)
    return root


@pytest.mark.parametrize("sep", [";", "\t"], ids=["semicolon", "tab"])
def test_manifest_with_semicolons_or_tabs(tmp_path, sep):
    root = _files(tmp_path / "m")
    rows = [
        ["case_id", "image", "annotator", "mask", "age", "clin_size_long_diam_mm", "note"],
        ["a", '"imgs/a,1.png"', "r1", "masks/r1.png", "50", "3,5", '"x; y"'],
        ["a", '"imgs/a,1.png"', "r2", "masks/r2.png", "", "", ""],
    ]
    (root / "manifest.csv").write_bytes(
        ("\ufeff" + "\r\n".join(sep.join(r) for r in rows) + "\r\n").encode("utf-8"))
    assert detect_layout(root) == "manifest"
    ds = open_dataset(root)
    assert ds.ids == ["a"] and ds["a"].mask_ids == ["r1", "r2"], [str(p) for p in ds.problems]
    assert ds.entry("a").image_path == root / "imgs" / "a,1.png"  # comma inside quotes kept
    meta = ds.entry("a").meta
    assert meta["age"] == 50 and meta["clin_size_long_diam_mm"] == 3.5  # decimal comma
    assert meta["note"] == "x; y" and not ds.problems


def test_comma_manifest_keeps_quoted_commas_as_text(tmp_path):
    root = _files(tmp_path / "m")
    (root / "manifest.csv").write_text(
        'case_id,image,annotator,mask,note\na,"imgs/a,1.png",r1,masks/r1.png,"3,5"\n'
        'a,"imgs/a,1.png",r2,masks/r2.png,\n', encoding="utf-8")
    ds = open_dataset(root)
    assert ds["a"].mask_ids == ["r1", "r2"] and ds.entry("a").meta["note"] == "3,5"


def test_imapp_metadata_with_semicolons_and_decimal_commas(tmp_path):
    root = tmp_path / "imapp"
    rng = np.random.default_rng(1)
    _png(root / "images" / "ISIC_0000001.jpg", rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    m = np.zeros((12, 16), np.uint8)
    m[2:8, 3:10] = 255
    for a in ("A", "B"):
        _png(root / "masks" / f"ISIC_0000001_{a}_manual_expert_0.png", m)
    (root / "X_img_metadata.csv").write_text(
        "isic_id;benign_malignant;clin_size_long_diam_mm\nISIC_0000001;benign;4,25\n", encoding="utf-8")
    ds = open_dataset(root)
    meta = ds.entry("ISIC_0000001").meta
    assert meta["benign_malignant"] == "benign", [str(p) for p in ds.problems]
    assert meta["clin_size_long_diam_mm"] == 4.25


def test_unreadable_csv_names_the_file_and_the_separator(tmp_path):
    csv = tmp_path / "list.csv"
    csv.write_text("case_id|image|annotator|mask\na|x.png|r1|y.png\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"list\.csv: missing required column.*separator ','"):
        open_dataset(csv, layout="manifest")
    csv.write_text('case_id;image;annotator;mask\na;"x.png"oops;r1;y.png\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"list\.csv: line 2: malformed CSV.*separator ';'"):
        open_dataset(csv, layout="manifest")
