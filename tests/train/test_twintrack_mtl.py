"""TwinTrack (binary members + isotonic), the diagnosis-only baseline, default names."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_iaa.errors import ConfigError
from training import FitConfig, fit
from training.__main__ import main
from training.twintrack import member_configs, twintrack, twintrack_name

TINY = dict(backbone="resnet10t", size=32, batch_size=4, lr=3e-3, device="cpu", threads=1,
            val_fraction=0.2, test_fraction=0.2, calib_fraction=0.2, augment=False)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from napari_iaa.data import generate_synthetic_dataset

    root = tmp_path_factory.mktemp("synth") / "syn"
    generate_synthetic_dataset(root, n=20, seed=3, size=(48, 48))
    return root


def test_members_share_the_split_and_differ_in_their_weights():
    cfg = FitConfig(task="mhr", data="d", name="tt", seed=4)
    members = member_configs(cfg, 3)
    assert [m.name for m in members] == ["tt-m1", "tt-m2", "tt-m3"]
    assert {m.seed for m in members} == {4} and [m.weights_seed for m in members] == [4, 5, 6]
    assert all(m.binary and m.task == "mhr" for m in members)
    with pytest.raises(ConfigError, match="at least 3"):
        member_configs(cfg, 2)


def test_twintrack_trains_members_and_calibrates_their_mean(synth, tmp_path):
    from napari_iaa.models.checkpoint import load_checkpoint

    cfg = FitConfig(task="mhr", data=synth, out=tmp_path, name="tt", epochs=1,
                    decoder_width=32, **TINY)
    res = twintrack(cfg, members=3)
    assert not res.cancelled and res.checkpoint_path == tmp_path / "tt.json"
    model, card = load_checkpoint(res.checkpoint_path)
    assert card.architecture == "mhr_ensemble" and len(model.members) == 3
    assert card.calibrator["kind"] == "isotonic"
    assert all(m["n_levels"] == 2 and m["decoder_width"] == 32 for m in card.options["members"])
    cards = [json.loads((tmp_path / f"tt-m{k}.json").read_text()) for k in (1, 2, 3)]
    assert cards[0]["split"]["groups"] == cards[1]["split"]["groups"] == cards[2]["split"]["groups"]
    w = [load_checkpoint(tmp_path / f"tt-m{k}.json")[0].head.weight for k in (1, 2, 3)]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])  # different init seeds
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        mean = torch.stack([m.expected_fraction(x) for m in model.members]).mean(0)
        assert torch.allclose(model(x), mean)
    for block in ("uncalibrated", "isotonic", "temperature"):
        assert block in res.metrics


def test_twintrack_command_line_names_the_ensemble_after_the_data(synth, tmp_path, capsys):
    argv = ["twintrack", "--data", str(synth), "--members", "3", "--epochs", "1", "--out",
            str(tmp_path), "--backbone", "resnet10t", "--size", "32", "--batch-size", "4",
            "--device", "cpu", "--threads", "1", "--val-fraction", "0.2", "--test-fraction",
            "0.2", "--calib-fraction", "0.2", "--decoder-width", "16"]
    assert main(argv) == 0
    assert (tmp_path / f"{twintrack_name(synth)}.json").is_file()
    assert twintrack_name(synth) == "twintrack-syn"
    out = capsys.readouterr()
    assert json.loads(out.out[out.out.index("{"):])["checkpoint"].endswith("twintrack-syn.json")
    assert main(["twintrack", "--data", str(synth), "--members", "2"]) == 2


def test_diagnosis_only_trains_the_diagnosis_head_alone(synth, tmp_path):
    from napari_iaa.models.checkpoint import load_checkpoint

    base = dict(task="iaa", data=synth, out=tmp_path, epochs=2, diagnosis="benign_malignant", **TINY)
    only = fit(FitConfig(name="dx", iaa_weight=0.0, **base))
    both = fit(FitConfig(name="mtl", **base))
    for res in (only, both):
        assert "balanced_accuracy" in res.metrics["diagnosis"]
        assert "val_balanced_accuracy" in res.history[-1] and "val_diag_loss" in res.history[-1]
    # the IAA head got no gradient: its weights are the initial ones (same seed, same init)
    from napari_iaa.models.card import read_card
    from napari_iaa.models.networks import build_model

    card = read_card(only.checkpoint_path)
    torch.manual_seed(0)  # as fit seeds it before building the model
    fresh = build_model(card)
    model, _ = load_checkpoint(only.checkpoint_path)
    assert torch.equal(model.iaa_head[-1].weight, fresh.iaa_head[-1].weight)
    assert not torch.equal(load_checkpoint(both.checkpoint_path)[0].iaa_head[-1].weight,
                           fresh.iaa_head[-1].weight)
    assert card.extra["iaa_training"].startswith("diagnosis only")
    with pytest.raises(ConfigError, match="without --diagnosis"):
        FitConfig(task="iaa", data="d", iaa_weight=0.0)


def test_monitor_picks_the_best_epoch_by_the_named_metric(synth, tmp_path):
    res = fit(FitConfig(task="iaa", data=synth, out=tmp_path, epochs=3, name="m",
                        diagnosis="benign_malignant", monitor="val_diag_loss", **TINY))
    losses = [h["val_diag_loss"] for h in res.history]
    assert res.metrics["training"]["best_epoch"] == int(np.argmin(losses))


def test_default_name_comes_from_the_folder_not_the_manifest(tmp_path):
    for name in ("qubiq", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.csv").write_text("case_id,image,mask\n")
    a = FitConfig(task="iaa", data=tmp_path / "qubiq" / "manifest.csv")
    b = FitConfig(task="iaa", data=tmp_path / "other" / "manifest.csv")
    assert (a.name, b.name) == ("iaa-qubiq", "iaa-other")
    assert FitConfig(task="mhr", data=tmp_path / "qubiq").name == "mhr-qubiq"


def test_quality_loss_mse_is_the_papers_squared_error():
    from training.tasks.quality import QualityTask

    pred, target = torch.tensor([0.2, 0.9, 0.5]), torch.tensor([0.0, 1.0, 0.9])
    batch = {"image": pred, "dice": target}
    losses = {}
    for name in ("mse", "smoothl1"):
        task = QualityTask.__new__(QualityTask)  # step needs only the settings
        task.config = FitConfig(task="quality", data="d", quality_loss=name)
        losses[name] = float(task.step(lambda x: x, batch))
    assert losses["mse"] == pytest.approx(float(((pred - target) ** 2).mean()))
    assert losses["smoothl1"] != pytest.approx(losses["mse"])
    with pytest.raises(ConfigError, match="quality_loss"):
        FitConfig(task="quality", data="d", quality_loss="l2")


def test_mhr_models_of_two_input_sizes_are_compared_at_the_native_size(synth, tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "compare_mhr_native", Path(__file__).parents[2] / "scripts" / "compare_mhr_native.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    small = fit(FitConfig(task="mhr", data=synth, out=tmp_path, name="m32", epochs=1, binary=True,
                          decoder_width=32, **TINY)).checkpoint_path
    native = fit(FitConfig(task="mhr", data=synth, out=tmp_path, name="m48", epochs=1, binary=True,
                           decoder_width=32, **{**TINY, "size": 48})).checkpoint_path
    out = script.main(["--data", str(synth), "--split", "test", "--native", "48", str(small), str(native)])
    for path in (small, native):
        assert 0.0 <= out[str(path)]["uncalibrated"]["curvas_thresholded_dice"] <= 1.0
    # a model measured at its own (native) size gives the numbers its training evaluation gave
    card = json.loads(native.read_text())
    assert out[str(native)]["uncalibrated"]["curvas_ece"] == pytest.approx(
        card["metrics"]["test"]["summary"]["uncalibrated"]["curvas_ece"], rel=1e-5)
    with pytest.raises(SystemExit, match="native size"):
        script.main(["--data", str(synth), "--native", "64", str(small)])


def test_twintrack_refuses_slice_context_members():
    with pytest.raises(ConfigError, match="single slices"):
        member_configs(FitConfig(task="mhr", data="d", name="tt", slice_context=True), 3)
