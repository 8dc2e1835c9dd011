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
