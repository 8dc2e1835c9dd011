"""Surface distances (HD95, ASSD) in physical units against a brute-force computation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_iaa.agreement.surface import (
    average_surface_distance,
    hausdorff_distance,
    mask_surface,
    pairwise_surface_distances,
)


def _surface_points(mask: np.ndarray) -> np.ndarray:
    """Surface voxels by the definition: foreground with a face neighbour outside."""
    m = np.pad(mask.astype(bool), 1)
    surf = np.zeros_like(m)
    core = tuple(slice(1, -1) for _ in range(mask.ndim))
    for axis, step in itertools.product(range(mask.ndim), (-1, 1)):
        surf |= m & ~np.roll(m, step, axis=axis)
    return np.argwhere(surf[core])


def _brute(a: np.ndarray, b: np.ndarray, spacing, percentile=95.0):
    pa, pb = _surface_points(a) * spacing, _surface_points(b) * spacing
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    d_ab, d_ba = d.min(axis=1), d.min(axis=0)
    hd = max(np.percentile(d_ab, percentile), np.percentile(d_ba, percentile))
    return hd, np.concatenate([d_ab, d_ba]).mean()


def _ellipsoid(shape, centre, radii):
    grid = np.indices(shape).astype(float)
    r = sum(((g - c) / s) ** 2 for g, c, s in zip(grid, centre, radii, strict=True))
    return r <= 1.0


def test_surface_is_mask_minus_face_connected_erosion():
    m = np.zeros((5, 5), bool)
    m[1:4, 1:4] = True
    want = m.copy()
    want[2, 2] = False
    assert np.array_equal(mask_surface(m), want)
    full = np.ones((3, 3), bool)  # touching the border: the border is surface
    assert mask_surface(full).sum() == 8


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 0.7, 0.7), (1.25, 0.5, 2.0)])
def test_anisotropic_ellipsoids_match_brute_force(spacing):
    a = _ellipsoid((9, 20, 20), (4, 9, 10), (3, 6, 5))
    b = _ellipsoid((9, 20, 20), (4.5, 10, 9), (2.5, 5, 6.5))
    sp = np.asarray(spacing)
    want_hd, want_assd = _brute(a, b, sp)
    assert hausdorff_distance(a, b, spacing) == pytest.approx(want_hd, rel=1e-9)
    assert average_surface_distance(a, b, spacing) == pytest.approx(want_assd, rel=1e-9)
    want_hd100, _ = _brute(a, b, sp, percentile=100)
    assert hausdorff_distance(a, b, spacing, percentile=100) == pytest.approx(want_hd100)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([(1.0, 1.0), (0.7, 2.5), (3.0, 0.5)]))
def test_random_2d_masks_match_brute_force(seed, spacing):
    rng = np.random.default_rng(seed)
    masks = [rng.random((12, 14)) < rng.uniform(0.05, 0.6) for _ in range(3)]
    res = pairwise_surface_distances(masks, spacing)
    for i, j in itertools.combinations(range(3), 2):
        if masks[i].any() and masks[j].any():
            hd, assd = _brute(masks[i], masks[j], np.asarray(spacing))
            assert res.hd[i, j] == pytest.approx(hd) and res.hd[j, i] == res.hd[i, j]
            assert res.assd[i, j] == pytest.approx(assd)
        else:
            assert np.isnan(res.hd[i, j]) and np.isnan(res.assd[i, j])


def test_empty_masks_give_nan_and_are_left_out_of_the_mean():
    a = np.zeros((6, 6), bool)
    a[1:4, 1:4] = True
    b = np.roll(a, 2, axis=1)
    empty = np.zeros_like(a)
    res = pairwise_surface_distances({"r0": a, "r1": b, "r2": empty})
    assert np.isnan(res.hd[0, 2]) and np.isnan(res.assd[2, 1]) and np.isnan(res.hd[2, 2])
    assert res.hd[0, 0] == 0.0
    assert res.mean("hd") == pytest.approx(res.hd[0, 1])
    assert np.isnan(pairwise_surface_distances([empty, empty]).mean("assd"))


def test_bad_spacing_is_a_clear_error():
    from napari_iaa.errors import ConfigError

    a = np.ones((3, 3), bool)
    with pytest.raises(ConfigError, match="spacing"):
        pairwise_surface_distances([a, a], spacing=(1.0, 0.0))


def test_same_as_monai_when_installed():
    monai = pytest.importorskip("monai.metrics")
    torch = pytest.importorskip("torch")
    a = _ellipsoid((9, 20, 20), (4, 9, 10), (3, 6, 5))
    b = _ellipsoid((9, 20, 20), (4.5, 10, 9), (2.5, 5, 6.5))
    spacing = (2.5, 0.7, 0.7)
    t = lambda m: torch.from_numpy(m[None, None].astype(np.float32))  # noqa: E731
    hd = monai.compute_hausdorff_distance(t(a), t(b), percentile=95, spacing=spacing)
    asd = monai.compute_average_surface_distance(t(a), t(b), symmetric=True, spacing=spacing)
    assert hausdorff_distance(a, b, spacing) == pytest.approx(float(hd), rel=1e-5)
    assert average_surface_distance(a, b, spacing) == pytest.approx(float(asd), rel=1e-5)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 400), q=st.sampled_from([0.0, 5.0, 50.0, 95.0, 99.9, 100.0]),
       seed=st.integers(0, 2**32 - 1), ties=st.booleans())
def test_the_percentile_is_numpy_s_bit_for_bit(n, q, seed, ties):
    """HD95 must be the value MONAI reports, which is ``np.percentile``'s (linear method)."""
    from napari_iaa.agreement.surface import _percentile

    rng = np.random.default_rng(seed)
    d = rng.integers(0, 5, n).astype(float) if ties else rng.random(n) * 40
    assert _percentile(d, q) == float(np.percentile(d, q))


@settings(max_examples=200, deadline=None)
@given(shape=st.lists(st.integers(0, 12), min_size=1, max_size=4), fill=st.floats(0.0, 1.0),
       seed=st.integers(0, 2**32 - 1))
def test_the_surface_is_scipy_s_face_connected_erosion_away(shape, fill, seed):
    """MONAI's edges: the mask minus its erosion by the face-connected element, background
    outside the array (scipy's ``binary_erosion``, which the shifted ANDs replace)."""
    from scipy import ndimage

    m = np.random.default_rng(seed).random(shape) < fill
    eroded = ndimage.binary_erosion(m, ndimage.generate_binary_structure(m.ndim, 1), border_value=0)
    assert np.array_equal(mask_surface(m), m & ~eroded)
    assert np.array_equal(mask_surface(m.astype(np.uint8) * 255), m & ~eroded)
