"""Runs too small to learn or to measure anything are flagged, with settings to try."""

from __future__ import annotations

import logging

import pytest

from training import FitConfig, fit
from training.advice import (
    MIN_STEPS,
    TARGET_STEPS,
    run_advice,
    steps_per_epoch,
    temperature_advice,
)
from training.engine import Callback


def _cfg(**kw):
    return FitConfig(task="iaa", data="d", **kw)


def test_qubiq_sized_run_is_flagged_with_settings_that_reach_enough_steps():
    # QUBIQ brain growth: 39 slices; at the defaults 3 epochs are 3 optimizer steps
    sizes = {"train": (27, 27), "val": (6, 6), "test": (6, 6)}
    msgs = run_advice(_cfg(epochs=3, batch_size=32), sizes)
    steps = next(m for m in msgs if "optimizer steps" in m)
    assert steps.startswith("only 3 optimizer steps")
    batch = int(steps.split("--batch-size ")[1].split()[0])
    epochs = int(steps.split("--epochs ")[1].split()[0])
    assert batch < 27 and steps_per_epoch(27, batch) * epochs >= TARGET_STEPS
    assert any(m.startswith("the val split has 6 cases") for m in msgs)
    assert any(m.startswith("the test split has 6 cases") and "--test-fraction" in m for m in msgs)


def test_a_measurable_run_gets_no_warning():
    sizes = {"train": (7414, 420), "val": (1671, 90), "test": (1596, 90)}
    assert run_advice(_cfg(epochs=10, batch_size=32), sizes) == []
    assert steps_per_epoch(7414, 32) * 10 >= MIN_STEPS


def test_one_group_is_too_few_whatever_its_size():
    msgs = run_advice(_cfg(epochs=100), {"train": (5000, 50), "test": (400, 1)})
    assert msgs == [m for m in msgs if "test split has 400 cases from 1 groups" in m] and msgs


def test_temperature_at_its_bound_is_reported():
    assert temperature_advice(1.3, (0.05, 20.0)) is None
    low = temperature_advice(0.05, (0.05, 20.0))
    assert "lower bound" in low and "too flat" in low and "isotonic" in low
    assert "upper bound" in temperature_advice(19.99, (0.05, 20.0))
    assert "failed" in temperature_advice(float("nan"), (0.05, 20.0))


class _Advice(Callback):
    def __init__(self):
        self.messages = []

    def on_advice(self, messages):
        self.messages += messages


def test_fit_warns_callbacks_card_and_log_before_training(tmp_path, caplog):
    from napari_iaa.data import generate_synthetic_dataset
    from napari_iaa.models.card import read_card

    root = tmp_path / "tiny"
    generate_synthetic_dataset(root, n=12, seed=1, size=(40, 40))
    cb = _Advice()
    with caplog.at_level(logging.WARNING, logger="training"):
        res = fit(FitConfig(task="iaa", data=root, out=tmp_path / "m", epochs=1, batch_size=32,
                            backbone="resnet10t", size=32, device="cpu", threads=1),
                  callbacks=[cb])
    assert cb.messages and cb.messages == res.warnings
    assert any("optimizer steps" in m for m in res.warnings)
    assert read_card(res.checkpoint_path).extra["warnings"] == res.warnings
    assert any("optimizer steps" in r.getMessage() for r in caplog.records)


def test_calibrate_reports_a_temperature_at_its_bound(tmp_path, monkeypatch):
    import training.fitting as fitting
    from training.results import FitResult

    def fake_calibrate(config, progress=None, should_stop=None):
        return FitResult(None, metrics={"temperature_value": {"kind": "temperature",
                                                              "temperature": 20.0}})

    monkeypatch.setattr(fitting, "calibrate", fake_calibrate)
    cb = _Advice()
    res = fit(FitConfig(task="calibrate", data="d", models=["m.json"]), callbacks=[cb])
    assert len(res.warnings) == 1 and "upper bound" in res.warnings[0]
    assert cb.messages == res.warnings


@pytest.mark.parametrize("flag", ["--data", "--model"])
def test_help_says_what_data_and_model_accept(flag, capsys):
    from training.__main__ import main

    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    if flag == "--data":
        assert "a folder" in text and "manifest CSV file" in text
    else:
        assert "card (.json)" in text and ".safetensors" in text and "ensemble" in text
