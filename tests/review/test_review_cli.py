"""``napari-iaa review`` and ``napari-iaa consensus`` through ``napari_iaa.cli.main``."""

from __future__ import annotations

import csv
import io

import pandas as pd

from napari_iaa.cli.review import AGREEMENT_COLUMNS
from napari_iaa.data import open_dataset
from napari_iaa.review import ReviewStore
from napari_iaa.scoring import SCORE_COLUMNS


def test_review_set_status_and_round_trip_with_the_store(cli, synthetic):
    ids = open_dataset(synthetic).ids
    rc, out, err = cli("review", str(synthetic), "set", ids[0], "accepted",
                       "--comment", "clean border", "--reviewer", "ana")
    assert rc == 0, err
    assert out.startswith(f"{ids[0]}: accepted by ana") and "review store:" in err
    assert cli("review", str(synthetic), "set", ids[1], "reannotate")[0] == 0
    rc, out, err = cli("review", str(synthetic), "status")
    assert rc == 0, err
    assert out == "status,cases\nunreviewed,38\naccepted,1\nreannotate,1\nexcluded,0\n"
    assert "reviewed 2 of 40" in err
    with ReviewStore.open(synthetic) as store:  # what the dock would see
        v = store.verdict(ids[0])
        assert (v.status, v.reviewer, v.comment) == ("accepted", "ana", "clean border")


def test_unknown_status_and_case_exit_2_with_one_line(cli, synthetic):
    ids = open_dataset(synthetic).ids
    rc, out, err = cli("review", str(synthetic), "set", ids[0], "approved")
    assert rc == 2 and out == ""
    assert err.startswith("napari-iaa: error: unknown review status 'approved'")
    assert err.count("\n") == 1
    rc, out, err = cli("review", str(synthetic), "set", "NO_SUCH_CASE", "accepted")
    assert rc == 2 and err.startswith("napari-iaa: error: ") and "NO_SUCH_CASE" in err
    assert err.count("\n") == 1
    rc, _, err = cli("review", str(synthetic / "missing"), "status")
    assert rc == 2 and err.startswith("napari-iaa: error: ")
    assert not (synthetic / ".napari-iaa" / "review.sqlite").exists()  # nothing was written


def test_review_export_has_verdicts_then_the_score_columns(cli, synthetic, tmp_path):
    ids = open_dataset(synthetic).ids
    cli("review", str(synthetic), "set", ids[2], "excluded", "--comment", "blurred, a, b")
    out_csv = tmp_path / "review.csv"
    rc, _, err = cli("review", str(synthetic), "export", str(out_csv), "-q")
    assert rc == 0, err
    table = pd.read_csv(out_csv, dtype=str, keep_default_na=False)
    rc, score_out, _ = cli("score", str(synthetic), "-q")
    score = pd.read_csv(io.StringIO(score_out), dtype=str, keep_default_na=False)
    # the verdict, the agreement columns of napari-iaa score (same names, same order; its
    # metadata columns after them are left out), the notes
    agreement = list(score.columns)[1:list(score.columns).index("assd_mean") + 1]
    assert agreement == AGREEMENT_COLUMNS
    assert list(table.columns) == ["case_id", "status", "reviewer", "comment", "updated",
                                   *agreement, "mask_notes"]
    assert set(SCORE_COLUMNS[1:]) | {"iaa_marked", "hd95_mean"} <= set(agreement)
    assert table["case_id"].tolist() == ids
    row = table.set_index("case_id").loc[ids[2]]
    assert (row["status"], row["comment"]) == ("excluded", "blurred, a, b")
    assert row["updated"].endswith("Z")
    for col in agreement:  # the same text, digit for digit, as score writes
        assert table[col].tolist() == score[col].tolist(), col
    assert set(table["mask_notes"]) == {""}


