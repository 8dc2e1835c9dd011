"""Tiny models and checkpoints shared by the model tests."""

from __future__ import annotations

import pytest
import torch

from napari_iaa.models import ModelCard, build_model, save_checkpoint

TINY = "test_resnet"
SIZE = (64, 64)


def _make_card(task: str, name: str | None = None, **kw) -> ModelCard:
    defaults = {
        "iaa": {},
        "mhr": {"n_levels": 5, "options": {"decoder_channels": [32, 16, 16, 16]}},
        "quality": {"options": {"hidden": 32}},
    }[task]
    return ModelCard(name=name or f"tiny-{task}", task=task, backbone=TINY, input_size=SIZE,
                     **{**defaults, **kw})


def _make_model(card: ModelCard, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(card)
    # move BatchNorm statistics away from the defaults so a bad load would show
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture
def make_card():
    """Factory: ``make_card(task, name=None, **card_kw) -> ModelCard`` (tiny backbone)."""
    return _make_card


@pytest.fixture
def make_model():
    """Factory: ``make_model(card, seed=0) -> nn.Module`` in eval mode."""
    return _make_model


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """Factory: ``tiny_checkpoint(task, **card_kw) -> (card_path, model, card)``."""

    def make(task: str, name: str | None = None, folder=None, seed: int = 0, **kw):
        card = _make_card(task, name, **kw)
        model = _make_model(card, seed)
        path = save_checkpoint(model, card, (folder or tmp_path) / card.name)
        return path, model, card

    return make
