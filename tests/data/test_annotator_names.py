"""Annotator names as people write them. Accents arrive in two Unicode forms: macOS
writes file names decomposed (NFD), a CSV typed elsewhere holds them composed (NFC). One
annotator must stay one annotator, a manifest must find its files whichever form each side
used, and ids that differ only in letter case are pointed out."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
from PIL import Image

from napari_iaa.data import open_dataset

NFC = unicodedata.normalize("NFC", "José")
NFD = unicodedata.normalize("NFD", "José")


def _png(path, box=None, rgb=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((12, 16, 3) if rgb else (12, 16), np.uint8)
    if box is not None:
        y0, y1, x0, x1 = box
        arr[y0:y1, x0:x1] = 255
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def two_forms(tmp_path):
    """Two names that differ only in their normal form, if this file system keeps both."""
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / NFC).touch()
    (probe / NFD).touch()
    if len(list(probe.iterdir())) != 2:  # macOS (APFS, HFS+) folds them into one
        pytest.skip("this file system stores one Unicode form of a name")
    return tmp_path


def test_one_annotator_whichever_form_the_file_names_came_in(two_forms):
    root = two_forms / "ds"
    for case, name in (("c1", NFC), ("c2", NFD)):
        _png(root / case / "image.png", rgb=True)
        _png(root / case / f"{name}.png", box=(2, 8, 3, 10))
        _png(root / case / "Ana.png", box=(3, 8, 3, 11))
    ds = open_dataset(root, layout="folders")
    assert ds.ids == ["c1", "c2"] and not ds.problems
    assert ds["c1"].mask_ids == ds["c2"].mask_ids == sorted(["Ana", NFC])
    assert ds["c2"].masks[NFC].sum() == 6 * 7  # the NFD file was read under the NFC id


def test_manifest_finds_files_stored_in_the_other_form(two_forms):
    root = two_forms / "m"
    _png(root / "imgs" / "a.png", rgb=True)
    _png(root / "masks" / f"a_{NFD}.png", box=(2, 8, 3, 10))  # as macOS wrote it
    _png(root / "masks" / "a_Ana.png", box=(3, 8, 3, 11))
    _png(root / "masks" / f"b_{NFC}.png", box=(2, 8, 3, 10))
    _png(root / "imgs" / "b.png", rgb=True)
    _png(root / "masks" / "b_Ana.png", box=(3, 8, 3, 11))
    (root / "manifest.csv").write_text(
        "case_id,image,annotator,mask\n"
        f"a,imgs/a.png,{NFC},masks/a_{NFC}.png\n"  # typed: composed
        "a,imgs/a.png,Ana,masks/a_Ana.png\n"
        f"b,imgs/b.png,{NFD},masks/b_{NFD}.png\n"  # pasted from a Mac: decomposed
        "b,imgs/b.png,Ana,masks/b_Ana.png\n",
        encoding="utf-8",
    )
    ds = open_dataset(root / "manifest.csv")
    assert not ds.problems, [str(p) for p in ds.problems]
    assert ds["a"].mask_ids == ds["b"].mask_ids == [NFC, "Ana"]  # in the rows' order
    assert ds["a"].masks[NFC].sum() == ds["b"].masks[NFC].sum() == 6 * 7


def test_annotator_ids_differing_only_in_case_are_noted(tmp_path):
    root = tmp_path / "ds"
    for case, name in (("c1", "R1"), ("c2", "R1"), ("c3", "r1")):
        _png(root / case / "image.png", rgb=True)
        _png(root / case / f"{name}.png", box=(2, 8, 3, 10))
        _png(root / case / "R2.png", box=(3, 8, 3, 11))
    ds = open_dataset(root, layout="folders")
    assert ds.ids == ["c1", "c2", "c3"]  # all scored, as written
    notes = [str(p) for p in ds.problems]
    assert len(notes) == 1 and "differ only in letter case: 'R1' (2 cases) and 'r1' (1 case)" in notes[0]


def test_consistent_ids_give_no_case_note(tmp_path):
    root = tmp_path / "ds"
    for case in ("c1", "c2"):
        _png(root / case / "image.png", rgb=True)
        _png(root / case / "R1.png", box=(2, 8, 3, 10))
        _png(root / case / "r2.png", box=(3, 8, 3, 11))
    assert not open_dataset(root, layout="folders").problems
