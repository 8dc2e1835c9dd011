"""Each task trains on a tiny synthetic data set; checkpoints load and predict the same."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_iaa.errors import ConfigError
from training import FitConfig, HistoryCallback, fit
from training.augmentation import Augment
from training.datasets import build_cache, split_by_group
from training.engine import latest_state_dir

TINY = dict(backbone="resnet10t", size=32, batch_size=4, lr=3e-3, device="cpu", threads=1,
            val_fraction=0.2, test_fraction=0.2, calib_fraction=0.2, augment=False)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from napari_iaa.data import generate_synthetic_dataset

    root = tmp_path_factory.mktemp("synth") / "syn"
    generate_synthetic_dataset(root, n=20, seed=3, size=(48, 48))
    return root


def _volume_and_image_cases(root, volumes=("v1", "v2"), images=("i1", "i2")):
    """A folders data set: lesion volumes (NIfTI) and 2D images, two annotators each."""
    from PIL import Image

    from napari_iaa.data import write_volume

    for case in volumes:
        vol = np.zeros((6, 24, 24), np.uint8)
        vol[2:5, 6:16, 6:16] = 1
        (root / case).mkdir(parents=True)
        write_volume(root / case / "image.nii.gz", vol * 100, spacing=(2.5, 0.7, 0.7))
        write_volume(root / case / "A.nii.gz", vol, spacing=(2.5, 0.7, 0.7))
        write_volume(root / case / "B.nii.gz", np.roll(vol, 1, axis=2), spacing=(2.5, 0.7, 0.7))
    for case in images:
        m = np.zeros((24, 24), np.uint8)
        m[6:16, 6:16] = 255
        (root / case).mkdir(parents=True)
        Image.fromarray(m // 2).save(root / case / "image.png")
        Image.fromarray(m).save(root / case / "A.png")
        Image.fromarray(np.roll(m, 1, axis=1)).save(root / case / "B.png")
    return root


def test_build_cache_leaves_volumes_out_and_says_why_when_all_are(tmp_path):
    from napari_iaa.errors import DatasetError

    mixed = _volume_and_image_cases(tmp_path / "mixed")
    c = build_cache(mixed, 32)
    assert sorted(c.case_ids) == ["i1", "i2"]  # the 2D cases train; the volumes are left out
    only = _volume_and_image_cases(tmp_path / "ct", images=())
    with pytest.raises(DatasetError, match=r"train on 2D images.*2 case\(s\).*volumes"):
        build_cache(only, 32)


def _fit(synth, tmp_path, task, epochs=3, **kw):
    hist = HistoryCallback()
    cfg = FitConfig(task=task, data=synth, out=tmp_path, epochs=epochs, **{**TINY, **kw})
    res = fit(cfg, callbacks=[hist], **{k: v for k, v in kw.items() if k in ()})
    return cfg, res, hist


def _same_prediction(cfg, task_output):
    """The last epoch's saved model loads and predicts like the model in memory."""
    from napari_iaa.models.checkpoint import load_checkpoint

    state = latest_state_dir(cfg.state_dir)
    model, card = load_checkpoint(state / "model.json")
    x = torch.randn(2, 3, cfg.size, cfg.size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = task_output(model(x))
    return model, card, a, x


def test_split_by_group_never_leaks():
    groups = [f"p{i // 3}" for i in range(60)] + [None] * 5
    sp = split_by_group(groups, {"val": 0.2, "test": 0.2}, seed=1, ids=[str(i) for i in range(65)])
    seen = {}
    for name, idx in sp.items():
        for i in idx:
            key = groups[i] or f"case{i}"
            assert seen.setdefault(key, name) == name
    assert sorted(i for v in sp.values() for i in v) == list(range(65))
    assert sp == split_by_group(groups, {"val": 0.2, "test": 0.2}, seed=1, ids=[str(i) for i in range(65)])
    assert sp != split_by_group(groups, {"val": 0.2, "test": 0.2}, seed=2, ids=[str(i) for i in range(65)])


def test_augment_moves_image_and_masks_together():
    rng = np.random.default_rng(0)
    m = np.zeros((2, 16, 16), bool)
    m[:, 2:6, 3:12] = True
    img = np.repeat(m[0, :, :, None].astype(np.float32), 3, -1)
    aug = Augment(brightness=0.0, contrast=0.0)
    for _ in range(10):
        a, b = aug(img, m, rng)
        assert np.array_equal(a[..., 0] > 0.5, b[0]) and np.array_equal(b[0], b[1])


def test_cache_roundtrip(synth, tmp_path):
    c = build_cache(synth, 32, cache_dir=tmp_path)
    again = build_cache(synth, 32, cache_dir=tmp_path)  # from the npz
    assert len(c) == 20 and c.images.dtype == np.uint8 and c.images.shape[1:3] == (32, 32)
    assert np.array_equal(c.images, again.images) and c.case_ids == again.case_ids
    assert all(np.array_equal(a, b) for a, b in zip(c.masks, again.masks))
    assert np.allclose(c.iaa, again.iaa, equal_nan=True)


def test_iaa_trains_and_checkpoint_predicts_the_same(synth, tmp_path):
    cfg, res, hist = _fit(synth, tmp_path, "iaa", epochs=4)
    assert res.checkpoint_path.is_file() and not res.cancelled
    assert hist.epochs[-1]["train_loss"] < hist.epochs[0]["train_loss"]
    m = res.metrics["iaa"]
    assert {"mae", "pearson", "spearman", "baseline_mae"} <= set(m)
    card = json.loads(res.checkpoint_path.read_text())
    assert card["metrics"]["test"]["iaa"]["mae"] == pytest.approx(m["mae"])
    # the split is in the card and no group leaks
    held = card["split"]["groups"]
    assert not set(held["val"]) & set(held["test"])
    model, _, a, x = _same_prediction(cfg, lambda o: o["iaa"])
    assert (tmp_path / f"{cfg.name}.metrics.json").is_file()


def test_iaa_with_diagnosis_head(synth, tmp_path):
    cfg, res, hist = _fit(synth, tmp_path, "iaa", epochs=2, diagnosis="benign_malignant")
    card = json.loads(res.checkpoint_path.read_text())
    assert card["classes"] == ["benign", "malignant"]
    assert "balanced_accuracy" in res.metrics["diagnosis"] and "auroc" in res.metrics["diagnosis"]


def test_in_memory_model_matches_loaded(synth, tmp_path):
    from napari_iaa.models.checkpoint import load_checkpoint

    class Keep(HistoryCallback):
        def on_fit_end(self, trainer, result):
            self.model = trainer.raw_model

    keep = Keep()
    cfg = FitConfig(task="quality", data=synth, out=tmp_path, epochs=1, **TINY)
    fit(cfg, callbacks=[keep])
    loaded, _ = load_checkpoint(latest_state_dir(cfg.state_dir) / "model.json")
    keep.model.eval()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(keep.model(x), loaded(x), atol=1e-6)


def test_mhr_then_calibrate(synth, tmp_path):
    from napari_iaa.models.checkpoint import load_checkpoint

    cfg, res, hist = _fit(synth, tmp_path, "mhr", epochs=3)
    assert hist.epochs[-1]["train_loss"] < hist.epochs[0]["train_loss"]
    un = res.metrics["uncalibrated"]
    assert {"brier", "rps", "ece_pooled", "ece_per_annotator", "thresholded_dice"} <= set(un)
    assert (tmp_path / f"{cfg.name}_reliability.png").stat().st_size > 1000
    cal = FitConfig(task="calibrate", data=synth, out=tmp_path, name="mhr-cal", models=[str(res.checkpoint_path)],
                    device="cpu")
    res2 = fit(cal)
    model, card = load_checkpoint(res2.checkpoint_path)
    assert card.calibrator and card.calibrator["kind"] == "isotonic"
    assert card.task == "mhr" and card.name == "mhr-cal"
    for key in ("uncalibrated", "isotonic", "peak_isotonic", "temperature"):
        assert "ece_pooled" in res2.metrics[key]
    assert res2.metrics["shipped"] == "isotonic"
    # asked for, the peak + isotonic calibrator goes into the card (same fits, same test)
    res3 = fit(replace(cal, name="mhr-peak", calibrator="peak_isotonic"))
    _, card3 = load_checkpoint(res3.checkpoint_path)
    assert card3.calibrator["kind"] == "peak_isotonic" and res3.metrics["shipped"] == "peak_isotonic"
    assert res3.metrics["peak_isotonic"]["brier"] == pytest.approx(res2.metrics["peak_isotonic"]["brier"])
    # the calibrator is fitted on the calib split only: its size is what the card said
    mcard = json.loads(res.checkpoint_path.read_text())
    assert res2.metrics["n_calibration_cases"] == mcard["split"]["n_cases"]["calib"]


def test_mhr_binary_baseline(synth, tmp_path):
    cfg, res, _ = _fit(synth, tmp_path, "mhr", epochs=1, binary=True)
    card = json.loads(res.checkpoint_path.read_text())
    assert card["n_levels"] == 2


def test_quality_trains_on_the_whole_range(synth, tmp_path):
    from training.quality_data import QualityTorchDataset

    c = build_cache(synth, 64)
    ds = QualityTorchDataset(c, list(range(len(c))) * 4, (0.5,) * 3, (0.25,) * 3, seed=0, size=32, fixed=True)
    targets = np.array([ds.sample(k)[2] for k in range(len(ds))])
    assert targets.min() < 0.2 and targets.max() > 0.8
    cfg, res, hist = _fit(synth, tmp_path, "quality", epochs=3)
    assert hist.epochs[-1]["train_loss"] < hist.epochs[0]["train_loss"]
    assert {"pearson", "spearman", "mae", "baseline_mae"} <= set(res.metrics["quality"])


def test_cancel_keeps_last_good_checkpoint_and_resume_continues(synth, tmp_path):
    from napari_iaa.models.checkpoint import load_checkpoint

    class Count(HistoryCallback):
        n = 0

        def on_step(self, trainer, epoch, step, loss):
            Count.n += 1

    def stop():
        return Count.n >= 4  # 3 steps per epoch here: stops inside the second epoch

    cfg = FitConfig(task="iaa", data=synth, out=tmp_path, epochs=3, **TINY)
    res = fit(cfg, should_stop=stop, callbacks=[Count()])
    assert res.cancelled and res.checkpoint_path is not None
    before = res.checkpoint_path.read_bytes()
    load_checkpoint(res.checkpoint_path)  # the best model so far still loads
    assert latest_state_dir(cfg.state_dir).name == "epoch-0000"

    cfg2 = FitConfig(task="iaa", data=synth, out=tmp_path, epochs=3, resume=True, **TINY)
    hist = HistoryCallback()
    res2 = fit(cfg2, callbacks=[hist])
    assert not res2.cancelled
    assert [e["epoch"] for e in hist.epochs] == [1, 2]  # continued, did not restart
    assert [h["epoch"] for h in res2.history] == [0, 1, 2]
    assert latest_state_dir(cfg.state_dir).name == "epoch-0002"
    assert res2.checkpoint_path.read_bytes() != before or res2.metrics


def test_cli_fit_and_evaluate(synth, tmp_path, capsys):
    from training.__main__ import main

    assert main(["fit", "--task", "quality", "--data", str(synth), "--size", "32", "--epochs", "1",
                 "--batch-size", "4", "--backbone", "resnet10t", "--out", str(tmp_path), "--name", "q",
                 "--device", "cpu", "--threads", "1"]) == 0
    assert main(["evaluate", "--model", str(tmp_path / "q.json"), "--data", str(synth), "--device", "cpu",
                 "--out", str(tmp_path / "ev")]) == 0
    ev = json.loads((tmp_path / "ev" / "q.eval.json").read_text())
    assert ev["split"] == "test" and "pearson" in ev["quality"]
    assert main(["fit", "--task", "iaa", "--data", str(tmp_path / "missing"), "--device", "cpu"]) == 2


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError):
        FitConfig(task="nope", data=".")
    with pytest.raises(ConfigError):
        FitConfig(task="calibrate", data=".")
    with pytest.raises(ConfigError):
        FitConfig(task="iaa", data=".", val_fraction=0.5, test_fraction=0.5)


