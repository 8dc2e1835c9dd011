"""Consensus export: majority and STAPLE masks per case, consensus.csv, selections, safety."""

from __future__ import annotations

import csv
import signal
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from review_helpers import PYTHON, child_env, sha_tree

from napari_iaa.agreement import annotator_count, iaa, staple
from napari_iaa.data import atomic_write_png, open_dataset, read_mask
from napari_iaa.errors import ConfigError, DatasetError
from napari_iaa.review import (
    CONSENSUS_COLUMNS,
    MASK_WRITERS,
    MaskWriter,
    ReviewStore,
    consensus_mask,
    export_consensus,
    mask_writer_for,
    register_mask_writer,
)


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _masks(ds, case_id):
    e = ds.entry(case_id)
    return {m: read_mask(p) for m, p in e.mask_paths.items()}


def test_majority_export_of_the_synthetic_sample(synthetic, tmp_path):
    ds = open_dataset(synthetic)
    before = sha_tree(synthetic)
    seen = []
    result = export_consensus(ds, method="majority", out_dir=tmp_path / "out",
                              progress=lambda d, n: seen.append((d, n)))
    assert result.n_written == len(ds) == 40 and not result.problems and not result.missing
    assert seen[-1] == (40, 40) and len(seen) == 40
    rows = _csv(tmp_path / "out" / "consensus.csv")
    assert list(rows[0]) == CONSENSUS_COLUMNS
    assert [r["case_id"] for r in rows] == ds.ids
    assert all(r["file"] == f"{r['case_id']}.png" and r["method"] == "majority" for r in rows)
    for r in rows[:6]:
        masks = _masks(ds, r["case_id"])
        assert int(r["n_annotators"]) == ds.entry(r["case_id"]).n_annotators
        got = read_mask(tmp_path / "out" / r["file"])
        n = len(masks)
        expected = annotator_count(masks) * 2 >= n  # at least half of the annotators
        np.testing.assert_array_equal(got, expected)
    assert sha_tree(synthetic) == before  # originals untouched
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert names == {f"{c}.png" for c in ds.ids} | {"consensus.csv"}  # no temporary files


def test_majority_means_at_least_half():
    a = np.array([[1, 1, 0, 0]], bool)
    b = np.array([[1, 0, 1, 0]], bool)
    np.testing.assert_array_equal(consensus_mask({"a": a, "b": b}, "majority"), [[1, 1, 1, 0]])
    c = np.array([[0, 0, 1, 1]], bool)
    np.testing.assert_array_equal(
        consensus_mask({"a": a, "b": b, "c": c}, "majority"), [[1, 0, 1, 0]])


def test_staple_export_on_the_synthetic_sample(synthetic, tmp_path):
    ds = open_dataset(synthetic)
    ids = ds.ids[:8]
    result = export_consensus(ds.subset(ids), method="staple", out_dir=tmp_path / "st")
    rows = _csv(result.csv_path)
    assert [r["method"] for r in rows] == ["staple"] * 8
    for r in rows[:3]:
        expected = staple(_masks(ds, r["case_id"])).probability > 0.5
        np.testing.assert_array_equal(read_mask(tmp_path / "st" / r["file"]), expected)
    values = set(np.unique(np.asarray(Image.open(tmp_path / "st" / rows[0]["file"]))).tolist())
    assert values <= {0, 255}  # PNG as 0/255


def test_case_ids_with_slashes_become_flat_names(lidc, tmp_path):
    ds = open_dataset(lidc)
    ids = ds.ids[:5]
    result = export_consensus(ds.subset(ids), out_dir=tmp_path / "out")
    files = [r["file"] for r in result.rows]
    assert files == [c.replace("/", "_") + ".png" for c in ids]
    assert all("/" not in f and (tmp_path / "out" / f).is_file() for f in files)


def test_only_accepted_and_reviewed_use_the_store(synthetic, tmp_path):
    ds = open_dataset(synthetic)
    a, b, c = ds.ids[:3]
    adj = synthetic / ".napari-iaa" / "adjudicated"
    adj.mkdir(parents=True)
    with ReviewStore.open(synthetic, reviewer="ana") as store:
        store.set_verdict(a, "accepted")
        store.set_verdict(b, "accepted")
        store.set_verdict(c, "excluded")
        chosen = read_mask(ds.entry(a).mask_paths[ds.entry(a).mask_ids[0]])
        atomic_write_png(adj / f"{a}.png", chosen)
        store.set_adjudicated(a, f"annotator:{ds.entry(a).mask_ids[0]}", adj / f"{a}.png")
    only = export_consensus(ds, method="majority", only="accepted", out_dir=tmp_path / "acc")
    assert [r["case_id"] for r in only.rows] == [a, b] and only.n_selected == 2
    reviewed = export_consensus(synthetic, method="reviewed", only="accepted",
                                out_dir=tmp_path / "rev")
    rows = _csv(reviewed.csv_path)
    assert rows[0]["method"].startswith("reviewed:annotator:") and rows[0]["file"] == f"{a}.png"
    assert rows[1] == {"case_id": b, "method": "reviewed", "file": "",
                       "n_annotators": str(ds.entry(b).n_annotators)}
    assert reviewed.missing == [b]
    np.testing.assert_array_equal(read_mask(tmp_path / "rev" / f"{a}.png"), chosen)


def test_only_flagged_uses_the_iaa_threshold(synthetic, tmp_path):
    ds = open_dataset(synthetic)
    values = {c: iaa(_masks(ds, c), raters=ds.entry(c).raters) for c in ds.ids}
    result = export_consensus(ds, only="flagged", threshold=0.8, out_dir=tmp_path / "fl")
    assert [r["case_id"] for r in result.rows] == [c for c in ds.ids if values[c] < 0.8]
    assert 0 < len(result.rows) < len(ds)


