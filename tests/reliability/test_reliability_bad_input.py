"""Bad input through the public entry points: ``napari-iaa score`` and ``open_dataset``.

One "zoo" data set (folder-per-case layout) holds good cases, every mask encoding, the
degenerate masks and every kind of broken file; a manifest data set covers the CSV
problems. Each bad thing must give a message naming the file, and every other case must
still be read and scored with the right value.
"""

from __future__ import annotations

import math
import resource
import subprocess
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import (
    PYTHON,
    case_folder,
    child_env,
    disk,
    read_score_csv,
    truncated_png,
    write_png,
)

from napari_iaa.agreement import dice
from napari_iaa.data import MaskEncodingWarning, open_dataset
from napari_iaa.errors import DatasetError, IAAError

SHAPE = (48, 48)
D1 = disk(SHAPE, 22, 22, 12)
D2 = disk(SHAPE, 25, 24, 11)
D3 = disk(SHAPE, 20, 26, 13)
DICE_12 = float(dice(D1, D2))
IMAGE = (np.arange(48 * 48).reshape(SHAPE) % 251).astype(np.uint8)


def _rgb(mask: np.ndarray, colour=(255, 255, 255)) -> np.ndarray:
    out = np.zeros((*mask.shape, 3), np.uint8)
    out[mask] = colour
    return out


def _rgba(mask: np.ndarray) -> np.ndarray:
    out = np.full((*mask.shape, 4), 128, np.uint8)  # constant colour, alpha is the mask
    out[..., 3] = np.where(mask, 255, 0)
    return out


def _labels(mask: np.ndarray) -> np.ndarray:
    out = np.zeros(mask.shape, np.uint8)
    out[mask] = 1
    out[mask & (np.arange(mask.shape[1])[None, :] > 22)] = 2
    out[mask & (np.arange(mask.shape[0])[:, None] > 26)] = 7
    return out


def _zero_bytes(p: Path) -> None:
    p.write_bytes(b"")


def _text(p: Path) -> None:
    p.write_text("this is not an image, only text\n")


def _one_pixel(y: int, x: int) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[y, x] = True
    return m


# case -> (masks, expected iaa with empty="zero", n_annotators, n_masks)
GOOD = {
    "good": ({"A1": D1, "A2": D2, "A3": D3}, float(np.mean([dice(D1, D2), dice(D1, D3), dice(D2, D3)])), 3, 3),
    "enc_bool": ({"A1.npy": D1, "A2.npy": D2}, DICE_12, 2, 2),
    "enc_01": ({"A1": D1.astype(np.uint8), "A2": D2.astype(np.uint8)}, DICE_12, 2, 2),
    "enc_0255": ({"A1": D1.astype(np.uint8) * 255, "A2": D2.astype(np.uint8) * 255}, DICE_12, 2, 2),
    "enc_uint16": ({"A1": D1.astype(np.uint16) * 1000, "A2": D2.astype(np.uint16) * 65535}, DICE_12, 2, 2),
    "enc_float": ({"A1.npy": D1.astype(np.float32), "A2.npy": D2.astype(np.float64) * 0.5}, DICE_12, 2, 2),
    "enc_rgb_grey": ({"A1": _rgb(D1), "A2": _rgb(D2)}, DICE_12, 2, 2),
    "enc_rgb_colour": ({"A1": _rgb(D1, (255, 0, 0)), "A2": _rgb(D2, (0, 80, 200))}, DICE_12, 2, 2),
    "enc_rgba": ({"A1": _rgba(D1), "A2": _rgba(D2)}, DICE_12, 2, 2),
    "enc_labels": ({"A1": _labels(D1), "A2": _labels(D2)}, DICE_12, 2, 2),
    "empty_masks": ({"A1": np.zeros(SHAPE, bool), "A2": np.zeros(SHAPE, bool)}, 0.0, 2, 2),
    "full_masks": ({"A1": np.ones(SHAPE, bool), "A2": np.ones(SHAPE, bool)}, 1.0, 2, 2),
    "one_pixel_same": ({"A1": _one_pixel(3, 4), "A2": _one_pixel(3, 4)}, 1.0, 2, 2),
    "one_pixel_apart": ({"A1": _one_pixel(3, 4), "A2": _one_pixel(40, 40)}, 0.0, 2, 2),
    "empty_vs_full": ({"A1": np.zeros(SHAPE, bool), "A2": np.ones(SHAPE, bool)}, 0.0, 2, 2),
    "single_annotator": ({"A1": D1}, math.nan, 1, 1),
    "same_rater_twice": ({"A1": D1, "A1#2": D2}, DICE_12, 1, 2),
}

