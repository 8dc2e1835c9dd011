"""The ``napari-iaa`` command line: score, cohort, synth, view.

IAA values are checked against an independent, straightforward computation written here
(files read with PIL, plain loops over pairs, IMA++ rule: a pair with an empty mask scores 0).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from napari_iaa.cli import display_problem, main, read_cohort_table

CONSENSUS = {"ST", "MV"}


# ------------------------------------------------------------------ independent reference


def _read_bool(path: Path) -> np.ndarray:
    a = np.asarray(Image.open(path))
    if a.ndim == 3:
        a = a[..., 0]
    return a != 0


def _ref_iaa(masks: list[np.ndarray], empty: str = "zero") -> float:
    """Mean Dice over unordered pairs, written out the long way."""
    vals = []
    for a, b in combinations(masks, 2):
        sa, sb = int(a.sum()), int(b.sum())
        if sa == 0 and sb == 0:
            if empty == "ignore":
                continue
            vals.append(1.0 if empty == "one" else 0.0)
            continue
        inter = 0
        for x, y in zip(a.ravel().tolist(), b.ravel().tolist()):
            inter += x and y
        vals.append(2.0 * inter / (sa + sb))
    return sum(vals) / len(vals) if vals else math.nan


def _ref_lidc(root: Path) -> dict[str, float]:
    out = {}
    for img in sorted(root.glob("*/*/images/*.png")):
        nodule = img.parent.parent
        masks = [_read_bool(d / img.name) for d in sorted(nodule.glob("mask-*")) if (d / img.name).is_file()]
        cid = f"{nodule.parent.name}/{nodule.name}/{img.stem}"
        out[cid] = _ref_iaa(masks)
    return out


def _ref_imapp(root: Path) -> dict[str, float]:
    groups: dict[str, list[np.ndarray]] = defaultdict(list)
    for m in sorted((root / "masks").glob("*.png")):
        parts = m.stem.split("_")
        if parts[-4] in CONSENSUS:
            continue
        groups["_".join(parts[:-4])].append(_read_bool(m))
    return {k: _ref_iaa(v) for k, v in groups.items()}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _write_png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.strip()]


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    from napari_iaa.data import generate_synthetic_dataset

    out = tmp_path_factory.mktemp("synth") / "set"
    generate_synthetic_dataset(out, n=6, seed=3, size=(48, 64))
    return out


@pytest.fixture()
def folders_dir(tmp_path) -> Path:
    """Hand-made folder-per-case set with known answers.

    c1: A 4x4 square, B the same square shifted by one row, C empty.
    c2: A and B empty, C 2x2 square.
    c3: A, A#2 (same annotator, identical), B disjoint from A.
    """
    root = tmp_path / "folders"
    img = np.full((8, 8), 128, np.uint8)
    sq = np.zeros((8, 8), np.uint8)
    sq[1:5, 1:5] = 255
    empty = np.zeros((8, 8), np.uint8)
    small = np.zeros((8, 8), np.uint8)
    small[6:8, 6:8] = 255
    cases = {
        "c1": {"A": sq, "B": np.roll(sq, 1, axis=0), "C": empty},
        "c2": {"A": empty, "B": empty, "C": small},
        "c3": {"A": sq, "A#2": sq, "B": small},
    }
    for cid, masks in cases.items():
        _write_png(root / cid / "image.png", img)
        for mid, m in masks.items():
            _write_png(root / cid / f"{mid}.png", m)
    return root


# ------------------------------------------------------------------ basics


def test_no_command_and_help(capsys):
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "score" in capsys.readouterr().out


def test_unknown_option_is_one_line(capsys):
    assert main(["score", "x", "--empty-pair", "maybe"]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "--empty-pair" in lines[0] and "Traceback" not in lines[0]


# ------------------------------------------------------------------ score


def test_score_synthetic_matches_reference(synth_dir, tmp_path, capsys):
    out = tmp_path / "iaa.csv"
    assert main(["score", str(synth_dir), "--out", str(out)]) == 0
    rows = _read_csv(out)
    ref = _ref_imapp(synth_dir)
    assert len(rows) == len(ref) == 6
    for r in rows:
        assert float(r["iaa"]) == pytest.approx(ref[r["case_id"]], abs=1e-9)
        assert int(r["n_masks"]) == len(r["annotators"].split(";"))
        assert float(r["min_pair_dice"]) <= float(r["iaa"]) + 1e-12
        assert r["benign_malignant"] in {"benign", "malignant"}
    assert "scored 6 of 6 cases" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temp file


def test_score_lidc_matches_reference(lidc_root, tmp_path):
    out = tmp_path / "lidc.csv"
    assert main(["score", str(lidc_root), "--out", str(out), "--quiet"]) == 0
    rows = {r["case_id"]: r for r in _read_csv(out)}
    ref = _ref_lidc(lidc_root)
    assert set(rows) == set(ref) and len(ref) > 10
    for cid, value in ref.items():
        assert float(rows[cid]["iaa"]) == pytest.approx(value, abs=1e-9), cid
        assert rows[cid]["n_annotators"] == "4"
        assert rows[cid]["group"] == cid.split("/")[0]
    # on LIDC the empty-pair rule matters: 'one' can only raise the score
    out1 = tmp_path / "lidc1.csv"
    assert main(["score", str(lidc_root), "--out", str(out1), "--empty-pair", "one", "-q"]) == 0
    one = {r["case_id"]: float(r["iaa"]) for r in _read_csv(out1)}
    assert all(one[c] >= float(rows[c]["iaa"]) - 1e-12 for c in one)
    assert any(one[c] > float(rows[c]["iaa"]) for c in one)


def test_score_empty_pair_rules_and_same_rater(folders_dir, tmp_path):
    def run(*extra):
        out = tmp_path / f"o{len(list(tmp_path.iterdir()))}.csv"
        assert main(["score", str(folders_dir), "--out", str(out), "-q", *extra]) == 0
        return {r["case_id"]: r for r in _read_csv(out)}

    d_ab = 2 * 12 / 32  # 4x4 squares overlapping in 3 rows
    zero = run()
    assert float(zero["c1"]["iaa"]) == pytest.approx(d_ab / 3)
    assert float(zero["c2"]["iaa"]) == pytest.approx(0.0)
    assert float(zero["c1"]["min_pair_dice"]) == 0.0 and zero["c1"]["min_pair"].endswith(";C")
    assert float(zero["c1"]["iaa_std"]) == pytest.approx(np.std([d_ab, 0, 0], ddof=1))
    assert zero["c3"]["n_annotators"] == "2" and zero["c3"]["n_masks"] == "3"
    assert sorted(zero["c3"]["annotators"].split(";")) == ["A", "A#2", "B"]
    one = run("--empty-pair", "one")
    assert float(one["c2"]["iaa"]) == pytest.approx(1 / 3)
    assert float(one["c1"]["iaa"]) == pytest.approx(d_ab / 3)  # one empty mask still scores 0
    ign = run("--empty-pair", "ignore")
    assert float(ign["c2"]["iaa"]) == pytest.approx(0.0) and ign["c2"]["n_pairs"] == "2"
    assert float(run()["c3"]["iaa"]) == pytest.approx(1 / 3)  # (1 + 0 + 0) / 3
    nosame = run("--no-same-rater-pairs")
    assert float(nosame["c3"]["iaa"]) == pytest.approx(0.0) and nosame["c3"]["n_pairs"] == "2"


def test_score_workers_give_same_table(synth_dir, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["score", str(synth_dir), "-o", str(a), "-q"]) == 0
    assert main(["score", str(synth_dir), "-o", str(b), "-q", "--workers", "2"]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_score_to_stdout(folders_dir, capsys):
    assert main(["score", str(folders_dir), "-q"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("case_id,n_annotators") and len(out) == 4


def test_score_missing_path_exits_2_naming_it(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["score", str(missing)]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert lines[0].startswith("napari-iaa: error:") and str(missing) in lines[0]


def test_score_empty_folder_exits_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["score", str(tmp_path / "empty")]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "empty" in lines[0] and str(tmp_path / "empty") in lines[0]


def test_score_bad_case_is_reported_rest_scored(folders_dir, tmp_path, capsys):
    bad = folders_dir / "c2" / "B.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "o.csv"
    assert main(["score", str(folders_dir), "--out", str(out)]) == 0
    rows = _read_csv(out)
    assert [r["case_id"] for r in rows] == ["c1", "c3"]
    err = capsys.readouterr().err
    warn = [ln for ln in err.splitlines() if ln.startswith("napari-iaa: warning:")]
    assert any(str(bad) in ln for ln in warn)
    assert "1 problem(s)" in err and "Traceback" not in err


def test_score_mask_encoding_warning_is_reported(folders_dir, tmp_path, capsys):
    odd = np.zeros((8, 8), np.uint8)
    odd[1:5, 1:5] = 255
    odd[6, 6] = 7  # not two-valued: still foreground, but worth a warning
    _write_png(folders_dir / "c1" / "B.png", odd)
    out = tmp_path / "o.csv"
    assert main(["score", str(folders_dir), "--out", str(out)]) == 0
    assert len(_read_csv(out)) == 3
    warn = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("napari-iaa: warning:")]
    assert len(warn) == 1 and "c1" in warn[0] and "B.png" in warn[0]


def test_score_out_into_missing_folder_exits_2(folders_dir, tmp_path, capsys):
    target = tmp_path / "no" / "such" / "x.csv"
    assert main(["score", str(folders_dir), "--out", str(target)]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and str(target) in lines[0]
    assert not target.exists()


def _manifest_copy(folders_dir: Path) -> Path:
    """The folders set indexed by a hand-made manifest.csv beside it."""
    rows = ["case_id,image,annotator,mask"]
    for case in sorted(p.name for p in folders_dir.iterdir()):
        for m in ("A", "B"):
            rows.append(f"{case},{case}/image.png,{m},{case}/{m}.png")
    (folders_dir / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folders_dir / "manifest.csv"


def test_out_never_overwrites_the_data_sets_own_files(folders_dir, tmp_path, capsys):
    manifest = _manifest_copy(folders_dir)
    mask = folders_dir / "c1" / "A.png"
    before = {p: p.read_bytes() for p in (manifest, mask)}
    for argv in (["score", str(folders_dir.parent / "folders"), "--out", str(manifest)],
                 ["score", str(manifest), "--out", str(manifest)],
                 ["score", str(manifest), "--out", str(mask)],
                 ["review", str(manifest), "export", str(mask)],
                 ["predict", str(manifest), "--model", "none", "--out", str(manifest)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and "Traceback" not in err, err
        assert "elsewhere" in errors[0] or "never overwritten" in errors[0], err
    assert {p: p.read_bytes() for p in before} == before
    semi = folders_dir / "manifest.csv"  # the same manifest as European Excel saves it
    semi.write_text(manifest.read_text(encoding="utf-8").replace(",", ";"), encoding="utf-8")
    assert main(["score", str(folders_dir), "--out", str(semi)]) == 2
    assert "manifest" in capsys.readouterr().err
    out = folders_dir / "scores.csv"  # a table of its own beside the data: written, rewritten
    assert main(["score", str(manifest), "--out", str(out), "-q"]) == 0
    assert main(["score", str(manifest), "--out", str(out), "-q"]) == 0


def _csv_cells(text: str) -> list[list[str]]:
    return list(csv.reader(text.splitlines()))


@pytest.mark.parametrize("name", ["synthetic", "lidc"])
def test_score_old_columns_are_unchanged(name, capsys):
    """Issue 12 appended columns; every old column keeps its name, place and every byte."""
    root = Path(__file__).resolve().parents[1]
    assert main(["score", str(root / "sample_data" / name), "-q"]) == 0
    got = _csv_cells(capsys.readouterr().out)
    ref = _csv_cells((root / "tests" / "scoring_baseline" / f"{name}.csv").read_text())
    new = ["n_marked", "detection_agreement", "iaa_marked", "hd95_mean", "assd_mean"]
    assert got[0][:10] == ref[0][:10] and got[0][10:15] == new
    keep = [got[0].index(c) for c in ref[0]]
    assert [[row[k] for k in keep] for row in got] == ref


def _ref_hd95(a: np.ndarray, b: np.ndarray) -> float:
    """MONAI's HD95 written out: surface = mask minus its 4-connected erosion."""
    def surface(m):
        pad = np.pad(m, 1)
        inner = pad[1:-1, 1:-1] & pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
        return np.argwhere(m & ~inner).astype(float)

    sa, sb = surface(a), surface(b)
    d = np.sqrt(((sa[:, None] - sb[None]) ** 2).sum(-1))
    return max(np.percentile(d.min(1), 95), np.percentile(d.min(0), 95))


