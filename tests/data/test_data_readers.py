"""Layout readers, Dataset and the bad-input cases (each: message names the file, the rest
of the data set still loads)."""

from __future__ import annotations

import hashlib
import os
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from napari_iaa.data import (
    LAYOUTS,
    Case,
    CaseNotFoundError,
    Dataset,
    detect_layout,
    open_case,
    open_dataset,
)
from napari_iaa.errors import DatasetError, ImageReadError, ShapeMismatchError

H, W = 12, 16


def _img(path, shape=(H, W), rgb=True, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (*shape, 3) if rgb else shape, dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def _mask(path, shape=(H, W), box=(2, 8, 3, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    m = np.zeros(shape, np.uint8)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 255
    Image.fromarray(m).save(path)
    return path


def _messages(ds):
    return [str(p) for p in ds.problems]


def _has_problem(ds, *needles):
    return any(all(n in s for n in needles) for s in _messages(ds))


# --------------------------------------------------------------------------- folders
def _folders(root, cases=("c1", "c2", "c3"), annotators=("A", "B")):
    for i, c in enumerate(cases):
        _img(root / c / "image.png", seed=i)
        for k, a in enumerate(annotators):
            _mask(root / c / f"{a}.png", box=(2 + k, 8, 3, 10 + k))
    return root


def test_folders_layout(tmp_path):
    root = _folders(tmp_path / "ds")
    assert detect_layout(root) == "folders"
    ds = open_dataset(root)
    assert ds.layout == "folders" and len(ds) == 3 and ds.ids == ["c1", "c2", "c3"]
    assert not ds.problems
    case = ds["c2"]
    assert isinstance(case, Case) and case.mask_ids == ["A", "B"] and case.shape == (H, W)
    assert case.stack().shape == (2, H, W) and case.stack().dtype == bool
    assert [c.case_id for c in ds] == ds.ids
    assert ds[0].case_id == "c1"
    c = open_case(root / "c1")
    assert c.case_id == "c1" and c.n_masks == 2


def test_folders_bad_cases_reported_rest_loads(tmp_path):
    root = _folders(tmp_path / "ds")
    (root / "empty").mkdir()
    _mask(root / "no_image" / "A.png")
    _img(root / "no_masks" / "image.png")
    _img(root / "mismatch" / "image.png")
    _mask(root / "mismatch" / "A.png")
    _mask(root / "mismatch" / "B.png", shape=(H + 1, W))
    _img(root / "trunc" / "image.png")
    _mask(root / "trunc" / "A.png")
    data = (root / "trunc" / "A.png").read_bytes()
    (root / "trunc" / "A.png").write_bytes(data[: len(data) // 2])
    _img(root / "zero" / "image.png")
    (root / "zero" / "A.png").write_bytes(b"")

    ds = open_dataset(root)
    assert _has_problem(ds, "empty", "empty folder")
    assert _has_problem(ds, "no_image", "without an image")
    assert _has_problem(ds, "no_masks", "image.png", "image without masks")
    assert set(ds.ids) == {"c1", "c2", "c3", "mismatch", "trunc", "zero"}

    with pytest.raises(ShapeMismatchError, match=r"mismatch/B\.png: mask shape 13x16 .* 12x16"):
        ds.load("mismatch")
    with pytest.raises(ImageReadError, match=r"trunc/A\.png: cannot decode"):
        ds.load("trunc")
    loose = ds.load("mismatch", strict=False)
    assert loose.mask_ids == ["A"] and "B.png" in loose.meta["skipped_masks"][0]

    loaded = [c.case_id for c in ds]
    assert loaded == ["c1", "c2", "c3"]
    msgs = _messages(ds)
    assert any("mismatch/B.png" in m and "shape" in m for m in msgs)
    assert any("trunc/A.png" in m for m in msgs)
    assert any("zero/A.png" in m and "empty file" in m for m in msgs)
    # iterating twice does not duplicate problems
    n = len(ds.problems)
    list(ds)
    assert len(ds.problems) == n

    rep = ds.validate(check_pixels=True)
    assert sorted(rep.ok) == ["c1", "c2", "c3"] and not rep.is_valid
    fast = ds.validate()
    assert "zero" not in fast.ok and "mismatch" in fast.ok  # shape needs pixels


def test_folders_second_image_is_not_an_annotator(tmp_path):
    root = _folders(tmp_path / "ds", cases=("c1",))
    _img(root / "c1" / "img.png", seed=5)  # image.png and img.png: both are image names
    ds = open_dataset(root)
    assert ds["c1"].mask_ids == ["A", "B"]
    assert ds.entry("c1").image_path.name == "image.png"
    assert _has_problem(ds, "img.png", "second image", "kept image.png")


def test_folders_meta_json_with_bom_and_crlf(tmp_path):
    root = _folders(tmp_path / "ds")
    # saved by a Windows editor: UTF-8 with a byte-order mark, CRLF line ends
    (root / "c1" / "meta.json").write_bytes(
        b'\xef\xbb\xbf{\r\n "diagnosis": "m\xc3\xa9lanome", "patient": "P7", "age": 54,\r\n'
        b' "tags": ["a"], "note": null\r\n}\r\n')
    (root / "c2" / "meta.json").write_text("{not json", encoding="utf-8")
    ds = open_dataset(root)
    c1 = ds.entry("c1")
    assert c1.meta == {"diagnosis": "mélanome", "patient": "P7", "age": 54}
    assert c1.group == "P7"
    assert ds.entry("c2").meta == {}
    assert _has_problem(ds, "c2", "meta.json", "unreadable metadata")
    assert not _has_problem(ds, "c1")


def test_single_annotator_and_two_masks_by_one_annotator(tmp_path):
    root = _folders(tmp_path / "ds", cases=("solo",), annotators=("A",))
    _img(root / "twice" / "image.png")
    _mask(root / "twice" / "B.png")
    _mask(root / "twice" / "B#2.png", box=(0, 4, 0, 4))
    ds = open_dataset(root)
    assert ds["solo"].mask_ids == ["A"] and ds["solo"].n_masks == 1
    t = ds["twice"]
    assert t.mask_ids == ["B", "B#2"] and t.raters == {"B": "B", "B#2": "B"}
    assert t.annotators == ["B"] and not np.array_equal(t.masks["B"], t.masks["B#2"])
    assert list(ds.metadata()["n_annotators"]) == [1, 1]


def test_unreadable_case_folder(tmp_path, monkeypatch):
    root = _folders(tmp_path / "ds")
    real = os.scandir

    def scandir(path="."):
        # pytest's own clean-up of tmp_path lists folders by file descriptor (an int)
        if not isinstance(path, int) and os.fspath(path).endswith("c2"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    ds = open_dataset(root, layout="folders")
    assert ds.ids == ["c1", "c3"] and _has_problem(ds, "c2", "cannot list folder", "Permission denied")


def test_open_case_errors(tmp_path):
    _mask(tmp_path / "c" / "A.png")
    with pytest.raises(DatasetError, match="without an image"):
        open_case(tmp_path / "c")


def test_empty_folder(tmp_path):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DatasetError, match=r"nothing: empty folder"):
        open_dataset(tmp_path / "nothing")
    for name in ("folders", "lidc"):
        with pytest.raises(DatasetError, match="empty folder"):
            open_dataset(tmp_path / "nothing", layout=name)
    with pytest.raises(DatasetError, match="no such file"):
        open_dataset(tmp_path / "absent")
    with pytest.raises(DatasetError, match="unknown layout 'bogus'"):
        open_dataset(tmp_path / "nothing", layout="bogus")


def test_non_ascii_and_space_paths(tmp_path):
    root = tmp_path / "données à vérifier"
    _img(root / "cas numéro 1" / "image.png")
    _mask(root / "cas numéro 1" / "Åsa B.png")
    _mask(root / "cas numéro 1" / "李.png")
    ds = open_dataset(root)
    assert ds.ids == ["cas numéro 1"] and not ds.problems
    assert ds["cas numéro 1"].mask_ids == ["Åsa B", "李"]


def test_unknown_case(tmp_path):
    ds = open_dataset(_folders(tmp_path / "ds"))
    with pytest.raises(CaseNotFoundError, match="no case 'nope'"):
        ds["nope"]
    with pytest.raises(KeyError):
        ds.load("nope")
    assert "c1" in ds and "nope" not in ds


def test_dataset_drops_duplicate_and_escaping_ids(tmp_path):
    root = _folders(tmp_path / "ds")
    src = open_dataset(root)
    e1, e2, e3 = src.entries
    from dataclasses import replace

    bad = [replace(e1), replace(e2, case_id="c1"), replace(e3, case_id="../../etc/x"), replace(e3, case_id="a/./b")]
    ds = Dataset(bad, root, "custom")
    assert ds.ids == ["c1"]
    assert _has_problem(ds, "c2/image.png", "duplicate case id 'c1'")
    assert _has_problem(ds, "c3/image.png", "'../../etc/x'", "escape")
    assert _has_problem(ds, "'a/./b'")


def test_layout_registry():
    assert set(LAYOUTS) >= {"lidc", "imapp", "manifest", "folders"}
    assert all(callable(r) for r in LAYOUTS.values())


# --------------------------------------------------------------------------- manifest
def _manifest_files(root):
    _img(root / "imgs" / "a.png")
    _img(root / "imgs" / "b.png", seed=1)
    for n in ("a_r1", "a_r2", "b_r1", "b_r1_again"):
        _mask(root / "masks" / f"{n}.png")
    return root


def test_manifest_layout(tmp_path):
    root = _manifest_files(tmp_path / "m")
    (root / "manifest.csv").write_text(
        "case_id,image,annotator,mask,diagnosis,split,patient,age\n"
        "a,imgs/a.png,r1,masks/a_r1.png,melanoma,train,P1,50\n"
        "a,imgs/a.png,r2,masks/a_r2.png,,,,\n"
        "b,imgs/b.png,r1,masks/b_r1.png,nevus,val,P2,NaN\n"
        "b,imgs/b.png,r1,masks/b_r1_again.png,nevus,val,P2,\n",
        encoding="utf-8",
    )
    assert detect_layout(root) == "manifest"
    assert detect_layout(root / "manifest.csv") == "manifest"
    ds = open_dataset(root / "manifest.csv")
    assert ds.ids == ["a", "b"]
    a, b = ds["a"], ds["b"]
    assert a.meta["diagnosis"] == "melanoma" and a.meta["split"] == "train" and a.meta["age"] == 50
    assert a.group == "P1"
    assert b.mask_ids == ["r1", "r1#2"] and b.raters == {"r1": "r1", "r1#2": "r1"}
    assert "age" not in b.meta  # NaN metadata is left out
    md = ds.metadata()
    assert isinstance(md, pd.DataFrame)
    assert list(md["case_id"]) == ["a", "b"] and list(md["n_annotators"]) == [2, 1]
    assert list(md["n_masks"]) == [2, 2] and "diagnosis" in md.columns


def test_manifest_missing_column(tmp_path):
    root = _manifest_files(tmp_path / "m")
    csv = root / "list.csv"
    csv.write_text("case_id,image,mask\na,imgs/a.png,masks/a_r1.png\n")
    with pytest.raises(DatasetError, match=r"list\.csv: missing required column\(s\) 'annotator'"):
        open_dataset(csv, layout="manifest")


@pytest.mark.parametrize("name", ["cases.csv", "dataset.csv", "manifest.csv"])
def test_metadata_csv_beside_case_folders_is_not_a_manifest(tmp_path, name):
    root = _folders(tmp_path / "ds")
    (root / name).write_text("case,diagnosis\nc1,benign\nc2,malignant\n", encoding="utf-8")
    assert detect_layout(root) == "folders"
    assert open_dataset(root).ids == ["c1", "c2", "c3"]
    with pytest.raises(DatasetError, match=rf"{name}: missing required column"):
        open_dataset(root, layout="manifest")  # asked for by name: the CSV's problem is said


def test_manifest_found_beside_a_named_metadata_csv(tmp_path):
    root = _manifest_files(tmp_path / "m")
    (root / "cases.csv").write_text("case_id,diagnosis\na,benign\n", encoding="utf-8")
    (root / "list.csv").write_text(
        "case_id,image,annotator,mask\na,imgs/a.png,r1,masks/a_r1.png\n", encoding="utf-8")
    assert detect_layout(root) == "manifest"
    ds = open_dataset(root)
    assert ds.ids == ["a"] and ds["a"].mask_ids == ["r1"]


def test_manifest_windows_and_unnormalised_paths_name_the_same_files(tmp_path):
    root = _manifest_files(tmp_path / "m")
    (root / "manifest.csv").write_bytes(
        b"case_id,image,annotator,mask\r\n"
        b"a,imgs\\a.png,r1,masks\\a_r1.png\r\n"  # written on Windows
        b"a,.\\imgs\\a.png,r2,masks\\a_r2.png\r\n"
        b"b,./imgs/b.png,r1,masks/b_r1.png\r\n"
        b"b,imgs/../imgs/b.png,r2,masks/b_r1_again.png\r\n"  # the same image, another spelling
        b"b,imgs/b.png,r2,./masks/b_r1_again.png\r\n"  # the same row again
    )
    ds = open_dataset(root)
    assert ds.ids == ["a", "b"]
    assert ds["a"].mask_ids == ["r1", "r2"] and ds["b"].mask_ids == ["r1", "r2"]
    assert ds.entry("a").image_path == root / "imgs" / "a.png"
    assert _messages(ds) and all("duplicate row" in m for m in _messages(ds)), _messages(ds)


@pytest.mark.parametrize("text", [
    # Excel: trailing separators of formatted empty columns, CRLF, a row of separators
    "case_id,image,annotator,mask,,\r\na,imgs/a.png,r1,masks/a_r1.png,,\r\n"
    "a,imgs/a.png,r2,masks/a_r2.png\r\nb,imgs/b.png,r1,masks/b_r1.png,,,\r\n,,,,,\r\n",
    # R's write.csv: every name quoted and a first column of row names without a name
    '"","case_id","image","annotator","mask"\n"1","a","imgs/a.png","r1","masks/a_r1.png"\n'
    '"2","a","imgs/a.png","r2","masks/a_r2.png"\n"3","b","imgs/b.png","r1","masks/b_r1.png"\n',
], ids=["excel", "r"])
def test_manifest_with_unnamed_columns_from_excel_or_r(tmp_path, text):
    root = _manifest_files(tmp_path / "m")
    (root / "manifest.csv").write_bytes(text.encode("utf-8"))
    assert detect_layout(root) == "manifest"
    ds = open_dataset(root)
    assert ds.ids == ["a", "b"] and ds["a"].mask_ids == ["r1", "r2"]
    assert not ds.problems and ds.entry("a").meta == {}


def test_manifest_row_with_a_value_in_an_unnamed_column_is_skipped(tmp_path):
    root = _manifest_files(tmp_path / "m")
    (root / "manifest.csv").write_text(
        "case_id,image,annotator,mask\na,imgs/a.png,r1,masks/a_r1.png\n"
        "a,imgs/a.png,r2,masks/a_r2.png,stray\n", encoding="utf-8")
    ds = open_dataset(root)
    assert ds["a"].mask_ids == ["r1"] and _has_problem(ds, "line 3", "5 fields")


def test_manifest_bad_encoding(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_bytes("case_id,image,annotator,mask\nd\xe9j\xe0,x.png,a,y.png\n".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"m\.csv: not UTF-8 text"):
        open_dataset(csv)


def test_manifest_stray_quote(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text('case_id,image,annotator,mask\na,"x.png"oops,r1,y.png\n')
    with pytest.raises(DatasetError, match=r"m\.csv: line 2: malformed CSV"):
        open_dataset(csv)
    csv.write_text('case_id,image,annotator,mask\na,"x.png,r1,y.png\n')
    with pytest.raises(DatasetError, match=r"m\.csv: line \d+: malformed CSV"):
        open_dataset(csv)


def test_manifest_bad_rows_reported_rest_loads(tmp_path):
    root = _manifest_files(tmp_path / "m")
    _img(root / "imgs" / "small.png", shape=(5, 5))
    (root / "manifest.csv").write_text(
        "case_id,image,annotator,mask,age,benign_malignant\n"
        "a,imgs/a.png,r1,masks/a_r1.png,50,benign\n"
        "a,imgs/a.png,r2,masks/a_r2.png,,\n"
        "a,imgs/a.png,r2,masks/a_r2.png,,\n"  # duplicate row
        "a,imgs/a.png,r3,masks/gone.png,,\n"  # missing mask file
        "b,imgs/b.png,r1,masks/b_r1.png,250,purple\n"  # out-of-range / bad metadata
        "c,imgs/missing.png,r1,masks/a_r1.png,,\n"  # missing image
        "d,imgs/a.png,,,,\n"  # image without masks
        "../escape,imgs/a.png,r1,masks/a_r1.png,,\n"
        "e,imgs/small.png,r1,masks/a_r1.png,,\n"  # shape mismatch at load time
        "f,imgs/a.png,r1\n",  # wrong number of fields
        encoding="utf-8",
    )
    ds = open_dataset(root)
    assert ds.ids == ["a", "b", "e"]
    assert ds["a"].mask_ids == ["r1", "r2"]
    assert ds["b"].meta.get("age") is None and "benign_malignant" not in ds["b"].meta
    assert _has_problem(ds, "manifest.csv", "line 4", "duplicate row")
    assert _has_problem(ds, "manifest.csv", "line 5", "gone.png", "missing mask file")
    assert _has_problem(ds, "manifest.csv", "line 6", "'age'", "out of range")
    assert _has_problem(ds, "manifest.csv", "line 6", "'benign_malignant'", "purple")
    assert _has_problem(ds, "manifest.csv", "line 7", "missing.png", "missing image")
    assert _has_problem(ds, "imgs/a.png", "image without masks")
    assert _has_problem(ds, "'../escape'", "escape")
    assert _has_problem(ds, "manifest.csv", "line 11", "fields")
    with pytest.raises(ShapeMismatchError, match=r"a_r1\.png"):
        ds.load("e")
    assert [c.case_id for c in ds] == ["a", "b"]


def test_manifest_one_mask_file_for_two_annotators_is_reported(tmp_path):
    root = _manifest_files(tmp_path / "m")
    (root / "manifest.csv").write_text(
        "case_id,image,annotator,mask\na,imgs/a.png,r1,masks/a_r1.png\n"
        "a,imgs/a.png,r2,./masks/a_r1.png\na,imgs/a.png,r3,masks/a_r2.png\n"
        "b,imgs/b.png,r1,masks/a_r1.png\nb,imgs/b.png,r2,masks/b_r1.png\n", encoding="utf-8")
    ds = open_dataset(root)
    assert ds["a"].mask_ids == ["r1", "r2", "r3"] and ds["b"].mask_ids == ["r1", "r2"]
    msgs = _messages(ds)  # one, for case a (case b's r1 is another case's file: no pair)
    assert len(msgs) == 1 and all(s in msgs[0] for s in (
        "manifest.csv", "line 3", "a_r1.png", "'r1'", "'r2'", "line 2", "case 'a'")), msgs


# --------------------------------------------------------------------------- IMA++
def _imapp(root, with_csv=True):
    _img(root / "images" / "ISIC_0000001.jpg")
    _img(root / "images" / "ISIC_0000002.JPG", seed=2)
    _img(root / "images" / "ISIC_0000003.png", seed=3)  # no masks
    names = [
        "ISIC_0000001_A04_T1_S2_aaa.png",
        "ISIC_0000001_A04_T1_S2_bbb.png",  # second mask by A04
        "ISIC_0000001_A06_T3_S1_ccc.png",
        "ISIC_0000001_ST_ST_ST_ST.png",
        "ISIC_0000001_MV_MV_MV_MV.png",
        "ISIC_0000002_A01_T2_S1_ddd.png",
        "ISIC_0000002_A02_T2_S1_eee.png",
        "ISIC_0000009_A01_T2_S1_fff.png",  # mask without an image
        "badname.png",
    ]
    for n in names:
        _mask(root / "masks" / n)
    if with_csv:
        rows = ["ISIC_id,img_filename,seg_filename,annotator,tool,skill_level,mskObjectID,mask_md5"]
        for n in names[:-1]:
            parts = n[:-4].split("_")
            iid = "_".join(parts[:2])
            rows.append(f"{iid},{iid}.JPG,{n},{parts[2]},{parts[3]},{parts[4]},{parts[5]},x")
        rows.append("ISIC_0000002,ISIC_0000002.JPG,ISIC_0000002_A03_T1_S1_ggg.png,A03,T1,S1,ggg,x")
        (root / "X_seg_metadata.csv").write_text("\n".join(rows) + "\n")
        (root / "X_img_metadata.csv").write_text(
            "isic_id,benign_malignant,diagnosis_1,patient_id,lesion_id,age_approx\n"
            "ISIC_0000001,malignant,Malignant,IP_1,IL_1,55\n"
            "ISIC_0000002,benign,Benign,IP_2,,-3\n"
        )
    return root


@pytest.mark.parametrize("with_csv", [True, False])
def test_imapp_layout(tmp_path, with_csv):
    root = _imapp(tmp_path / "imapp", with_csv)
    assert detect_layout(root) == "imapp"
    ds = open_dataset(root)
    assert ds.ids == ["ISIC_0000001", "ISIC_0000002"]
    c1 = ds["ISIC_0000001"]
    assert c1.mask_ids == ["A04", "A04#2", "A06"]
    assert c1.raters == {"A04": "A04", "A04#2": "A04", "A06": "A06"}
    assert set(c1.meta["consensus"]) == {"ST", "MV"}
    assert c1.meta["consensus"]["ST"].endswith("ISIC_0000001_ST_ST_ST_ST.png")
    assert c1.meta["tools"]["A06"] == "T3" and c1.meta["skill_levels"]["A04"] == "S2"
    assert _has_problem(ds, "ISIC_0000009_A01_T2_S1_fff.png", "mask without an image")
    assert _has_problem(ds, "ISIC_0000003.png", "image without masks")
    assert _has_problem(ds, "badname.png", "does not follow") or with_csv is True
    if with_csv:
        assert c1.meta["benign_malignant"] == "malignant" and c1.group == "IL_1"
        c2 = ds["ISIC_0000002"]
        assert c2.group == "IP_2" and "age_approx" not in c2.meta
        assert _has_problem(ds, "X_img_metadata.csv", "line 3", "age_approx", "out of range")
        assert _has_problem(ds, "X_seg_metadata.csv", "ISIC_0000002_A03_T1_S1_ggg.png", "missing file")
        md = ds.metadata()
        assert list(md["benign_malignant"]) == ["malignant", "benign"]
        assert list(md["n_annotators"]) == [2, 2] and list(md["n_masks"]) == [3, 2]
    else:
        assert c1.group == "ISIC_0000001"


def test_imapp_seg_csv_missing_column_falls_back(tmp_path):
    root = _imapp(tmp_path / "imapp", with_csv=False)
    (root / "Y_seg_metadata.csv").write_text("ISIC_id,img_filename\nISIC_0000001,ISIC_0000001.JPG\n")
    ds = open_dataset(root)
    assert _has_problem(ds, "Y_seg_metadata.csv", "missing required column", "seg_filename")
    assert ds.ids == ["ISIC_0000001", "ISIC_0000002"]


# --------------------------------------------------------------------------- LIDC
def _lidc(root, patients=("P1", "P2")):
    for p in patients:
        for s in range(3):
            _img(root / p / "nodule-0" / "images" / f"slice-{s}.png", rgb=False, seed=s)
            for r in range(4):
                if s == 2 and r == 3:
                    continue  # reader 3 has no file for slice 2
                box = (2, 8, 3, 10) if r else (0, 0, 0, 0)  # reader 0 marked nothing
                _mask(root / p / "nodule-0" / f"mask-{r}" / f"slice-{s}.png", box=box)
    return root


@pytest.mark.parametrize("outer", [False, True])
def test_lidc_layout_synthetic_tree(tmp_path, outer):
    inner = _lidc(tmp_path / "LIDC-IDRI-slices")
    _mask(inner / "P1" / "nodule-0" / "mask-1" / "slice-9.png")  # mask without image
    root = tmp_path if outer else inner
    assert detect_layout(root) == "lidc"
    ds = open_dataset(root)
    assert ds.layout == "lidc" and len(ds) == 6
    assert ds.ids[:3] == ["P1/nodule-0/slice-0", "P1/nodule-0/slice-1", "P1/nodule-0/slice-2"]
    c = ds["P1/nodule-0/slice-0"]
    assert c.mask_ids == ["r0", "r1", "r2", "r3"] and c.group == "P1"
    assert c.meta == {"patient": "P1", "nodule": "nodule-0", "slice": 0}
    assert not c.masks["r0"].any() and c.masks["r1"].any()  # empty mask is a valid mask
    assert c.image.ndim == 2
    assert ds["P1/nodule-0/slice-2"].mask_ids == ["r0", "r1", "r2"]
    assert _has_problem(ds, "slice-2.png", "no mask file for reader(s) r3")
    assert _has_problem(ds, "mask-1/slice-9.png", "mask without an image")


@pytest.mark.parametrize("level", ["patient", "nodule"])
@pytest.mark.parametrize("layout", [None, "lidc"])
def test_lidc_one_patient_or_one_nodule_folder(tmp_path, level, layout):
    root = _lidc(tmp_path / "LIDC-IDRI-slices", patients=("LIDC-IDRI-0001", "LIDC-IDRI-0002"))
    _img(root / "LIDC-IDRI-0001" / "nodule-1" / "images" / "slice-0.png", rgb=False)
    _mask(root / "LIDC-IDRI-0001" / "nodule-1" / "mask-0" / "slice-0.png")
    given = root / "LIDC-IDRI-0001" / ("nodule-1" if level == "nodule" else "")
    if layout is None:
        assert detect_layout(given) == "lidc"
    ds = open_dataset(given, layout=layout)
    whole = open_dataset(root)
    prefix = "LIDC-IDRI-0001/" + ("nodule-1/" if level == "nodule" else "")
    assert ds.ids == [i for i in whole.ids if i.startswith(prefix)] and len(ds) == (1 if level == "nodule" else 4)
    assert not [p for p in ds.problems if "'images'" in str(p)], _messages(ds)
    c = ds[ds.ids[-1]]
    assert c.group == "LIDC-IDRI-0001" and c.meta["patient"] == "LIDC-IDRI-0001"
    nodules = open_dataset(given, layout=layout, unit="nodule")
    assert nodules.ids == (["LIDC-IDRI-0001/nodule-1"] if level == "nodule"
                           else ["LIDC-IDRI-0001/nodule-0", "LIDC-IDRI-0001/nodule-1"])


def test_lidc_real(lidc_root):
    ds = open_dataset(lidc_root)
    assert ds.layout == "lidc" and len(ds) > 10 and not ds.problems
    e = ds.entries[0]
    assert e.mask_ids == ["r0", "r1", "r2", "r3"]
    assert e.case_id.count("/") == 2 and e.case_id.split("/")[0] == e.group
    case = ds[e.case_id]
    assert case.image.shape == (128, 128) and case.image.dtype == np.uint8
    assert all(m.shape == (128, 128) and m.dtype == bool for m in case.masks.values())
    md = ds.metadata()
    assert set(md["patient"]) == {en.group for en in ds.entries}
    assert (md["n_annotators"] == 4).all()


def test_lidc_index_never_decodes(lidc_root, monkeypatch):
    import napari_iaa.data.io as dio

    def boom(*a, **k):
        raise AssertionError("pixels decoded while indexing")

    monkeypatch.setattr(dio, "_decode", boom)
    t0 = time.perf_counter()
    ds = open_dataset(lidc_root)
    ds.metadata()
    ds.validate()
    assert len(ds) > 0 and time.perf_counter() - t0 < 30


def test_originals_unchanged_by_reading(tmp_path):
    root = _imapp(tmp_path / "imapp")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    ds = open_dataset(root)
    list(ds)
    ds.validate(check_pixels=True)
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(p for p in root.rglob("*") if p.is_file())}
    assert before == after


def test_imapp_metadata_bad_encoding_is_reported(tmp_path):
    root = _imapp(tmp_path / "imapp")
    (root / "X_img_metadata.csv").write_bytes("isic_id,benign_malignant\nISIC_0000001,b\xe9nin\n".encode("latin-1"))
    ds = open_dataset(root)
    assert _has_problem(ds, "X_img_metadata.csv", "not UTF-8", "metadata ignored")
    assert ds.ids == ["ISIC_0000001", "ISIC_0000002"] and "benign_malignant" not in ds["ISIC_0000001"].meta


def test_imapp_with_published_tables(tmp_path, imapp_metadata_dir):
    """A few images of the real IMA++ multi-annotator subset, with the published CSVs."""
    import csv as _csv
    import shutil

    root = tmp_path / "imapp"
    root.mkdir()
    for name in ("IMAplusplus_multiannotator_subset_seg_metadata.csv", "IMAplusplus_img_metadata.csv"):
        shutil.copy(imapp_metadata_dir / name, root / name)
    with open(root / "IMAplusplus_multiannotator_subset_seg_metadata.csv", newline="") as fh:
        rows = list(_csv.DictReader(fh))
    ids = list(dict.fromkeys(r["ISIC_id"] for r in rows))[:3]
    for k, iid in enumerate(ids):
        _img(root / "images" / f"{iid}.jpg", seed=k)
        for r in rows:
            if r["ISIC_id"] == iid:
                _mask(root / "masks" / r["seg_filename"])
    ds = open_dataset(root)
    assert ds.layout == "imapp" and ds.ids == sorted(ids)
    n_rows = len(rows)
    n_listed = sum(1 for p in ds.problems if "missing file masks/" in p.message)
    assert n_listed == 20 and _has_problem(ds, "mask files referenced by the CSV are missing in total")
    for e in ds.entries:
        expected = [r for r in rows if r["ISIC_id"] == e.case_id and r["annotator"] not in ("ST", "MV")]
        assert len(e.mask_paths) == len(expected)
        assert set(e.raters.values()) == {r["annotator"] for r in expected}
        assert e.meta["benign_malignant"] in ("benign", "malignant")
    assert n_rows > 1000
