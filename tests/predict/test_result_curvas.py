"""A case's prediction reports the CURVAS ECE (docs/metrics.md) beside the pooled ECE."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_iaa import calibration as cal
from napari_iaa.predict import CasePrediction, curvas_ece_value, ece_value, fill_reliability


def _case(p: np.ndarray, masks: list[np.ndarray]) -> CasePrediction:
    emp = np.mean(np.stack(masks), axis=0).astype(np.float32)
    return CasePrediction("c", mask_ids=[f"m{i}" for i in range(len(masks))], mhr_raw=p,
                          mhr_calibrated=p, mhr_empirical=emp, models={"mhr": "x"})


def _masks(shape=(120, 160)) -> list[np.ndarray]:
    out = []
    for dy, dx in [(0, 0), (3, -2), (-2, 4)]:
        m = np.zeros(shape, bool)
        m[50 + dy:70 + dy, 60 + dx:90 + dx] = True
        out.append(m)
    return out


def test_curvas_ece_is_the_challenge_definition_in_the_box():
    masks = _masks()
    p = np.random.default_rng(0).random(masks[0].shape).astype(np.float32)
    pred = _case(p, masks)
    fill_reliability(pred, masks)
    ref = cal.curvas_case(p, masks)  # box +-20 px, 50 bins, per annotator
    assert pred.ece["curvas_per_annotator"] == ref["ece_per_annotator"]
    assert curvas_ece_value(pred.ece) == pytest.approx(ref["ece_mean"], rel=1e-12)
    # the pooled ECE over the whole image stays beside it
    assert ece_value(pred.ece) == pytest.approx(cal.multirater_ece(p, masks)["pooled"])


def test_confident_empty_background_lowers_the_pooled_ece_not_the_curvas_one():
    masks = _masks((120, 160))
    p = np.where(np.logical_or.reduce(masks), 0.6, 0.0).astype(np.float32)
    big = [np.pad(m, 400) for m in masks]  # the same lesion on a much larger empty image
    small_pred, big_pred = _case(p, masks), _case(np.pad(p, 400), big)
    fill_reliability(small_pred, masks)
    fill_reliability(big_pred, big)
    assert curvas_ece_value(big_pred.ece) == pytest.approx(curvas_ece_value(small_pred.ece))
    assert ece_value(big_pred.ece) < 0.5 * ece_value(small_pred.ece)


def test_no_annotation_gives_nan_not_an_error():
    masks = [np.zeros((30, 40), bool)] * 2
    pred = _case(np.full((30, 40), 0.2, np.float32), masks)
    fill_reliability(pred, masks)
    assert "error" not in pred.ece and math.isnan(curvas_ece_value(pred.ece))
    assert curvas_ece_value(None) != curvas_ece_value(None)  # NaN without an ECE
