"""FitConfig is the one source of the training settings: the CLI options come from it."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from training.config import (
    TASK_DEFAULTS,
    TASK_NAMES,
    FitConfig,
    add_config_arguments,
    config_fields,
    config_from_args,
    task_defaults,
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_config_arguments(p)
    return p


def test_every_field_has_help():
    for name, f in config_fields().items():
        assert f.metadata.get("help"), name


def test_cli_without_options_gives_the_dataclass_defaults():
    args = _parser().parse_args(["--task", "mhr", "--data", "d"])
    assert config_from_args(args) == FitConfig(task="mhr", data="d")


def test_cli_options_reach_the_config():
    args = _parser().parse_args([
        "--task", "calibrate", "--data", "d", "--model", "a.json", "--model", "b.json",
        "--size", "64", "--lr", "0.002", "--no-augment", "--binary", "--max-cases", "10",
        "--batch-size", "8", "--empty-pair", "one"])
    cfg = config_from_args(args)
    assert cfg.models == ["a.json", "b.json"] and cfg.size == 64 and cfg.lr == 0.002
    assert not cfg.augment and cfg.binary and cfg.max_cases == 10 and cfg.batch_size == 8
    assert cfg.empty_pair == "one"
    with pytest.raises(SystemExit):
        _parser().parse_args(["--task", "iaa", "--data", "d", "--empty-pair", "two"])


def test_help_shows_the_dataclass_defaults():
    text = _parser().format_help()
    for name in ("backbone", "size", "lr", "epochs", "batch_size"):
        default = next(f.default for f in dataclasses.fields(FitConfig) if f.name == name)
        assert f"(default: {default})" in " ".join(text.split()), name


def test_task_defaults_apply_on_the_command_line(monkeypatch):
    monkeypatch.setitem(TASK_DEFAULTS, "mhr", {"batch_size": 16})
    assert task_defaults("mhr")["batch_size"] == 16 and task_defaults("iaa")["batch_size"] == 32
    assert config_from_args(_parser().parse_args(["--task", "mhr", "--data", "d"])).batch_size == 16
    given = _parser().parse_args(["--task", "mhr", "--data", "d", "--batch-size", "4"])
    assert config_from_args(given).batch_size == 4
    assert "mhr: 16" in _parser().format_help()
    assert set(TASK_DEFAULTS) == set(TASK_NAMES)