def test_review_export_carries_the_mask_notes(cli, synthetic, tmp_path):
    ds = open_dataset(synthetic)
    case = ds[ds.ids[1]]
    m0, m1 = sorted(case.masks)[:2]
    with ReviewStore.open(synthetic, reviewer="rita") as store:
        store.set_mask_note(ds.ids[1], m1, "missed the spiculation")
        store.set_mask_note(ds.ids[1], m0, "too wide")
    out_csv = tmp_path / "review.csv"
    rc, _, err = cli("review", str(synthetic), "export", str(out_csv), "-q", "--no-surface")
    assert rc == 0, err
    table = pd.read_csv(out_csv, dtype=str, keep_default_na=False).set_index("case_id")
    assert "hd95_mean" not in table.columns  # as score --no-surface
    assert table.loc[ds.ids[1], "mask_notes"] == (
        f"{m0}: too wide | {m1}: missed the spiculation")
    assert table.loc[ds.ids[0], "mask_notes"] == ""


def test_consensus_command(cli, synthetic, tmp_path):
    out = tmp_path / "cons"
    rc, _, err = cli("consensus", str(synthetic), "--method", "staple", "--out", str(out))
    assert rc == 0, err
    assert "wrote 40 consensus mask(s)" in err
    with open(out / "consensus.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 40 and rows[0]["method"] == "staple"
    rc, _, err = cli("consensus", str(synthetic), "--method", "reviewed", "--only", "accepted",
                     "--out", str(tmp_path / "rev"))
    assert rc == 0 and (tmp_path / "rev" / "consensus.csv").read_text() == (
        "case_id,method,file,n_annotators\n")
    rc, _, err = cli("consensus", str(synthetic), "--out", str(synthetic / "consensus"))
    assert rc == 2 and err.startswith("napari-iaa: error: ") and "inside the data set" in err
    rc, _, err = cli("consensus", str(synthetic), "--method", "mean", "--out", str(out))
    assert rc == 2 and err.count("\n") == 1


def test_consensus_per_nodule_writes_one_volume_per_nodule(cli, lidc, tmp_path):
    from napari_iaa.data import open_dataset, read_mask

    out = tmp_path / "cons"
    rc, _out, err = cli("consensus", str(lidc), "--unit", "nodule", "--method", "majority",
                        "--out", str(out))
    assert rc == 0, err
    nodules = open_dataset(lidc, unit="nodule")
    written = sorted(p.name for p in out.glob("*.nii.gz"))
    assert written == sorted(f"{c.replace('/', '_')}.nii.gz" for c in nodules.ids)
    case = nodules[nodules.ids[0]]
    mask = read_mask(out / f"{nodules.ids[0].replace('/', '_')}.nii.gz")
    assert mask.shape == case.shape  # the stacked nodule, slice order kept
    rc, _out, err = cli("review", str(lidc), "--unit", "nodule", "set", nodules.ids[0],
                        "accepted")
    assert rc == 0, err


def _labelled_folders(root):
    """Two cases; c1's mask B is a label image (0/1/2: a MaskEncodingWarning), folder c3
    has masks but no image (an index-time problem)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for case in ("c1", "c2", "c3"):
        (root / case).mkdir(parents=True)
        if case != "c3":
            Image.fromarray(rng.integers(0, 255, (24, 32), dtype=np.uint8)).save(root / case / "image.png")
        a = np.zeros((24, 32), np.uint8)
        a[4:16, 6:20] = 255
        b = np.zeros((24, 32), np.uint8)
        b[5:17, 6:22] = 1
        b[8:12, 8:12] = 2
        Image.fromarray(a).save(root / case / "A.png")
        Image.fromarray(b).save(root / case / "B.png")
    return root


def test_consensus_reports_skipped_files_and_mask_encodings_as_one_line_each(cli, tmp_path):
    data = _labelled_folders(tmp_path / "ds")
    rc, _out, err = cli("consensus", str(data), "--out", str(tmp_path / "cons"))
    assert rc == 0, err
    lines = err.splitlines()
    assert "Traceback" not in err and "MaskEncodingWarning" not in err
    assert all(line.startswith(("napari-iaa: warning: ", "wrote ")) for line in lines), lines
    labels = [line for line in lines if str(data / "c1" / "B.png") in line]
    assert len(labels) == 1 and "not two-valued" in labels[0]
    assert any(str(data / "c3") in line and "without an image" in line for line in lines)
    assert "wrote 2 consensus mask(s)" in err and "1 problem(s)" in err