def test_score_detection_and_surface_columns(folders_dir, tmp_path):
    def run(*extra):
        out = tmp_path / f"o{len(list(tmp_path.iterdir()))}.csv"
        assert main(["score", str(folders_dir), "--out", str(out), "-q", *extra]) == 0
        return {r["case_id"]: r for r in _read_csv(out)}

    sq = np.zeros((8, 8), bool)
    sq[1:5, 1:5] = True
    small = np.zeros((8, 8), bool)
    small[6:8, 6:8] = True
    rows = run()
    c1, c2, c3 = rows["c1"], rows["c2"], rows["c3"]
    assert (c1["n_marked"], c2["n_marked"], c3["n_marked"]) == ("2", "1", "3")
    assert float(c1["detection_agreement"]) == pytest.approx(2 / 3)
    assert float(c1["iaa_marked"]) == pytest.approx(2 * 12 / 32)  # the empty C left out
    assert c2["iaa_marked"] == "" and c2["hd95_mean"] == "" and c2["assd_mean"] == ""
    assert float(c3["iaa_marked"]) == pytest.approx(1 / 3)
    assert float(c1["hd95_mean"]) == pytest.approx(_ref_hd95(sq, np.roll(sq, 1, axis=0)))
    assert float(c3["hd95_mean"]) == pytest.approx(2 * _ref_hd95(sq, small) / 3)  # (0 + d + d) / 3
    nosame = run("--no-same-rater-pairs")
    assert float(nosame["c3"]["iaa_marked"]) == 0.0
    assert float(nosame["c3"]["hd95_mean"]) == pytest.approx(_ref_hd95(sq, small))
    plain = run("--no-surface")
    assert "hd95_mean" not in plain["c1"] and "assd_mean" not in plain["c1"]
    assert plain["c1"]["iaa_marked"] == c1["iaa_marked"]


