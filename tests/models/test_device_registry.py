"""Device selection and the model registry."""

from __future__ import annotations

import json

import pytest
import torch

from napari_iaa.errors import CheckpointError, ConfigError
from napari_iaa.models import (
    MODELS_ENV,
    ModelRegistry,
    describe_devices,
    pick_device,
    shipped_models_dir,
    user_models_dir,
)
from napari_iaa.models import device as device_mod


def test_pick_device_cpu_and_auto():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    auto = pick_device("auto")
    assert auto.type in {"cuda", "mps", "cpu"}
    assert pick_device(None) == auto


def test_auto_order(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: True)
    assert pick_device("auto").type == "mps"
    monkeypatch.setattr(device_mod, "_mps_available", lambda: False)
    assert pick_device("auto").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto").type == "cuda"


def test_unavailable_device_is_config_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        pick_device("cuda")
    with pytest.raises(ConfigError, match="MPS is not available"):
        pick_device("mps")
    with pytest.raises(ConfigError, match="unknown device"):
        pick_device("tpu9000")


def test_describe_devices():
    d = describe_devices()
    assert d["available"][-1] == "cpu"
    assert d["auto"] in {"cpu", "mps"} or d["auto"].startswith("cuda")
    assert set(d["names"]) == set(d["available"])


# -- registry --------------------------------------------------------------------------


def test_user_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "m"))
    assert user_models_dir() == tmp_path / "m"
    monkeypatch.delenv(MODELS_ENV)
    assert user_models_dir().name == "models"
    assert shipped_models_dir().parts[-2:] == ("sample_data", "models")


def test_registry_lists_skips_invalid_and_picks_default(tmp_path, monkeypatch, tiny_checkpoint):
    user = tmp_path / "user"
    extra = tmp_path / "extra"
    user.mkdir()
    extra.mkdir()
    monkeypatch.setenv(MODELS_ENV, str(user))
    p_user_iaa, _, _ = tiny_checkpoint("iaa", name="user-iaa", folder=user)
    p_old, _, _ = tiny_checkpoint("mhr", name="old-mhr", folder=extra, created="2020-01-01T00:00:00Z")
    p_new, _, _ = tiny_checkpoint("mhr", name="new-mhr", folder=extra, created="2026-01-01T00:00:00Z")
    (extra / "sub").mkdir()
    tiny_checkpoint("quality", name="q", folder=extra / "sub")
    # an invalid card, a card without weights and an unrelated JSON file
    (extra / "broken.json").write_text('{"name": "b", "task": "iaa", "backbone": "x", "architecture": "y"')
    bad = json.loads(p_old.read_text())
    bad["name"], bad["weights"] = "orphan", "orphan.safetensors"
    (extra / "orphan.json").write_text(json.dumps(bad))
    (extra / "history.json").write_text('{"loss": [1, 0.5]}')

    reg = ModelRegistry(paths=[extra], include_shipped=False)
    names = {e.name for e in reg.list()}
    assert names == {"user-iaa", "old-mhr", "new-mhr", "q"}
    problem_files = {p.path.name for p in reg.problems}
    assert problem_files == {"broken.json", "orphan.json"}
    assert all(p.message for p in reg.problems)
    assert [e.name for e in reg.by_task("quality")] == ["q"]
    assert reg.default("mhr").name == "new-mhr"
    reg.set_default("mhr", p_old)
    assert reg.default("mhr").name == "old-mhr"
    assert reg.default("iaa").source == "user"
    assert reg.by_task("iaa")[0].describe()["backbone"] == "test_resnet"
    with pytest.raises(ValueError):
        reg.by_task("segmentation")
    model, card = reg.default("iaa").load()
    assert card.name == "user-iaa" and not model.training


def test_registry_register_and_add_path(tmp_path, monkeypatch, tiny_checkpoint):
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "empty"))
    reg = ModelRegistry(include_shipped=False)
    assert reg.list() == [] and reg.default("iaa") is None
    a = tmp_path / "a"
    a.mkdir()
    p, _, _ = tiny_checkpoint("quality", name="reg-q", folder=a)
    entry = reg.register(p.with_suffix(".safetensors"))
    assert entry.source == "registered" and entry.path == p.resolve()
    assert [e.name for e in reg.list()] == ["reg-q"]
    b = tmp_path / "b"
    b.mkdir()
    tiny_checkpoint("iaa", name="b-iaa", folder=b)
    reg.add_path(b)
    assert {e.name for e in reg.list()} == {"reg-q", "b-iaa"}
    with pytest.raises(CheckpointError):
        reg.register(tmp_path / "missing.json")