def test_bad_arguments_and_an_output_folder_inside_the_data_set(synthetic, tmp_path):
    ds = open_dataset(synthetic)
    with pytest.raises(ConfigError, match="method"):
        export_consensus(ds, method="mean", out_dir=tmp_path / "x")
    with pytest.raises(ConfigError, match="only"):
        export_consensus(ds, only="some", out_dir=tmp_path / "x")
    with pytest.raises(ConfigError, match="inside the data set"):
        export_consensus(ds, out_dir=synthetic / "masks")
    with pytest.raises(ConfigError, match="inside the data set"):
        export_consensus(ds, out_dir=synthetic)
    hidden = export_consensus(ds.subset(ds.ids[:2]), out_dir=synthetic / ".napari-iaa" / "cons")
    assert hidden.n_written == 2
    assert open_dataset(synthetic).ids == ds.ids  # still the same data set


def test_protected_files_resolve_as_each_path_would(tmp_path):
    """The export never writes over a data set file: the set of those files, resolved a
    folder at a time, equals resolving every path (links to files and folders included)."""
    from napari_iaa.review.consensus_export import _resolved

    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    for name in ("a.png", "b.png", "sub/c.png"):
        (real / name).write_bytes(b"x")
    (tmp_path / "linked_dir").symlink_to(real / "sub")
    (real / "link.png").symlink_to(tmp_path / "elsewhere.png")
    files = [real / "a.png", tmp_path / "linked_dir" / "c.png", real / "link.png",
             real / "sub" / ".." / "b.png", real / "missing.png", "relative/x.png"]
    assert _resolved(files) == {Path(f).resolve() for f in files}
    assert (tmp_path / "elsewhere.png").resolve() in _resolved(files)


def test_cancel_writes_the_csv_of_what_was_done(synthetic, tmp_path):
    ds = open_dataset(synthetic)
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 3

    result = export_consensus(ds, out_dir=tmp_path / "c", should_stop=stop)
    assert result.stopped and len(result.rows) == 3
    assert len(_csv(result.csv_path)) == 3


def test_a_bad_case_is_a_problem_not_a_crash(synthetic, tmp_path):
    ds = open_dataset(synthetic)
    victim = ds.entry(ds.ids[1])
    next(iter(victim.mask_paths.values())).write_bytes(b"not a png")
    result = export_consensus(ds.subset(ds.ids[:3]), out_dir=tmp_path / "b")
    assert len(result.problems) == 1 and ds.ids[1] in result.problems[0]
    assert [r["case_id"] for r in result.rows] == [ds.ids[0], ds.ids[2]]


def test_a_volume_writer_slots_in(synthetic, tmp_path):
    ds = open_dataset(synthetic)
    entry = ds.entry(ds.ids[0])
    # a 3D mask of a 2D data set's entry: the built-in volume writer (NIfTI)
    assert mask_writer_for(np.zeros((2, 3, 4), bool), entry).suffix == ".nii.gz"
    with pytest.raises(DatasetError, match="no consensus writer"):
        mask_writer_for(np.zeros((2, 3, 4, 5), bool), entry)
    written = []

    def write_npy(path, mask, entry):
        np.save(path, mask)
        written.append(path)
        return path

    writer = MaskWriter("npy", ".npy", lambda m, e: np.ndim(m) == 3, write_npy)
    register_mask_writer(writer)
    try:
        assert mask_writer_for(np.zeros((2, 3, 4), bool), entry) is writer
        assert mask_writer_for(np.zeros((3, 4), bool), entry).name == "png"
    finally:
        MASK_WRITERS.remove(writer)


_KILL_EXPORT = textwrap.dedent(
    """
    import os, signal, sys
    from napari_iaa.data import open_dataset
    from napari_iaa.review import export_consensus

    full = open_dataset(sys.argv[1])
    part = full.subset(full.ids[:6])
    frac = float(sys.argv[3])
    export_consensus(part, out_dir=sys.argv[2] + "-warm")  # first call imports plug-ins
    n = [0]
    def count(frame, event, arg):
        n[0] += 1
    sys.setprofile(count)
    export_consensus(part, out_dir=sys.argv[2] + "-dry")
    sys.setprofile(None)
    kill_at = max(1, int(frac * n[0]))
    seen = [0]
    def killer(frame, event, arg):
        seen[0] += 1
        if seen[0] >= kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    sys.setprofile(killer)
    export_consensus(part, out_dir=sys.argv[2])
    print("FINISHED", flush=True)
    """
)


@pytest.mark.parametrize("frac", [0.1, 0.5, 0.9, 0.999])
def test_killed_export_leaves_no_partial_file(synthetic, tmp_path, frac):
    out = tmp_path / "killed"
    res = subprocess.run([PYTHON, "-c", _KILL_EXPORT, str(synthetic), str(out), str(frac)],
                         capture_output=True, text=True, env=child_env(), timeout=300)
    assert res.returncode == -signal.SIGKILL, (res.returncode, res.stderr[-2000:])
    dry = {p.name: p.read_bytes() for p in (tmp_path / "killed-dry").iterdir()}
    if not out.exists():
        return
    for p in out.iterdir():
        if p.name.startswith("."):
            assert p.name.endswith(".tmp")  # a hidden temporary file, never read as data
            continue
        assert p.read_bytes() == dry[p.name]  # every visible file is complete