def test_training_input_matches_the_plugins_preprocessing(synth):
    """A cached, un-augmented training image equals prepare_image of the original."""
    from napari_iaa.data import open_dataset
    from napari_iaa.models.preprocess import prepare_image
    from training.datasets import IAATorchDataset

    c = build_cache(synth, 32)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ds = IAATorchDataset(c, [0], mean, std)
    case = open_dataset(synth).load(c.case_ids[0])
    ref = prepare_image(case.image, 32, mean, std)
    assert torch.allclose(ds[0]["image"], ref, atol=0.6 / 255 / min(std))


def test_fit_in_a_worker_thread_cancelled_from_outside(synth, tmp_path):
    """The GUI's pattern: fit in a thread, events through a queue, cancel with an Event."""
    import queue
    import threading

    from training import QueueCallback

    q: queue.Queue = queue.Queue()
    stop = threading.Event()
    box = {}
    cfg = FitConfig(task="iaa", data=synth, out=tmp_path, epochs=50, **TINY)
    th = threading.Thread(target=lambda: box.setdefault("res", fit(cfg, should_stop=stop.is_set,
                                                                   callbacks=[QueueCallback(q)])))
    th.start()
    while True:
        ev = q.get(timeout=120)
        if ev["event"] == "epoch_end":
            stop.set()
            break
    th.join(timeout=120)
    assert not th.is_alive()
    res = box["res"]
    assert res.cancelled and res.checkpoint_path.is_file()
    assert latest_state_dir(cfg.state_dir) is not None