def test_unit_on_a_layout_without_units_is_one_line(folders_dir, capsys, monkeypatch):
    for argv in (["score", str(folders_dir), "--unit", "nodule"],
                 ["score", str(folders_dir), "--unit", "slice"]):
        assert main(argv) == 2
        lines = _error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and "--unit" in lines[0] and str(folders_dir) in lines[0]
        assert "folders layout" in lines[0] and "Traceback" not in lines[0]
    code = main(["predict", str(folders_dir), "--model", "m.json", "--out",
                 str(folders_dir / "p.csv"), "--unit", "nodule", "--no-progress"])
    lines = _error_lines(capsys.readouterr().err)
    assert code == 2 and len(lines) == 1 and "--unit nodule" in lines[0]
    monkeypatch.setenv("DISPLAY", ":99")  # past the display check, before any window
    assert main(["view", str(folders_dir), "--unit", "nodule"]) == 2
    assert "--unit nodule" in capsys.readouterr().err


def test_unit_option_on_score_predict_view():
    from napari_iaa.cli import build_parser

    parser = build_parser()
    for argv in (["score", "x"], ["view", "x"], ["predict", "x", "--model", "m", "--out", "o"]):
        assert parser.parse_args(argv).unit is None  # slice where the layout has a choice
        assert parser.parse_args([*argv, "--unit", "nodule"]).unit == "nodule"


