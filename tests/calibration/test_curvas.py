"""The CURVAS challenge's metrics: hand-computed cases, and the challenge code where it runs.

The references at the bottom are the challenge's own formulations (torchmetrics'
MulticlassCalibrationError, scipy's quad over an interpolated normal CDF); each is
skipped when its library is not installed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_iaa.calibration import (
    CURVAS_THRESHOLDS,
    curvas_case,
    curvas_ece,
    curvas_thresholded_dice,
    curvas_volume_crps,
    union_bbox,
)
from napari_iaa.calibration.curvas import torchmetrics_bin_edges


def test_thresholds_are_the_challenges():
    assert np.allclose(CURVAS_THRESHOLDS, [0.1, 0.24, 0.38, 0.52, 0.66, 0.8])


def test_union_bbox_margin_clipped_at_the_border_and_none_when_empty():
    a = np.zeros((100, 100), bool)
    b = np.zeros((100, 100), bool)
    a[30:33, 40:42] = True   # rows 30..32, cols 40..41
    b[31, 45] = True          # widens the union to col 45
    box = union_bbox([a, b])
    assert box == (slice(10, 52), slice(20, 65))  # [lo - 20, hi + 20): the challenge's slices
    c = np.zeros((100, 100), bool)
    c[5, 90] = True
    assert union_bbox([c], margin=(20, 3)) == (slice(0, 25), slice(87, 93))
    assert union_bbox([np.zeros((4, 4), bool)] * 3) is None


def test_ece_hand_computed():
    # conf 0.9 (foreground) right once, wrong once: |0.5 - 0.9| * 2/4;
    # conf 0.8 (background) right twice: |1 - 0.8| * 2/4
    p = np.array([0.9, 0.9, 0.2, 0.2])
    assert curvas_ece(p, np.array([1, 0, 0, 0])) == pytest.approx(0.2 + 0.1)


def test_ece_confidence_one_has_a_bin_of_its_own():
    # 1.0 alone: |0 - 1| * 1/2 + |1 - 0.99| * 1/2 = 0.505; one shared bin would give
    # |0.5 - 0.995| = 0.495
    p = np.array([1.0, 0.99])
    assert curvas_ece(p, np.array([0, 1])) == pytest.approx(0.505)


def test_ece_probability_one_half_is_labelled_background():
    # p = 0.5 and 0.51 share the bin [0.50, 0.52); with 0.5 labelled background the
    # first is wrong against a foreground mask: acc 0.5, conf 0.505
    assert curvas_ece(np.array([0.5, 0.51]), np.array([1, 1])) == pytest.approx(0.005, abs=1e-6)


def test_ece_shape_mismatch_and_empty():
    with pytest.raises(ValueError, match="shape"):
        curvas_ece(np.zeros(3), np.zeros(4))
    assert math.isnan(curvas_ece(np.zeros(0), np.zeros(0)))


def test_thresholded_dice_hand_computed_strict_and_both_empty():
    p = np.array([0.9, 0.5, 0.3, 0.1])
    masks = [np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0])]  # mean 1, .5, 0, 0
    res = curvas_thresholded_dice(p, masks)
    # t = 0.1, 0.24: p > t marks 3 pixels (0.1 is not > 0.1), the mean 2 -> 4/5
    expected = [0.8, 0.8, 1.0, 1.0, 1.0, 1.0]
    assert res["dice"] == pytest.approx(expected, abs=1e-6)
    assert res["mean"] == pytest.approx(np.mean(expected), abs=1e-6)
    # strict: p exactly 0.8 is not above 0.8
    at = curvas_thresholded_dice(np.array([0.8]), [np.array([1])], thresholds=(0.8,))
    assert at["dice"] == [0.0]
    # both empty at every threshold: 1
    empty = curvas_thresholded_dice(np.zeros(5), [np.zeros(5), np.zeros(5)])
    assert empty["dice"] == [1.0] * 6


def test_crps_zero_when_annotators_agree_and_growing_with_the_error():
    m = np.zeros((10, 10), bool)
    m[2:5, 2:5] = True
    assert curvas_volume_crps(np.zeros((10, 10)), [m, m])["crps"] == 0.0
    m2 = m.copy()
    m2[5, 2:5] = True  # volumes 9 and 12
    vals = []
    for v in (10.5, 13.0, 20.0):
        p = np.zeros((10, 10))
        p.flat[0] = v
        r = curvas_volume_crps(p, [m, m2])
        assert r["predicted_volume"] == v and r["mean_volume"] == 10.5 and r["sd_volume"] == 1.5
        vals.append(r["crps"])
    assert vals[0] < vals[1] < vals[2]
    # beyond mean + 3 sd the integrand is F(y)^2 over the whole range: the CRPS stops growing
    p = np.zeros((10, 10))
    p.flat[0] = 100.0
    assert curvas_volume_crps(p, [m, m2])["crps"] == pytest.approx(vals[2])
    # voxel volume scales volumes and CRPS alike
    assert curvas_volume_crps(p, [m, m2], voxel_volume=2.0)["crps"] == pytest.approx(2 * vals[2])


def test_case_without_annotation_has_no_box_and_nan_ece():
    c = curvas_case(np.zeros((8, 8)), [np.zeros((8, 8)), np.zeros((8, 8))])
    assert c["bbox"] is None and math.isnan(c["ece_mean"])
    assert c["thresholded_dice_mean"] == 1.0 and c["crps"] == 0.0


def test_case_ece_only_sees_the_box():
    m = np.zeros((100, 100), bool)
    m[50:53, 50:53] = True
    p = np.where(m, 0.9, 0.05)
    base = curvas_case(p, [m, m])
    far = p.copy()
    far[0:5, 0:5] = 0.99  # a confident false positive 45 px away: outside the box
    near = p.copy()
    near[35:40, 35:40] = 0.99  # inside the +-20 px box
    assert curvas_case(far, [m, m])["ece_mean"] == base["ece_mean"]
    assert curvas_case(near, [m, m])["ece_mean"] > base["ece_mean"] + 0.01
    # ... while the Dice sees the whole image
    assert curvas_case(far, [m, m])["thresholded_dice_mean"] < base["thresholded_dice_mean"]
    assert len(base["ece_per_annotator"]) == 2


# -- the challenge's own formulations ---------------------------------------------------


def _challenge_ece(gt: np.ndarray, prob: np.ndarray) -> float:
    """CURVAS-PDACVI 2025 ``expected_calibration_error`` (binary, 3-D input)."""
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.classification")
    g, s = torch.tensor(gt), torch.tensor(prob).unsqueeze(0)
    s = torch.cat((1 - s, s), 0).clamp(min=1e-8)
    s = s / s.sum(0, keepdim=True)
    s = s.permute(1, 2, 3, 0).reshape(-1, 2)
    return float(tm.MulticlassCalibrationError(num_classes=2, n_bins=50)(s, g.reshape(-1)))


@pytest.mark.parametrize("kind", ["uniform", "on_edges", "extremes", "skewed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ece_equals_torchmetrics(kind, dtype):
    rng = np.random.default_rng(["uniform", "on_edges", "extremes", "skewed"].index(kind) * 2 + (dtype == np.float32))
    shape = (3, 17, 19)
    p = {"uniform": lambda: rng.random(shape),
         "on_edges": lambda: rng.integers(0, 51, shape) / 50.0,
         "extremes": lambda: rng.choice([0.0, 1.0, 0.5, 0.02, 0.98], shape),
         "skewed": lambda: rng.random(shape) ** 4}[kind]().astype(dtype)
    m = (rng.random(shape) < 0.3).astype(np.int64)
    assert curvas_ece(p, m) == pytest.approx(_challenge_ece(m, p), abs=1e-5)


def test_bin_edges_equal_torch_linspace():
    torch = pytest.importorskip("torch")
    for n in (10, 15, 49, 50, 51, 100, 333):
        assert np.array_equal(torchmetrics_bin_edges(n), torch.linspace(0, 1, n + 1, dtype=torch.float32).numpy())


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_crps_equals_the_challenges_quadrature():
    stats = pytest.importorskip("scipy.stats")
    from scipy.integrate import quad
    from scipy.interpolate import interp1d

    rng = np.random.default_rng(1)
    for _ in range(5):
        masks = [(rng.random((20, 20)) < rng.uniform(0.1, 0.5)).astype(int) for _ in range(4)]
        p = rng.random((20, 20)) * rng.uniform(0.2, 1.2)
        vols = [np.sum(m == 1) for m in masks]
        mu, sd = np.mean(vols), np.std(vols)
        g = stats.norm(loc=mu, scale=sd)
        x = np.linspace(g.ppf(0.01), g.ppf(0.99), 100)
        cdf = interp1d(x, g.cdf(x), bounds_error=False, fill_value=(0, 1))
        v = p.sum()
        ref = quad(lambda y, c=cdf, v=v: (c(y) - 0.5 * (np.sign(y - v) + 1)) ** 2,
                   mu - 3 * sd, mu + 3 * sd, limit=200)[0]
        assert curvas_volume_crps(p, masks)["crps"] == pytest.approx(ref, rel=1e-5)


def test_case_ece_equals_the_challenges_multirater_ece_on_a_volume():
    pytest.importorskip("torchmetrics")
    rng = np.random.default_rng(7)
    zz, yy, xx = np.mgrid[:60, :64, :72]
    annotations = []
    for r in (6.0, 7.5, 5.0, 8.0, 6.5):  # five annotators, as CURVAS-PDACVI
        annotations.append(((zz - 30) ** 2 + (yy - 30) ** 2 + (xx - 34) ** 2 < r * r).astype(np.int64))
    prob = np.clip(np.mean(annotations, 0) + rng.normal(0, 0.1, zz.shape), 0, 1).astype(np.float32)
    # the challenge's get_combined_bbox: slice(min - 20, max + 20) per axis (no border here)
    union = np.logical_or.reduce(annotations)
    lo, hi = np.argwhere(union).min(0), np.argwhere(union).max(0)
    box = tuple(slice(int(a) - 20, int(b) + 20) for a, b in zip(lo, hi))
    assert all(s.start >= 0 for s in box)
    ref = [_challenge_ece(a[box], prob[box]) for a in annotations]
    got = curvas_case(prob, annotations)
    assert got["bbox"] == [[s.start, s.stop] for s in box]
    assert got["ece_per_annotator"] == pytest.approx(ref, abs=1e-5)
