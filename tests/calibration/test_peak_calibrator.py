"""Peak + isotonic calibration: what it fixes, and that it behaves like a calibrator."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_iaa.calibration import (
    IsotonicCalibrator,
    PeakIsotonicCalibrator,
    calibrator_from_dict,
    curvas_thresholded_dice,
    plane_peaks,
)


def _ambiguous(n=60, size=32, n_raters=4, seed=0):
    """Cases whose *presence* is ambiguous, as on LIDC's end slices.

    Each case has a disc; k of 4 raters mark it (k = 1..4, so the MHR peak is k/4). The
    model sees the disc equally well in every case but its peak tracks k only loosely
    (0.35 + 0.15 k), which a pooled pixel-wise map cannot undo.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    ps, mhrs, masks = [], [], []
    for _ in range(n):
        k = int(rng.integers(1, n_raters + 1))
        cy, cx = rng.uniform(10, 22, 2)
        r = rng.uniform(4, 8)
        disc = np.hypot(yy - cy, xx - cx) < r
        soft = 1 / (1 + np.exp((np.hypot(yy - cy, xx - cx) - r) / 1.5))
        m = np.zeros((n_raters, size, size), bool)
        m[:k] = disc
        ps.append(np.clip(soft * (0.35 + 0.15 * k + rng.normal(0, 0.02)), 0, 1))
        mhrs.append(m.mean(0))
        masks.append(m)
    return np.stack(ps).astype(np.float32), np.stack(mhrs).astype(np.float32), masks


def _curvas_dice(p, masks):
    return float(np.mean([curvas_thresholded_dice(pi, mi)["mean"] for pi, mi in zip(p, masks)]))


def test_peak_calibration_recovers_the_agreement_level_a_pixel_map_cannot():
    p_fit, mhr_fit, _ = _ambiguous(seed=0)
    p_test, mhr_test, masks_test = _ambiguous(seed=1)
    iso = IsotonicCalibrator().fit(p_fit, mhr_fit)
    peak = PeakIsotonicCalibrator().fit(p_fit, mhr_fit)
    d_iso, d_peak = _curvas_dice(iso.transform(p_test), masks_test), _curvas_dice(peak.transform(p_test), masks_test)
    assert d_peak > d_iso + 0.05, (d_peak, d_iso)
    # each case's calibrated peak is nearer the fraction of raters who marked it
    # (the pooled map sends a k = 4 disc's soft rim and a k = 1 disc's centre to one value)
    err_peak = np.abs(plane_peaks(peak.transform(p_test)) - plane_peaks(mhr_test))
    err_iso = np.abs(plane_peaks(iso.transform(p_test)) - plane_peaks(mhr_test))
    assert np.median(err_peak) < 0.75 * np.median(err_iso)


def test_planes_are_calibrated_one_by_one_and_keep_their_order():
    p_fit, mhr_fit, _ = _ambiguous(seed=0)
    cal = PeakIsotonicCalibrator().fit(p_fit, mhr_fit)
    stack = _ambiguous(n=5, seed=2)[0]
    out = cal.transform(stack)
    assert out.shape == stack.shape and out.dtype == np.float32
    for plane, got in zip(stack, out):
        np.testing.assert_allclose(cal.transform(plane), got, atol=1e-7)
        order = np.argsort(plane, axis=None, kind="stable")
        assert np.all(np.diff(got.ravel()[order]) >= -1e-7)  # monotone within a plane
    assert out.min() >= 0.0 and out.max() <= 1.0
    zero = cal.transform(np.zeros((8, 8), np.float32))  # a plane with no signal at all
    assert np.all(np.isfinite(zero))


def test_round_trips_through_json_without_pickle():
    p_fit, mhr_fit, _ = _ambiguous(seed=0)
    cal = PeakIsotonicCalibrator().fit(p_fit, mhr_fit)
    again = calibrator_from_dict(json.loads(json.dumps(cal.to_dict())))
    assert isinstance(again, PeakIsotonicCalibrator) and again.n_cases_ == 60
    x = _ambiguous(n=3, seed=3)[0]
    np.testing.assert_array_equal(again.transform(x), cal.transform(x))


def test_bad_input_says_what_is_wrong():
    cal = PeakIsotonicCalibrator()
    with pytest.raises(ValueError, match="shape"):
        cal.fit(np.zeros((3, 4, 4)), np.zeros((3, 4, 5)))
    with pytest.raises(ValueError, match="at least two"):
        cal.fit(np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="2 dimensions"):
        plane_peaks(np.zeros(5))
    with pytest.raises(ValueError, match="peak_isotonic"):
        calibrator_from_dict({"kind": "peak_isotonic", "pixel": {"kind": "isotonic", "x": [0, 1], "y": [0, 1]}})
