"""Batch prediction (``napari_iaa.predict``): the CSV, the maps, torchrun-style sharding."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

from napari_iaa.errors import CheckpointError
from napari_iaa.predict import (
    CSV_COLUMNS,
    add_predict_parser,
    load_models,
    predict_dataset,
    run_predict,
    shard_info,
    task_slot,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_models):
    from napari_iaa.data import generate_synthetic_dataset, open_dataset

    root = tmp_path_factory.mktemp("predict")
    data = generate_synthetic_dataset(root / "syn", n=5, size=(48, 40), seed=3)
    models = tiny_models
    ds = open_dataset(data)
    return {"root": root, "data": data, "ds": ds, "models": models,
            "set": load_models(list(models.values()), device="cpu")}


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"case_id": str, "mask_id": str, "annotator": str},
                       keep_default_na=False, na_values=[""])


def test_csv_has_iaa_quality_and_maps(tiny, tmp_path):
    from napari_iaa.data import read_image

    out = tmp_path / "pred.csv"
    seen = []
    df = predict_dataset(tiny["ds"], tiny["set"], out, maps_dir=tmp_path / "maps", batch_size=2,
                         progress=lambda d, t: seen.append((d, t)))
    assert out.is_file()
    csv = _read(out)
    assert list(csv.columns) == CSV_COLUMNS
    ds = tiny["ds"]
    n_masks = {cid: len(ds.entry(cid).mask_paths) for cid in ds.ids}
    assert len(csv) == sum(max(n, 1) for n in n_masks.values())
    assert list(dict.fromkeys(csv["case_id"])) == list(ds.ids)
    for cid, grp in csv.groupby("case_id", sort=False):
        assert grp["predicted_iaa"].nunique() == 1
        assert np.isfinite(grp["predicted_iaa"]).all()
        assert set(grp["mask_id"]) == set(ds.entry(cid).mask_paths)
        assert np.isfinite(grp["predicted_quality"]).all()
        assert grp["predicted_quality"].between(-1, 2).all()
        # empirical IAA is the mean pairwise Dice of the case's masks
        case = ds.load(cid)
        from napari_iaa.agreement import iaa

        assert grp["empirical_iaa"].iloc[0] == pytest.approx(iaa(case.stack()), abs=1e-6)
        mhr = read_image(Path(grp["mhr_map"].iloc[0]))
        assert mhr.shape[:2] == case.shape[:2]
    assert seen[-1] == (len(ds.ids), len(ds.ids))
    assert len(df) == len(csv)


def test_sharding_in_process_matches_single(tiny, tmp_path, monkeypatch):
    single = tmp_path / "single.csv"
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    predict_dataset(tiny["ds"], tiny["set"], single, maps_dir=tmp_path / "maps")
    sharded = tmp_path / "sharded.csv"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    part = predict_dataset(tiny["ds"], tiny["set"], sharded, maps_dir=tmp_path / "maps")
    assert not sharded.exists()  # rank 1 only writes its part
    assert set(part["case_id"]) == set(tiny["ds"].ids[1::2])
    monkeypatch.setenv("RANK", "0")
    predict_dataset(tiny["ds"], tiny["set"], sharded, maps_dir=tmp_path / "maps", merge_timeout=5)
    pd.testing.assert_frame_equal(_read(single), _read(sharded), check_exact=False, rtol=1e-6)
    assert not list(tmp_path.glob("sharded.csv.part*"))  # parts removed after the merge


@pytest.mark.slow
def test_two_processes_match_one(tiny, tmp_path):
    """Two real processes with RANK/WORLD_SIZE (as torchrun sets them) give the same CSV."""
    models = [str(p) for p in tiny["models"].values()]
    base = [sys.executable, "-m", "napari_iaa.predict", str(tiny["data"]), "--device", "cpu",
            "--no-progress", "--batch-size", "2"]
    for m in models:
        base += ["--model", m]
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("MASTER_ADDR", None)
    one = tmp_path / "one.csv"
    r = subprocess.run([*base, "--out", str(one)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    two = tmp_path / "two.csv"
    procs = [subprocess.Popen([*base, "--out", str(two)], env={**env, "RANK": str(k), "WORLD_SIZE": "2"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in (0, 1)]
    for p in procs:
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    pd.testing.assert_frame_equal(_read(one), _read(two), check_exact=False, rtol=1e-6)


def test_should_stop_writes_nothing(tiny, tmp_path):
    out = tmp_path / "stopped.csv"
    df = predict_dataset(tiny["ds"], tiny["set"], out, batch_size=1, should_stop=lambda: True)
    assert len(df) == 0 and not out.exists()


def test_models_by_slot_and_mismatch(tiny):
    ms = load_models({"quality": tiny["models"]["quality"]}, device="cpu")
    assert ms.slots == ["quality"]
    with pytest.raises(CheckpointError, match="chosen for 'iaa'"):
        load_models({"iaa": tiny["models"]["mhr"]}, device="cpu")
    with pytest.raises(CheckpointError, match="not found"):
        load_models(["/nonexistent/model.safetensors"], device="cpu")
    assert task_slot("calibrate") == "mhr" and task_slot("iaa+diagnosis") == "iaa"


def test_shard_info_rejects_bad_env(monkeypatch):
    from napari_iaa.errors import ConfigError

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ConfigError):
        shard_info()


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_predict_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["predict", *argv])


def test_cli_missing_model_is_one_line_exit_2(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    code = run_predict(_args([str(tiny["data"]), "--model", str(tmp_path / "nope.safetensors"),
                              "--out", str(tmp_path / "x.csv"), "--no-progress"]))
    err = capsys.readouterr().err
    assert code == 2
    assert "nope" in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()


def test_cli_writes_csv(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    out = tmp_path / "cli.csv"
    code = run_predict(_args([str(tiny["data"]), "--model", str(tiny["models"]["iaa"]),
                              "--out", str(out), "--device", "cpu", "--no-progress"]))
    assert code == 0
    csv = _read(out)
    assert csv["predicted_iaa"].notna().all()
    assert csv["predicted_quality"].isna().all()  # no quality model given
    assert "wrote" in capsys.readouterr().out


def test_cli_notes_skipped_files_and_mask_encodings_as_one_line_each(tiny, tmp_path, capsys,
                                                                       monkeypatch):
    from PIL import Image

    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    rng = np.random.default_rng(0)
    data = tmp_path / "ds"
    for case in ("c1", "c2"):  # c2 has masks but no image: left out when indexing
        (data / case).mkdir(parents=True)
        a = np.zeros((40, 48), np.uint8)
        a[5:25, 8:30] = 255
        labels = np.zeros((40, 48), np.uint8)
        labels[6:26, 8:32] = 1
        labels[10:14, 10:14] = 2  # a label image: a MaskEncodingWarning
        Image.fromarray(a).save(data / case / "A.png")
        Image.fromarray(labels).save(data / case / "B.png")
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(data / "c1" / "image.png")
    code = run_predict(_args([str(data), "--model", str(tiny["models"]["iaa"]), "--out",
                              str(tmp_path / "p.csv"), "--device", "cpu", "--no-progress"]))
    err = capsys.readouterr().err
    assert code == 0, err
    assert "MaskEncodingWarning" not in err and "Traceback" not in err
    assert all(line.startswith("napari-iaa predict: ") for line in err.splitlines()), err
    labels_lines = [line for line in err.splitlines() if str(data / "c1" / "B.png") in line]
    assert len(labels_lines) == 1 and "not two-valued" in labels_lines[0]  # once, read twice
    assert any(str(data / "c2") in line and "without an image" in line
               for line in err.splitlines()), err


def test_maps_of_ids_that_make_the_same_file_name_stay_apart(tiny, tmp_path):
    from PIL import Image

    from napari_iaa.data import open_dataset, read_image
    from napari_iaa.predict import ModelSet

    root = tmp_path / "m"
    (root / "img").mkdir(parents=True)
    rows = ["case_id,image,annotator,mask"]
    shapes = {"p/x": (40, 48), "p_x": (36, 44), "P_X": (32, 40)}  # one file name, blind to case
    for k, (cid, shape) in enumerate(shapes.items()):
        Image.fromarray(np.full(shape, 80, np.uint8)).save(root / "img" / f"{k}.png")
        m = np.zeros(shape, np.uint8)
        m[4:20, 5:25] = 255
        Image.fromarray(m).save(root / "img" / f"{k}_a.png")
        rows.append(f"{cid},img/{k}.png,A,img/{k}_a.png")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    models = ModelSet(mhr=tiny["set"].mhr, device="cpu")
    df = predict_dataset(open_dataset(root), models, tmp_path / "p.csv", maps_dir=tmp_path / "maps")
    files = df.groupby("case_id", sort=False)["mhr_map"].first()
    assert len({Path(f).name.lower() for f in files}) == 3  # one file per case
    for cid, shape in shapes.items():
        assert read_image(Path(files[cid])).shape[:2] == shape  # its own map, not another's


class _SpyDataset:
    """Delegates to a data set and records the thread that read each case."""

    def __init__(self, ds):
        self.ds, self.ids, self.threads = ds, list(ds.ids), []

    def __iter__(self):
        return iter(self.ids)

    def load(self, cid, **kw):
        import threading

        self.threads.append(threading.get_ident())
        return self.ds.load(cid, **kw)


def test_cases_are_read_ahead_in_a_worker_and_stop_is_honoured(tiny, tmp_path):
    import threading

    from napari_iaa.predict import ModelSet

    models = ModelSet(iaa=tiny["set"].iaa, quality=tiny["set"].quality, device="cpu")
    spy = _SpyDataset(tiny["ds"])
    full = predict_dataset(spy, models, tmp_path / "a.csv", batch_size=2)
    assert spy.threads and threading.get_ident() not in spy.threads
    assert list(dict.fromkeys(full["case_id"])) == spy.ids
    ref = predict_dataset(tiny["ds"], models, tmp_path / "b.csv", batch_size=5)
    pd.testing.assert_frame_equal(full.reset_index(drop=True), ref.reset_index(drop=True),
                                  check_exact=False, rtol=1e-5)
    done = []
    part = predict_dataset(_SpyDataset(tiny["ds"]), models, tmp_path / "c.csv",
                           batch_size=2, progress=lambda d, t: done.append(d),
                           should_stop=lambda: len(done) >= 2)
    assert list(dict.fromkeys(part["case_id"])) == spy.ids[:2]
    assert not (tmp_path / "c.csv").exists()
