"""Shipping: copies load, and the metrics table shows values next to baselines."""

from __future__ import annotations

import json

import pytest
import torch

from napari_iaa.errors import CheckpointError
from training.export import metrics_table, ship


def test_ship_copies_loadable_checkpoints_and_tabulates(tmp_path):
    from napari_iaa.models.card import ModelCard
    from napari_iaa.models.checkpoint import save_checkpoint
    from napari_iaa.models.networks import build_model

    card = ModelCard(name="q", task="quality", backbone="resnet10t", input_size=(32, 32))
    card.metrics = {"test": {"quality": {"n": 10, "mae": 0.1, "pearson": 0.8, "spearman": 0.7,
                                         "baseline_mae": 0.3, "baseline_constant": 0.5}}}
    torch.manual_seed(0)
    save_checkpoint(build_model(card), card, tmp_path / "src" / "q")
    (tmp_path / "src" / "q_state").mkdir()  # training state is never shipped
    out = ship(["q"], tmp_path / "src", tmp_path / "dest")
    assert out == [tmp_path / "dest" / "q.json"]
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["q.json", "q.safetensors"]
    table = metrics_table(out)
    assert "| q | quality MAE (predicted vs true Dice) | 0.100 | 0.300 (constant 0.500) |" in table
    # a tampered copy is refused when shipping again
    (tmp_path / "src" / "q.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError):
        ship(["q"], tmp_path / "src", tmp_path / "dest2")
    assert not (tmp_path / "dest2" / "q.safetensors").exists()
    assert json.loads((tmp_path / "dest" / "q.json").read_text())["name"] == "q"


def test_ship_half_halves_the_weights_and_predicts_the_same(tmp_path):
    from napari_iaa.models.card import ModelCard
    from napari_iaa.models.checkpoint import load_checkpoint, save_checkpoint
    from napari_iaa.models.networks import build_model

    card = ModelCard(name="i", task="iaa", backbone="resnet10t", input_size=(32, 32))
    torch.manual_seed(0)
    save_checkpoint(build_model(card).eval(), card, tmp_path / "src" / "i")
    ship(["i"], tmp_path / "src", tmp_path / "half", half=True)
    full = (tmp_path / "src" / "i.safetensors").stat().st_size
    half = (tmp_path / "half" / "i.safetensors").stat().st_size
    assert half < 0.55 * full
    m32, _ = load_checkpoint(tmp_path / "src" / "i.json")
    m16, c16 = load_checkpoint(tmp_path / "half" / "i.json")
    assert c16.extra["stored_dtype"] == "float16"
    assert next(m16.parameters()).dtype == torch.float32  # cast back on load
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        a, b = m32.eval()(x)["iaa"], m16.eval()(x)["iaa"]
    assert torch.allclose(a, b, atol=2e-3)
