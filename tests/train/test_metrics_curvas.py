"""The training metrics carry the CURVAS definitions beside the pooled ones."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_iaa.calibration import curvas_case
from training.metrics import curvas_metrics, mhr_metrics


def _case(rng, size=64, n=3, centre=(30, 30)):
    yy, xx = np.mgrid[:size, :size]
    masks = []
    for r in rng.uniform(3, 6, n):
        masks.append((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < r * r)
    masks = np.stack(masks)
    p = np.clip(masks.mean(0) + rng.normal(0, 0.05, (size, size)), 0, 1).astype(np.float32)
    return p, masks


def test_curvas_metrics_average_cases_and_annotators():
    rng = np.random.default_rng(0)
    (p1, m1), (p2, m2) = _case(rng), _case(rng, n=2, centre=(10, 40))
    empty = np.zeros((2, 64, 64), bool)
    p = np.stack([p1, p2, np.zeros((64, 64), np.float32)])
    res = curvas_metrics(p, [m1, m2, empty], [["a", "b", "c"], ["a", "c"], ["a", "b"]])
    c1, c2 = curvas_case(p1, m1), curvas_case(p2, m2)
    assert res["n_cases"] == 3 and res["n_cases_no_annotation"] == 1
    assert res["ece_mean"] == pytest.approx((c1["ece_mean"] + c2["ece_mean"]) / 2)
    assert res["ece_per_annotator"]["a"] == pytest.approx((c1["ece_per_annotator"][0] + c2["ece_per_annotator"][0]) / 2)
    assert res["ece_per_annotator"]["b"] == pytest.approx(c1["ece_per_annotator"][1])
    # the empty case scores Dice 1 (both empty at every threshold) and counts in the mean
    assert res["thresholded_dice_mean"] == pytest.approx((c1["thresholded_dice_mean"] + c2["thresholded_dice_mean"] + 1) / 3)
    assert list(res["thresholded_dice"]) == ["0.10", "0.24", "0.38", "0.52", "0.66", "0.80"]


def test_native_shape_scales_the_margin_and_the_area_unit():
    rng = np.random.default_rng(1)
    p, m = _case(rng)
    p[0:4, 0:4] = 0.97  # a false positive 26 px from the lesion at 64 px (52 native px at 128)
    at_64 = curvas_metrics(p[None], [m], [["a", "b", "c"]])
    at_128 = curvas_metrics(p[None], [m], [["a", "b", "c"]], shapes=[[128, 128]])
    assert at_128["ece_mean"] == pytest.approx(curvas_case(p, m, margin=10)["ece_mean"])
    assert at_64["ece_mean"] != at_128["ece_mean"]
    assert at_128["crps_mean"] == pytest.approx(4 * curvas_case(p, m)["crps"])


def test_mhr_metrics_report_pooled_and_curvas_side_by_side():
    rng = np.random.default_rng(2)
    cases = [_case(rng) for _ in range(3)]
    p = np.stack([c[0] for c in cases])
    masks = [c[1] for c in cases]
    lp = rng.dirichlet(np.ones(5), size=(3, 64, 64)).transpose(0, 3, 1, 2).astype(np.float32)
    out = mhr_metrics(p, masks, [["a", "b", "c"]] * 3, lp, shapes=[[64, 64]] * 3)
    assert {"brier", "rps", "rps_rounded_levels", "ece_pooled", "thresholded_dice_mean", "curvas"} <= set(out)
    assert out["curvas"]["ece_mean"] > 0 and not math.isnan(out["curvas"]["crps_mean"])
    # the pooled ECE is over whole images, mostly empty background: far below the box's
    assert out["ece_pooled"] < out["curvas"]["ece_mean"]


def test_summary_puts_pooled_and_curvas_side_by_side_and_skips_other_entries():
    from training.metrics import mhr_summary

    rng = np.random.default_rng(3)
    p, m = _case(rng)
    block = mhr_metrics(p[None], [m], [["a", "b", "c"]])
    s = mhr_summary({"uncalibrated": block, "temperature_value": {"kind": "temperature"}, "n_cases": 1})
    assert list(s) == ["uncalibrated"]
    assert s["uncalibrated"]["curvas_ece"] == block["curvas"]["ece_mean"]
    assert s["uncalibrated"]["ece_pooled"] == block["ece_pooled"]
