"""2.5D input (neighbouring slices as channels) and the quality metric on non-empty masks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training import FitConfig, fit
from training.context import slice_neighbours, with_slice_context
from training.datasets import CaseCache


def _stack_cache(ids, channels=1):
    n = len(ids)
    images = np.stack([np.full((4, 4, channels), 10 * k, dtype=np.uint8) for k in range(n)])
    return CaseCache(size=4, images=images, masks=[np.zeros((2, 4, 4), bool)] * n,
                     iaa=np.zeros(n, np.float32), case_ids=list(ids), groups=[i.split("/")[0] for i in ids],
                     meta=[{} for _ in ids])


def test_neighbours_follow_slice_numbers_within_one_nodule_only():
    # out of order on purpose, two nodules, one gap (slice-4 missing)
    ids = ["P1/nodule-0/slice-1", "P1/nodule-0/slice-0", "P1/nodule-0/slice-2",
           "P1/nodule-1/slice-3", "P1/nodule-0/slice-5", "P2/nodule-0/slice-2"]
    prev, nxt = slice_neighbours(_stack_cache(ids))
    assert prev.tolist() == [1, 1, 0, 3, 4, 5]
    assert nxt.tolist() == [2, 0, 2, 3, 4, 5]


def test_context_channels_are_previous_slice_and_next():
    ids = ["P1/nodule-0/slice-0", "P1/nodule-0/slice-1", "P1/nodule-0/slice-2"]
    c = with_slice_context(_stack_cache(ids))
    assert c.images.shape == (3, 4, 4, 3)
    assert c.images[1, 0, 0].tolist() == [0, 10, 20]
    assert c.images[0, 0, 0].tolist() == [0, 0, 10]  # no slice below: the slice itself
    assert c.images[2, 0, 0].tolist() == [10, 20, 20]
    assert with_slice_context(c) is c  # already three channels: unchanged
    rgb = _stack_cache(ids, channels=3)
    assert with_slice_context(rgb) is rgb


def test_iaa_fit_with_slice_context_on_lidc(lidc_root, tmp_path):
    cfg = FitConfig(task="iaa", data=lidc_root, out=tmp_path, name="i25", epochs=1, backbone="resnet10t",
                    size=32, batch_size=8, lr=1e-3, device="cpu", threads=1, slice_context=True,
                    val_fraction=0.34, test_fraction=0.33, max_cases=120)
    res = fit(cfg)
    card = json.loads((tmp_path / "i25.json").read_text())
    assert "2.5D" in card["extra"]["input"] and card["extra"]["config"]["slice_context"] is True
    assert np.isfinite(res.metrics["iaa"]["mae"])
    from training.evaluate import evaluate_checkpoint

    ev = evaluate_checkpoint(tmp_path / "i25.json", lidc_root, max_cases=120, device="cpu", workers=1)
    assert abs(ev["iaa"]["mae"] - res.metrics["iaa"]["mae"]) < 1e-6  # the card's input is rebuilt


def test_quality_reports_non_empty_masks_separately(tmp_path):
    from napari_iaa.data import generate_synthetic_dataset

    root = tmp_path / "syn"
    generate_synthetic_dataset(root, n=16, seed=5, size=(48, 48))
    cfg = FitConfig(task="quality", data=root, out=tmp_path, name="q", epochs=1, backbone="resnet10t",
                    size=32, batch_size=4, device="cpu", threads=1, val_fraction=0.25, test_fraction=0.25)
    m = fit(cfg).metrics
    emptied = m["by_corruption"].get("empty", {}).get("n", 0)
    assert m["quality_nonempty"]["n"] <= m["quality"]["n"] - emptied  # emptied masks are left out
    assert 0 < m["quality_real_nonempty"]["n"] <= min(m["quality_nonempty"]["n"], m["by_corruption"]["clean"]["n"])


def test_mhr_fit_with_slice_context_on_lidc(lidc_root, tmp_path):
    cfg = FitConfig(task="mhr", data=lidc_root, out=tmp_path, name="m25", epochs=1, backbone="resnet10t",
                    size=32, batch_size=8, lr=1e-3, device="cpu", threads=1, slice_context=True, binary=True,
                    decoder_width=32, val_fraction=0.34, test_fraction=0.33, calib_fraction=0.0, max_cases=120)
    fit(cfg)
    card = json.loads((tmp_path / "m25.json").read_text())
    assert "2.5D" in card["extra"]["input"] and card["extra"]["config"]["slice_context"] is True
    from training.evaluate import evaluate_checkpoint

    ev = evaluate_checkpoint(tmp_path / "m25.json", lidc_root, max_cases=120, device="cpu", workers=1)
    want = card["metrics"]["test"]["summary"]["uncalibrated"]["curvas_ece"]
    assert ev["summary"]["uncalibrated"]["curvas_ece"] == pytest.approx(want, rel=1e-6)  # context rebuilt