def test_score_lidc_unit_slice_is_the_default(lidc_root, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["score", str(lidc_root), "-o", str(a), "-q"]) == 0
    assert main(["score", str(lidc_root), "-o", str(b), "-q", "--unit", "slice"]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert all("/slice-" in r["case_id"] for r in _read_csv(a))


def test_score_lidc_per_nodule(lidc_root, tmp_path):
    import inspect

    from napari_iaa.data import open_dataset

    if "unit" not in inspect.signature(open_dataset).parameters:
        pytest.skip("open_dataset has no unit option yet")
    slices = tmp_path / "s.csv"
    nodules = tmp_path / "n.csv"
    assert main(["score", str(lidc_root), "-o", str(slices), "-q"]) == 0
    assert main(["score", str(lidc_root), "-o", str(nodules), "-q", "--unit", "nodule"]) == 0
    per_slice = _read_csv(slices)
    rows = {r["case_id"]: r for r in _read_csv(nodules)}
    want = {r["case_id"].rsplit("/", 1)[0] for r in per_slice}
    assert set(rows) == want  # one row per nodule, id <patient>/<nodule>
    for cid, r in rows.items():
        # the nodule is marked by a reader who marked any of its slices
        marked = max(int(s["n_marked"]) for s in per_slice if s["case_id"].startswith(cid + "/"))
        assert int(r["n_marked"]) >= marked
        assert 0.0 <= float(r["detection_agreement"]) <= 1.0


# ------------------------------------------------------------------ cohort


def test_cohort_on_imapp_tables(imapp_metadata_dir, tmp_path, capsys):
    out = tmp_path / "cohort"
    rc = main([
        "cohort", str(imapp_metadata_dir / "IMAplusplus_multiannotator_subset_image_level_metrics.csv"),
        "--labels", str(imapp_metadata_dir / "IMAplusplus_img_metadata.csv"),
        "--by", "benign_malignant", "--groups", "malignant,benign", "--out", str(out),
    ])
    assert rc == 0
    text = capsys.readouterr().out
    assert "joined 2394 of 2394" in text and "malignant" in text
    data = json.loads((out / "cohort.json").read_text())
    assert data["join"]["n_joined"] == 2394
    assert (out / "cohort.png").stat().st_size > 1000
    res = data["result"]
    assert res["groups"][:2] == ["malignant", "benign"]
    assert res["n"] == {"malignant": 505, "benign": 1880}
    assert res["mean"]["malignant"] < res["mean"]["benign"]
    assert res["mann_whitney"]["alternative"] == "less" and res["mann_whitney"]["p"] < 1e-3
    assert res["ks"]["p"] < 1e-3
    assert "significant at 0.05" in text
    # the join itself, checked by hand: malignant mean from the two tables
    table, _ = read_cohort_table(
        imapp_metadata_dir / "IMAplusplus_multiannotator_subset_image_level_metrics.csv",
        imapp_metadata_dir / "IMAplusplus_img_metadata.csv", "benign_malignant")
    assert table.loc[table.group == "malignant", "iaa"].mean() == pytest.approx(res["mean"]["malignant"])


def test_cohort_joins_score_output_despite_suffix(tmp_path):
    iaa = tmp_path / "iaa.csv"
    iaa.write_text("case_id,iaa\nISIC_1,0.9\nISIC_2,0.8\nISIC_3,0.5\nISIC_9,0.4\n")
    meta = tmp_path / "meta.csv"
    meta.write_text("img_id,dx\nISIC_1.JPG,b\nISIC_2.jpg,b\nISIC_3.JPG,m\n")
    table, counts = read_cohort_table(iaa, meta, "dx")
    assert sorted(table.case_id) == ["ISIC_1", "ISIC_2", "ISIC_3"]
    assert counts["n_unmatched"] == 1
    assert dict(zip(table.case_id, table.group))["ISIC_3"] == "m"


def test_cohort_reads_tables_saved_by_european_excel(tmp_path):
    """';'-separated tables with decimal commas (and a byte-order mark), as Excel saves CSV
    in most of Europe, join and compare like comma tables."""
    iaa = tmp_path / "iaa.csv"
    iaa.write_text("\ufeffcase_id;iaa\nISIC_1;0,9\nISIC_2;0,8\nISIC_3;0,5\n", encoding="utf-8")
    meta = tmp_path / "meta.csv"
    meta.write_text("img_id;dx;age\nISIC_1;b;45,5\nISIC_2;b;50\nISIC_3;m;61,0\n",
                    encoding="utf-8")
    table, counts = read_cohort_table(iaa, meta, "dx")
    assert dict(zip(table.case_id, table.group)) == {"ISIC_1": "b", "ISIC_2": "b", "ISIC_3": "m"}
    assert dict(zip(table.case_id, table.iaa)) == {"ISIC_1": 0.9, "ISIC_2": 0.8, "ISIC_3": 0.5}
    assert counts["n_unmatched"] == 0


def test_cohort_missing_column_exits_2(tmp_path, capsys):
    iaa = tmp_path / "iaa.csv"
    iaa.write_text("case_id,iaa\na,0.9\nb,0.8\n")
    meta = tmp_path / "meta.csv"
    meta.write_text("case_id,dx\na,x\nb,y\n")
    assert main(["cohort", str(iaa), "--labels", str(meta), "--by", "diagnosis", "--out", str(tmp_path / "o")]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and str(meta) in lines[0] and "diagnosis" in lines[0]
    assert main(["cohort", str(tmp_path / "nope.csv"), "--by", "dx", "--out", str(tmp_path / "o")]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "nope.csv" in lines[0]


# ------------------------------------------------------------------ synth


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_synth_is_deterministic(tmp_path, capsys):
    args = ["--n", "3", "--seed", "11", "--size", "40x32"]
    assert main(["synth", str(tmp_path / "a"), *args]) == 0
    assert main(["synth", str(tmp_path / "b"), *args]) == 0
    assert main(["synth", str(tmp_path / "c"), "--n", "3", "--seed", "12", "--size", "40x32"]) == 0
    a, b, c = (_tree_digest(tmp_path / x) for x in "abc")
    assert a and a == b and a != c
    img = next((tmp_path / "a" / "images").iterdir())
    assert Image.open(img).size == (40, 32)
    # refuses to write into a non-empty folder
    capsys.readouterr()
    assert main(["synth", str(tmp_path / "a"), *args]) == 2
    assert "not empty" in capsys.readouterr().err


def test_synth_bad_size_exits_2(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "x"), "--size", "big"]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err


# ------------------------------------------------------------------ view


def test_view_without_display_exits_2_with_advice(monkeypatch, capsys):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["view"]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert lines[0].startswith("napari-iaa: error: no display") and "xvfb-run -a" in lines[0]


@pytest.mark.gui
def test_view_opens_review_dock_on_sample(monkeypatch, qtbot):
    napari = pytest.importorskip("napari")
    if display_problem() is not None:
        pytest.skip("needs a display (run under xvfb-run -a)")
    seen = {}

    def fake_run(*args, **kwargs):  # instead of blocking in the event loop
        viewer = napari.current_viewer()
        seen["docks"] = list(viewer.window.dock_widgets)
        seen["layers"] = [layer.name for layer in viewer.layers]
        viewer.close()

    monkeypatch.setattr(napari, "run", fake_run)
    assert main(["view"]) == 0
    assert "IAA review" in seen["docks"]
    assert len(seen["layers"]) >= 3  # the image and at least two annotators' masks


def test_display_problem_rules():
    assert display_problem({}, "linux") is not None
    assert display_problem({"DISPLAY": ":0"}, "linux") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({}, "darwin") is None


# ------------------------------------------------------------------ console script


def _console_script() -> str:
    exe = Path(sys.executable).with_name("napari-iaa")
    if not exe.is_file():
        pytest.skip("console script napari-iaa not installed next to the interpreter")
    return str(exe)


def test_console_script_subprocess(folders_dir, tmp_path):
    exe = _console_script()
    out = tmp_path / "s.csv"
    ok = subprocess.run([exe, "score", str(folders_dir), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert len(_read_csv(out)) == 3
    bad = subprocess.run([exe, "score", str(tmp_path / "missing")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert _error_lines(bad.stderr) == [f"napari-iaa: error: {tmp_path / 'missing'}: no such file or folder"]
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    if sys.platform.startswith("linux"):
        view = subprocess.run([exe, "view"], capture_output=True, text=True, timeout=120, env=env)
        assert view.returncode == 2 and "xvfb-run -a" in view.stderr and "Traceback" not in view.stderr


def test_predict_is_a_subcommand_and_bad_model_is_one_line(tmp_path, capsys):
    """`napari-iaa predict` is wired into the CLI; a missing model is exit 2, one line."""
    from napari_iaa.cli import main
    from napari_iaa.data import sample_data_path

    missing = tmp_path / "nope.json"
    code = main(["predict", str(sample_data_path("lidc")), "--model", str(missing),
                 "--out", str(tmp_path / "p.csv"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "nope.json" in err
    assert not (tmp_path / "p.csv").exists()


def test_synth_3d_writes_nifti_volumes_that_score_in_mm(tmp_path, capsys):
    import csv

    out = tmp_path / "vols"
    assert main(["synth", str(out), "--3d", "--n", "2", "--shape", "16x40x40",
                 "--annotators", "3"]) == 0
    cases = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(cases) == 2
    assert sorted(f.name for f in cases[0].glob("*.nii.gz"))[:1] == ["R1.nii.gz"]
    capsys.readouterr()
    assert main(["score", str(out)]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert len(rows) == 2 and all(r["n_masks"] == "3" for r in rows)
    # anisotropic spacing (2.5 x 0.7 x 0.7 mm): surface distances are in mm, not voxels
    assert all(0.0 < float(r["hd95_mean"]) < 40.0 for r in rows)
    assert main(["synth", str(tmp_path / "bad"), "--3d", "--shape", "4x4"]) == 2
