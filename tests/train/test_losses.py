"""Losses against straightforward reference computations."""

from __future__ import annotations

import numpy as np
import torch

from training.losses import (
    bce_dice_loss,
    class_weights,
    focal_loss,
    rps_loss,
    smooth_l1_loss,
    soft_dice_loss,
)


def _rps_reference(probs: np.ndarray, level: int) -> float:
    # probs: (L,) one element; RPS = 1/(L-1) sum_k (sum_{j<=k} p_j - [level <= k])^2
    L = len(probs)
    total = 0.0
    for k in range(L - 1):
        total += (sum(probs[: k + 1]) - (1.0 if level <= k else 0.0)) ** 2
    return total / (L - 1)


def test_rps_matches_reference_on_random_inputs():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 4, 4)).astype(np.float32)
    levels = rng.integers(0, 5, size=(3, 4, 4))
    got = float(rps_loss(torch.from_numpy(logits), torch.from_numpy(levels)))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ref = np.mean([
        _rps_reference(probs[b, :, i, j], levels[b, i, j])
        for b in range(3) for i in range(4) for j in range(4)
    ])
    assert abs(got - ref) < 1e-5


def test_rps_known_values():
    # a certain, correct prediction scores 0; certain and maximally wrong scores 1
    big = 50.0
    logits = torch.tensor([[big, 0, 0, 0]]).float()  # all mass on level 0
    assert float(rps_loss(logits, torch.tensor([0]))) < 1e-6
    assert abs(float(rps_loss(logits, torch.tensor([3]))) - 1.0) < 1e-6
    # one level off out of 4 thresholds: 1/3
    assert abs(float(rps_loss(logits, torch.tensor([1]))) - 1.0 / 3.0) < 1e-6


def test_rps_mask_drops_elements():
    logits = torch.tensor([[50.0, 0.0], [50.0, 0.0]])
    levels = torch.tensor([0, 1])
    assert float(rps_loss(logits, levels, mask=torch.tensor([1.0, 0.0]))) < 1e-6
    assert abs(float(rps_loss(logits, levels)) - 0.5) < 1e-6


def test_focal_loss_matches_reference_and_reduces_to_ce():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 3)).astype(np.float32)
    target = np.array([0, 1, 2, 2, 1, 0])
    w = np.array([0.5, 1.0, 2.0], dtype=np.float32)
    gamma = 2.0
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    py = p[np.arange(6), target]
    ref = np.mean(-w[target] * (1 - py) ** gamma * np.log(py))
    got = float(focal_loss(torch.from_numpy(logits), torch.from_numpy(target), gamma=gamma, weight=torch.from_numpy(w)))
    assert abs(got - ref) < 1e-5
    ce = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target))
    assert abs(float(focal_loss(torch.from_numpy(logits), torch.from_numpy(target), gamma=0.0)) - float(ce)) < 1e-5


def test_focal_ignores_missing_labels():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    a = focal_loss(logits, torch.tensor([0, -100]))
    b = focal_loss(logits[:1], torch.tensor([0]))
    assert abs(float(a) - float(b)) < 1e-7
    assert float(focal_loss(logits, torch.tensor([-100, -100]))) == 0.0


def test_class_weights_inverse_frequency():
    w = class_weights([0, 0, 0, 1], 2)
    assert w[1] > w[0]
    assert abs(float(w[1] / w[0]) - 3.0) < 1e-5


def test_soft_dice_and_smooth_l1():
    t = torch.zeros(2, 8, 8)
    t[:, 2:5, 2:5] = 1
    assert float(soft_dice_loss(t, t, eps=1e-6)) < 1e-6
    assert float(soft_dice_loss(1 - t, t, eps=1e-6)) > 0.99
    assert float(bce_dice_loss(t, t)) < 1e-3
    pred = torch.tensor([0.5, 0.2, 9.0])
    target = torch.tensor([0.5, 0.25, float("nan")])
    got = float(smooth_l1_loss(pred, target, beta=0.1))
    assert abs(got - 0.5 * (0.5 * 0.05**2 / 0.1)) < 1e-7