@pytest.mark.slow
def test_killed_process_leaves_a_loadable_checkpoint_and_resumes(synth, tmp_path):
    """SIGKILL part-way through the second epoch; the last good state loads and resumes."""
    import os
    import subprocess
    import sys

    from napari_iaa.models.checkpoint import load_checkpoint

    args = [sys.executable, "-m", "training", "fit", "--task", "mhr", "--data", str(synth), "--size", "32",
            "--epochs", "50", "--batch-size", "4", "--backbone", "resnet10t", "--out", str(tmp_path),
            "--name", "m", "--device", "cpu", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        for line in proc.stdout:
            if line.startswith("epoch 1/"):
                break
    finally:
        proc.kill()
        proc.wait()
    load_checkpoint(tmp_path / "m.json")
    state = latest_state_dir(tmp_path / "m_state")
    assert state is not None and load_checkpoint(state / "model.json")
    cfg = FitConfig(task="mhr", data=synth, out=tmp_path, name="m", epochs=int(state.name[-4:]) + 2,
                    resume=True, **TINY)
    hist = HistoryCallback()
    res = fit(cfg, callbacks=[hist])
    assert not res.cancelled and [e["epoch"] for e in hist.epochs][0] == int(state.name[-4:]) + 1


def test_fit_gives_the_callers_thread_setting_back(synth, tmp_path):
    """``threads`` applies to the run only: a viewer or notebook keeps its own setting."""
    original = torch.get_num_threads()
    torch.set_num_threads(2)  # what the caller had (1 would not show a restore)
    seen = []

    class Probe(HistoryCallback):
        def on_step(self, trainer, epoch, step, loss):
            seen.append(torch.get_num_threads())

    cfg = FitConfig(task="iaa", data=synth, out=tmp_path, epochs=1, **{**TINY, "threads": 1})
    try:
        fit(cfg, callbacks=[Probe()])
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(original)



def test_mhr_binary_member_trained_on_drawn_annotators(synth, tmp_path):
    cfg, res, hist = _fit(synth, tmp_path, "mhr", epochs=2, binary=True, binary_target="rater")
    card = json.loads(res.checkpoint_path.read_text())
    assert card["n_levels"] == 2 and "annotator" in card["extra"]["mhr_training"]
    assert np.isfinite(hist.epochs[-1]["val_loss"])