# case -> (masks, file that must be named, words one of which the message must contain)
BAD = {
    "bad_shape": ({"A1": D1, "A2": np.zeros((40, 48), bool), "A3": D3}, "A2.png", ("does not match",)),
    "bad_zero_byte": ({"A1": D1, "A2": _zero_bytes, "A3": D3}, "A2.png", ("empty file", "0 bytes")),
    "bad_truncated": ({"A1": D1, "A2": truncated_png, "A3": D3}, "A2.png", ("truncated", "corrupt")),
    "bad_text_png": ({"A1": D1, "A2": _text, "A3": D3}, "A2.png", ("not an image",)),
}
WARNED = {"enc_rgb_colour": "colour mask", "enc_labels": "not two-valued"}


def _build_zoo(root: Path, huge_png) -> Path:
    for case, (masks, *_rest) in GOOD.items():
        case_folder(root, case, IMAGE, masks)
    for case, (masks, *_rest) in BAD.items():
        case_folder(root, case, IMAGE, masks)
    # a broken image (masks fine) and an image of 20000 x 20000 pixels
    case_folder(root, "bad_image_zero", IMAGE, {"A1": D1, "A2": D2})
    (root / "bad_image_zero" / "image.png").write_bytes(b"")
    case_folder(root, "huge_image", IMAGE, {"A1": D1, "A2": D2})
    huge_png(root / "huge_image" / "image.png")
    return root


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, huge_png) -> Path:
    return _build_zoo(tmp_path_factory.mktemp("zoo") / "zoo", huge_png)


@pytest.fixture(scope="module")
def zoo_scored(zoo, tmp_path_factory):
    """``napari-iaa score zoo --out``: (exit code, table, stderr lines)."""
    import contextlib
    import io

    from napari_iaa.cli import main

    out = tmp_path_factory.mktemp("zoo_out") / "scores.csv"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["score", str(zoo), "--out", str(out), "--quiet"])
    return code, read_score_csv(out) if out.is_file() else None, err.getvalue().splitlines()


ALL_CASES = sorted([*GOOD, *BAD, "bad_image_zero", "huge_image"])


def test_zoo_is_indexed_completely(zoo):
    ds = open_dataset(zoo)
    assert ds.layout == "folders"
    assert sorted(ds.ids) == ALL_CASES  # indexing never decodes, so nothing is lost yet
    assert ds.problems == []


@pytest.mark.parametrize("case", sorted(GOOD))
def test_cli_scores_every_encoding_and_degenerate_mask(zoo_scored, case):
    code, table, _err = zoo_scored
    assert code == 0
    masks, expected, n_annotators, n_masks = GOOD[case]
    row = table.set_index("case_id").loc[case]
    assert row["n_annotators"] == n_annotators and row["n_masks"] == n_masks
    if math.isnan(expected):
        assert math.isnan(row["iaa"]) and row["n_pairs"] == 0
    else:
        assert row["iaa"] == pytest.approx(expected, abs=1e-9)  # CSV keeps 10 digits


@pytest.mark.parametrize("case", sorted(WARNED))
def test_cli_warns_about_unusual_encodings_naming_the_file(zoo_scored, case):
    _code, _table, err = zoo_scored
    hits = [line for line in err if f"{case}/A1.png" in line or f"{case}/A2.png" in line]
    assert hits and all(WARNED[case] in h for h in hits), err


