"""Exact ordinal targets: the soft cumulative RPS target and one level rounding everywhere."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_iaa.agreement import agreement_levels
from napari_iaa.agreement.consensus import fraction_to_level
from napari_iaa.calibration import mhr_to_levels, soft_level_cdf, soft_rps
from training.datasets import CaseCache, MHRTorchDataset, ordinal_levels
from training.losses import rps_loss, soft_rps_loss
from training.losses import soft_level_cdf as torch_soft_cdf


def _masks(k: int, n: int) -> np.ndarray:
    """``n`` annotators, the first ``k`` marking the one pixel."""
    m = np.zeros((n, 1, 1), bool)
    m[:k] = True
    return m


def _cdf(k: int, n: int, levels: int = 5) -> np.ndarray:
    return torch_soft_cdf(torch.tensor([[k / n]]), levels)[0, :, 0].numpy()


def test_one_of_eight_raters_is_not_level_zeros_target():
    level0 = (np.arange(4) >= 0).astype(float)  # the step of level 0: P(level <= k) = 1
    got = _cdf(1, 8)
    assert not np.allclose(got, level0)
    assert got == pytest.approx([0.5, 1.0, 1.0, 1.0])
    # expected level = sum_k (1 - CDF_k) = 0.5 = 1/8 * 4, exactly
    assert float(np.sum(1 - got)) == pytest.approx(0.5)


def test_two_and_three_of_five_give_different_targets_with_exact_expected_levels():
    a, b = _cdf(2, 5), _cdf(3, 5)
    assert not np.allclose(a, b)
    assert float(np.sum(1 - a)) == pytest.approx(1.6, abs=1e-6)
    assert float(np.sum(1 - b)) == pytest.approx(2.4, abs=1e-6)
    assert a == pytest.approx([0.0, 0.4, 1.0, 1.0], abs=1e-6)


def test_soft_rps_of_a_perfect_soft_prediction_is_zero():
    mhr = torch.tensor([[[0.0, 1 / 8, 2 / 5], [3 / 5, 2 / 3, 1.0]]])
    cdf = torch.cat([torch_soft_cdf(mhr, 5), torch.ones(1, 1, 2, 3)], 1)
    pmf = torch.diff(cdf, dim=1, prepend=torch.zeros(1, 1, 2, 3))
    logits = torch.log(pmf.clamp_min(1e-12))
    assert float(soft_rps_loss(logits, mhr)) < 1e-10
    # any other prediction scores worse, and the numpy twin agrees
    other = logits.roll(1, dims=1)
    assert float(soft_rps_loss(other, mhr)) > 0.01
    probs = torch.softmax(other, 1)[0].numpy()
    assert soft_rps(probs, mhr[0].numpy()) == pytest.approx(float(soft_rps_loss(other, mhr)), rel=1e-5)
    assert soft_level_cdf(mhr[0].numpy(), 5)[:4] == pytest.approx(torch_soft_cdf(mhr, 5)[0].numpy(), abs=1e-6)


def test_soft_rps_equals_hard_rps_on_whole_levels():
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(size=(2, 5, 3, 3)).astype(np.float32))
    levels = torch.from_numpy(rng.integers(0, 5, size=(2, 3, 3)))
    assert float(soft_rps_loss(logits, levels.float() / 4)) == pytest.approx(float(rps_loss(logits, levels)), rel=1e-6)


def test_a_free_prediction_learns_the_exact_fraction():
    # one pixel seen by 1 of 8 annotators: RPS on rounded levels teaches level 0 (np.rint)
    # or 1 (half up); the soft target teaches an expected fraction of exactly 1/8
    logits = torch.zeros(1, 5, 1, 1, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    mhr = torch.full((1, 1, 1), 1 / 8)
    for _ in range(400):
        opt.zero_grad()
        soft_rps_loss(logits, mhr).backward()
        opt.step()
    probs = torch.softmax(logits.detach(), 1)[0, :, 0, 0]
    expected_fraction = float((probs * torch.arange(5)).sum() / 4)
    assert expected_fraction == pytest.approx(1 / 8, abs=0.01)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 8, 11])
@pytest.mark.parametrize("levels", [2, 3, 5, 9])
def test_one_rounding_everywhere(n, levels):
    stack = np.zeros((n, 1, n + 1), bool)
    for k in range(n + 1):
        stack[:k, 0, k] = True  # pixel k: k of n annotators
    frac = stack.mean(0, dtype=np.float32)
    want = np.floor(np.arange(n + 1) / n * (levels - 1) + 0.5 + 1e-9).astype(int)  # half up
    assert fraction_to_level(frac, levels)[0].tolist() == want.tolist()
    assert agreement_levels(stack, levels)[0].tolist() == want.tolist()
    assert mhr_to_levels(frac, levels)[0].tolist() == want.tolist()
    assert ordinal_levels(stack, levels)[0].tolist() == want.tolist()
    cache = CaseCache(size=n + 1, images=np.zeros((1, 1, n + 1, 1), np.uint8), masks=[stack],
                      iaa=np.zeros(1, np.float32), case_ids=["c"], groups=[None], raters=[[str(i) for i in range(n)]])
    item = MHRTorchDataset(cache, [0], (0.5,) * 3, (0.5,) * 3, n_levels=levels)[0]
    assert item["levels"][0].tolist() == want.tolist()
    assert item["mhr"][0].numpy() == pytest.approx(np.arange(n + 1) / n)


def test_one_of_eight_rounds_up_not_to_even():
    assert int(fraction_to_level(np.float32(1 / 8), 5)) == 1  # np.rint(0.5) would give 0
    assert int(fraction_to_level(np.float32(5 / 6), 4)) == 3  # 2.49999994 in float32


def test_a_tiny_mhr_fit_learns_with_the_soft_target(tmp_path):
    from napari_iaa.data import generate_synthetic_dataset
    from training import FitConfig, HistoryCallback, fit

    root = tmp_path / "syn"
    generate_synthetic_dataset(root, n=12, seed=5, size=(40, 40), n_annotators=(3, 8))
    hist = HistoryCallback()
    cfg = FitConfig(task="mhr", data=root, out=tmp_path, epochs=3, backbone="resnet10t", size=32, batch_size=4,
                    lr=3e-3, device="cpu", threads=1, val_fraction=0.2, test_fraction=0.2, calib_fraction=0.2,
                    augment=False)
    res = fit(cfg, callbacks=[hist])
    assert hist.epochs[-1]["train_loss"] < hist.epochs[0]["train_loss"]
    card = json.loads(res.checkpoint_path.read_text())
    assert "soft cumulative target" in card["extra"]["mhr_training"]
    un = res.metrics["uncalibrated"]
    assert 0.0 <= un["rps"] <= 1.0 and 0.0 <= un["rps_rounded_levels"] <= 1.0
    assert 0.0 <= un["curvas"]["ece_mean"] <= 1.0
    assert res.metrics["summary"]["uncalibrated"]["curvas_ece"] == un["curvas"]["ece_mean"]


def _rater_cache() -> CaseCache:
    """One 1 x 4 case; annotator k marks the first k + 1 pixels (4 different masks)."""
    stack = np.zeros((4, 1, 4), bool)
    for k in range(4):
        stack[k, 0, : k + 1] = True
    return CaseCache(size=4, images=np.zeros((1, 1, 4, 1), np.uint8), masks=[stack],
                     iaa=np.zeros(1, np.float32), case_ids=["c"], groups=[None], raters=[list("abcd")])


def test_a_rater_member_learns_one_annotators_mask_drawn_per_sample_and_epoch():
    cache = _rater_cache()
    ds = MHRTorchDataset(cache, [0] * 40, (0.5,) * 3, (0.5,) * 3, seed=1, binary=True, target="rater")
    drawn = {tuple(ds[k]["mv"][0].numpy().tolist()) for k in range(40)}
    annotators = {tuple(m[0].astype(np.float32).tolist()) for m in cache.masks[0]}
    assert drawn <= annotators and len(drawn) >= 3  # whole masks, several annotators
    ds.set_epoch(1)
    later = [tuple(ds[k]["mv"][0].numpy().tolist()) for k in range(40)]
    ds.set_epoch(0)
    assert later != [tuple(ds[k]["mv"][0].numpy().tolist()) for k in range(40)]  # drawn anew each epoch
    # levels are the drawn mask; the soft 2-level RPS of a 0/1 target is the hard RPS of its levels
    item = ds[0]
    assert item["levels"][0].tolist() == item["mv"][0].long().tolist()
    logits = torch.randn(1, 2, 1, 4)
    assert float(soft_rps_loss(logits, item["mv"][None])) == pytest.approx(float(rps_loss(logits, item["levels"][None])))


def test_a_rater_member_is_validated_against_the_annotator_fraction():
    cache = _rater_cache()
    frac = MHRTorchDataset(cache, [0], (0.5,) * 3, (0.5,) * 3, binary=True, target="fraction")[0]
    assert frac["mv"][0].numpy() == pytest.approx([1.0, 0.75, 0.5, 0.25])
    major = MHRTorchDataset(cache, [0], (0.5,) * 3, (0.5,) * 3, binary=True)[0]
    assert major["mv"][0].tolist() == [1.0, 1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="binary target"):
        MHRTorchDataset(cache, [0], (0.5,) * 3, (0.5,) * 3, binary=True, target="union")
