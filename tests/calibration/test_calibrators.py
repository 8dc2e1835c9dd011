"""Calibrators: they reduce calibration error, round-trip through JSON, need no pickle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_iaa.calibration import (
    IdentityCalibrator,
    IsotonicCalibrator,
    TemperatureCalibrator,
    brier,
    calibrator_from_dict,
    multirater_ece,
)


def _miscalibrated(n_img=6, size=32, n_raters=4, seed=0):
    """Overconfident predictions: true MHR q per pixel, p = sigmoid(3 * logit(q))."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    ps, mhrs, masks = [], [], []
    for _ in range(n_img):
        cy, cx, r = rng.uniform(10, 22, 2).tolist() + [rng.uniform(5, 10)]
        d = np.hypot(yy - cy, xx - cx)
        q = 1 / (1 + np.exp((d - r) / 2.0))  # true probability a rater marks the pixel
        raters = rng.random((n_raters, size, size)) < q
        z = np.log(np.clip(q, 1e-4, 1 - 1e-4) / np.clip(1 - q, 1e-4, 1))
        ps.append(1 / (1 + np.exp(-3.0 * z)))
        mhrs.append(raters.mean(0))
        masks.append(raters)
    return np.stack(ps), np.stack(mhrs), np.stack(masks, axis=1)  # masks (R, N, H, W)


@pytest.mark.parametrize("cls", [IsotonicCalibrator, TemperatureCalibrator])
def test_calibrator_reduces_error_on_heldout(cls):
    p_fit, mhr_fit, _ = _miscalibrated(seed=0)
    p_test, mhr_test, masks_test = _miscalibrated(seed=1)
    cal = cls().fit(p_fit, mhr_fit)
    q = cal.transform(p_test)
    assert q.shape == p_test.shape and q.dtype == np.float32
    assert q.min() >= 0 and q.max() <= 1
    assert brier(q, mhr_test) < brier(p_test, mhr_test)
    before = multirater_ece(p_test, list(masks_test))["mean"]
    after = multirater_ece(q, list(masks_test))["mean"]
    assert after < before


def test_temperature_recovers_known_temperature():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 3, 200_000)
    q = 1 / (1 + np.exp(-z))  # true probability
    y = (rng.random(z.size) < q).astype(float)
    p = 1 / (1 + np.exp(-2.0 * z))  # logits scaled by 2 -> T should be ~2
    cal = TemperatureCalibrator(max_samples=None).fit(p, y)
    assert cal.temperature == pytest.approx(2.0, rel=0.05)


def test_isotonic_is_monotone_clipped_and_subsamples():
    rng = np.random.default_rng(0)
    p = rng.random(50_000)
    t = np.clip(p**2 + rng.normal(0, 0.05, p.size), 0, 1)
    cal = IsotonicCalibrator(max_samples=1000, seed=5).fit(p, t)
    assert cal.n_fit_ == 1000
    grid = np.linspace(-0.5, 1.5, 101)
    out = cal.transform(grid)
    assert np.all(np.diff(out) >= 0)
    assert out.min() >= 0 and out.max() <= 1
    same = IsotonicCalibrator(max_samples=1000, seed=5).fit(p, t)
    np.testing.assert_array_equal(cal.transform(grid), same.transform(grid))


@pytest.mark.parametrize("cls", [IsotonicCalibrator, TemperatureCalibrator, IdentityCalibrator])
def test_json_round_trip(cls):
    p, mhr, _ = _miscalibrated(n_img=2)
    cal = cls().fit(p, mhr)
    text = json.dumps(cal.to_dict())
    back = calibrator_from_dict(json.loads(text))
    assert type(back) is cls
    grid = np.linspace(0, 1, 37).reshape(37, 1)
    np.testing.assert_allclose(back.transform(grid), cal.transform(grid), rtol=0, atol=1e-7)


def test_isotonic_matches_sklearn_predict():
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(2)
    p = rng.random(2000)
    t = (rng.random(2000) < p**1.5).astype(float)
    ref = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p, t)
    cal = IsotonicCalibrator(max_samples=None).fit(p, t)
    grid = np.linspace(0, 1, 301)
    np.testing.assert_allclose(cal.transform(grid), ref.predict(grid), atol=1e-6)


def test_bad_dicts_refused():
    with pytest.raises(ValueError, match="unknown calibrator"):
        calibrator_from_dict({"kind": "platt"})
    with pytest.raises(ValueError):
        calibrator_from_dict({"kind": "temperature", "temperature": -1})
    with pytest.raises(ValueError):
        calibrator_from_dict({"kind": "isotonic", "x": [0.5, 0.1], "y": [0, 1]})
    with pytest.raises(ValueError):
        calibrator_from_dict({"kind": "isotonic"})
    with pytest.raises(RuntimeError):
        IsotonicCalibrator().transform([0.5])
    with pytest.raises(ValueError):
        TemperatureCalibrator().fit([np.nan], [0.5])