@pytest.mark.parametrize("case", sorted(BAD))
def test_cli_reports_bad_mask_naming_file_rest_scored(zoo_scored, zoo, case):
    code, table, err = zoo_scored
    _masks, fname, words = BAD[case]
    assert code == 0
    assert case not in set(table["case_id"])
    path = str(zoo / case / fname)
    lines = [line for line in err if path in line]
    assert lines, f"no message names {path}: {err}"
    assert any(w in lines[0] for w in words), lines[0]
    assert all(line.startswith("napari-iaa: warning: ") for line in err)  # one line each, no traceback
    assert set(GOOD) <= set(table["case_id"])


def test_cli_reports_bad_image_and_huge_image(zoo_scored, zoo):
    _code, table, err = zoo_scored
    zero = [line for line in err if str(zoo / "bad_image_zero" / "image.png") in line]
    assert zero and "empty file" in zero[0]
    huge = [line for line in err if str(zoo / "huge_image" / "image.png") in line]
    assert huge and ("too large" in huge[0] or "exceeds" in huge[0]), huge
    assert not {"bad_image_zero", "huge_image"} & set(table["case_id"])
    assert len(table) == len(GOOD)


def test_cli_same_rater_pairs_and_empty_rule_switches(zoo, tmp_path, cli):
    out = tmp_path / "s.csv"
    code, _o, _e = cli("score", zoo, "--out", out, "--no-same-rater-pairs", "--empty-pair", "one", "-q")
    assert code == 0
    t = read_score_csv(out).set_index("case_id")
    assert math.isnan(t.loc["same_rater_twice", "iaa"])  # its only pair is by one annotator
    assert t.loc["empty_masks", "iaa"] == 1.0  # two empty masks agree under "one"
    assert t.loc["empty_vs_full", "iaa"] == 0.0  # one empty mask never agrees


@pytest.mark.parametrize("case", sorted(GOOD))
def test_open_dataset_loads_good_cases_exactly(zoo, case):
    ds = open_dataset(zoo)
    masks, _expected, _na, n_masks = GOOD[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MaskEncodingWarning)
        c = ds.load(case)
    assert c.n_masks == n_masks and c.image.shape[:2] == SHAPE
    for k, (name, m) in enumerate(masks.items()):
        mid = name.rsplit(".", 1)[0] if name.endswith(".npy") else name
        ref = (D1, D2)[k] if case.startswith("enc_") else np.asarray(m) != 0
        np.testing.assert_array_equal(c.masks[mid], ref)


@pytest.mark.parametrize("case", sorted(BAD))
def test_open_dataset_bad_mask_strict_and_lenient(zoo, case):
    ds = open_dataset(zoo)
    _masks, fname, words = BAD[case]
    with pytest.raises(IAAError) as info:
        ds.load(case)
    assert str(zoo / case / fname) in str(info.value)
    assert any(w in str(info.value) for w in words)
    c = ds.load(case, strict=False)  # the two good masks still load
    assert sorted(c.masks) == ["A1", "A3"]
    assert c.meta["skipped_masks"] == [str(zoo / case / fname)]
    assert any(str(p.path).endswith(fname) and p.case_id == case for p in ds.problems)


def test_iterating_the_zoo_skips_and_records_bad_cases(zoo):
    ds = open_dataset(zoo)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MaskEncodingWarning)
        seen = [c.case_id for c in ds]
    assert sorted(seen) == sorted(GOOD)
    named = {p.case_id for p in ds.problems}
    assert named == {*BAD, "bad_image_zero", "huge_image"}
    assert all(p.path is not None and Path(p.path).exists() for p in ds.problems)


# ----------------------------------------------------------------------------- memory
_MEMORY_CHILD = textwrap.dedent(
    """
    import contextlib, io, json, resource, sys, tracemalloc
    from napari_iaa.cli import main
    good, huge, out = sys.argv[1:4]
    sink = io.StringIO()
    def run(path):
        with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
            return main(["score", path, "--out", out, "-q"])
    assert run(good) == 0              # warm up: imports, first decode
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    code = run(huge)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from napari_iaa.data import open_dataset
    errors = []
    ds = open_dataset(huge)
    for cid in ds.ids:
        try:
            ds.load(cid)
        except Exception as exc:
            errors.append(type(exc).__name__ + ": " + str(exc))
    final = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"code": code, "base_kb": base, "peak_kb": peak, "final_kb": final,
                      "traced": traced, "errors": errors, "messages": sink.getvalue()}))
    """
)


def test_huge_image_refused_with_bounded_memory(tmp_path, huge_png):
    """A 20000 x 20000 image (400 MB decoded) and 1-bit 20000 x 20000 masks are refused
    from their headers: peak RSS grows by far less than one decoded image."""
    import json

    good = tmp_path / "good"
    case_folder(good, "c1", IMAGE, {"A1": D1, "A2": D2})
    huge = tmp_path / "huge"
    case_folder(huge, "ok", IMAGE, {"A1": D1, "A2": D2})
    d = huge / "big"
    d.mkdir()
    huge_png(d / "image.png")
    huge_png(d / "A1.png", bit_depth=1)
    huge_png(d / "A2.png", bit_depth=1)
    res = subprocess.run(
        [PYTHON, "-c", _MEMORY_CHILD, str(good), str(huge), str(tmp_path / "o.csv")],
        capture_output=True, text=True, env=child_env(), timeout=120,
    )
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["code"] == 0  # the good case of the same data set is still scored
    assert str(d / "image.png") in r["messages"]
    assert len(r["errors"]) == 1 and str(d / "image.png") in r["errors"][0]
    assert "ImageReadError" in r["errors"][0]
    growth_mb = (max(r["peak_kb"], r["final_kb"]) - r["base_kb"]) / 1024
    assert growth_mb < 64, f"peak RSS grew by {growth_mb:.0f} MB"
    assert r["traced"] < 64 * 2**20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0  # platform reports RSS


# ----------------------------------------------------------------------------- manifest
def _manifest_set(root: Path) -> Path:
    """A manifest data set with non-ASCII/space paths, a missing file, an escaping id and
    NaN / out-of-range metadata; two good cases."""
    img_dir = root / "bilder mit läuten"
    write_png(img_dir / "ünï cödé 1.png", IMAGE)
    write_png(img_dir / "two.png", IMAGE)
    for ann, m in (("Ann Ö", D1), ("B", D2), ("C", D3)):
        write_png(root / "masken" / f"{ann} 1.png", m)
        write_png(root / "masken" / f"{ann} 2.png", m)
    rows = [
        "case_id,image,annotator,mask,age_approx,clin_size_long_diam_mm,diagnosis",
        "fall ü 1,bilder mit läuten/ünï cödé 1.png,Ann Ö,masken/Ann Ö 1.png,NaN,12,nevus",
        "fall ü 1,bilder mit läuten/ünï cödé 1.png,B,masken/B 1.png,,,",
        "fall ü 1,bilder mit läuten/ünï cödé 1.png,C,masken/gone.png,,,",  # missing mask file
        "two,bilder mit läuten/two.png,Ann Ö,masken/Ann Ö 2.png,300,inf,melanoma",
        "two,bilder mit läuten/two.png,B,masken/B 2.png,,,",
        "../escape,bilder mit läuten/two.png,B,masken/B 2.png,,,",
        "missing_image,bilder mit läuten/nowhere.png,B,masken/B 2.png,,,",
    ]
    (root / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root / "manifest.csv"


@pytest.fixture
def manifest(tmp_path) -> Path:
    return _manifest_set(tmp_path / "dätä sét")


def test_manifest_problems_named_rest_scored(manifest, tmp_path, cli):
    out = tmp_path / "out dir ü" / "scores.csv"
    out.parent.mkdir()
    code, _o, err = cli("score", manifest, "--out", out, "-q")
    assert code == 0, err
    t = read_score_csv(out).set_index("case_id")
    assert sorted(t.index) == ["fall ü 1", "two"]
    assert t.loc["fall ü 1", "iaa"] == pytest.approx(DICE_12)  # C's missing mask left out
    assert t.loc["two", "iaa"] == pytest.approx(DICE_12)
    lines = err.splitlines()

    def named(*words):
        return [x for x in lines if str(manifest) in x and all(w in x for w in words)]

    assert named("line 4", "gone.png", "missing mask file")
    assert named("nowhere.png", "missing image")
    assert [x for x in lines if "../escape" in x and "escape" in x]
    assert named("line 5", "age_approx", "out of range")
    assert named("line 5", "clin_size_long_diam_mm", "not a finite number")
    # NaN is a missing value: left out of the metadata, the case still scored
    assert "age_approx" not in t.columns  # NaN (fall ü 1) and 300 (two) both left out
    assert t.loc["fall ü 1", "clin_size_long_diam_mm"] == 12
    assert math.isnan(t.loc["two", "clin_size_long_diam_mm"])  # inf left out
    assert t.loc["two", "diagnosis"] == "melanoma"
    # nothing was written outside the output folder (the escaping id never became a path)
    assert sorted(p.name for p in out.parent.iterdir()) == ["scores.csv"]
    assert not (manifest.parent.parent / "escape").exists()


def test_manifest_escaping_id_is_dropped_by_open_dataset(manifest):
    ds = open_dataset(manifest)
    assert sorted(ds.ids) == ["fall ü 1", "two"]
    msgs = [str(p) for p in ds.problems]
    assert any("'../escape'" in m and "escape" in m for m in msgs)
    case = ds.load("fall ü 1")
    assert case.raters == {"Ann Ö": "Ann Ö", "B": "B"}
    assert "age_approx" not in case.meta and case.meta["diagnosis"] == "nevus"


def _rewrite(manifest: Path, data: bytes) -> Path:
    manifest.write_bytes(data)
    return manifest


@pytest.mark.parametrize(
    "kind, words",
    [
        ("missing_columns", ("missing required column", "'mask'")),
        ("latin1", ("not UTF-8",)),
        ("utf16", ("not UTF-8",)),
        ("stray_quote", ("malformed CSV", "stray quote")),
        ("empty", ("empty CSV",)),
    ],
)
def test_whole_csv_problems_exit_2_with_one_line_naming_csv(manifest, cli, kind, words):
    text = manifest.read_text(encoding="utf-8")
    data = {
        "missing_columns": "case_id,image,annotator\nfall,bilder mit läuten/two.png,B\n".encode(),
        "latin1": text.encode("latin-1"),
        "utf16": text.encode("utf-16"),
        "stray_quote": text.replace("two,bilder", 'two,"bilder', 1).encode(),
        "empty": b"",
    }[kind]
    _rewrite(manifest, data)
    code, out, err = cli("score", manifest)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("napari-iaa: error: ")
    assert str(manifest) in lines[0]
    assert all(w in lines[0] for w in words), lines[0]
    with pytest.raises(DatasetError, match="manifest.csv"):
        open_dataset(manifest, layout="manifest")


def test_rows_with_wrong_field_count_are_skipped_not_fatal(manifest, cli, tmp_path):
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text + "extra,too,many,fields,here,and,more,again\n", encoding="utf-8")
    out = tmp_path / "s.csv"
    code, _o, err = cli("score", manifest, "--out", out, "-q")
    assert code == 0
    assert any(str(manifest) in x and "line 9" in x and "fields" in x for x in err.splitlines())
    assert len(read_score_csv(out)) == 2


def test_cohort_with_nan_and_unknown_labels(tmp_path, cli):
    """NaN IAA values and labels missing for some cases are counted, not fatal."""
    iaa = tmp_path / "iaa.csv"
    rows = ["case_id,iaa"] + [f"c{i},{0.5 + 0.04 * (i % 10)}" for i in range(20)] + ["c20,nan", "c21,"]
    iaa.write_text("\n".join(rows) + "\n")
    labels = tmp_path / "labels.csv"
    lab = ["case_id,benign_malignant"] + [f"c{i},{'malignant' if i % 2 else 'benign'}" for i in range(18)]
    lab += ["c20,benign", "c21,malignant", "c19,"]
    labels.write_text("\n".join(lab) + "\n")
    code, out, err = cli("cohort", iaa, "--labels", labels, "--by", "benign_malignant", "--out", tmp_path / "co")
    assert code == 0, err
    import json

    res = json.loads((tmp_path / "co" / "cohort.json").read_text())
    assert res["join"]["n_joined"] == 21 and res["join"]["n_missing"] == 3
    assert res["join"]["n_unmatched"] == 1
