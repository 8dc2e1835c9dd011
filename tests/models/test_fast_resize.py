"""The compiled resizers give torch's values (within float32 rounding) on every shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_iaa.models import _fast_resize as fr
from napari_iaa.models.preprocess import prepare_image, to_float_rgb

pytestmark = pytest.mark.skipif(fr.numba is None, reason="numba disabled or missing")


def _torch_aa(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    x = torch.from_numpy(to_float_rgb(img) if img.ndim == 2 else
                         np.divide(img, np.float32(255.0), dtype=np.float32))
    x = x.permute(2, 0, 1)[None] if x.ndim == 3 else x[None, None]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                         antialias=True)[0].clamp_(0.0, 1.0).numpy()


@pytest.mark.parametrize(("shape", "size"), [
    ((768, 1024, 3), (224, 224)),  # the usual photo -> network input
    ((50, 70, 1), (16, 16)),
    ((64, 64, 3), (20, 24)),
    ((33, 41, 4), (64, 64)),  # enlarging
    ((257, 131, 3), (20, 200)),  # shrinking one axis, enlarging the other
    ((5, 300, 1), (5, 17)),  # one axis kept
])
def test_uint8_resize_equals_torch_antialiased_float_route(shape, size):
    img = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    got = fr.resize_u8_chw(img, size)
    ref = _torch_aa(img, size)
    assert got.shape == (shape[2],) + size and got.dtype == np.float32
    np.testing.assert_allclose(got, ref[: shape[2]], atol=5e-7, rtol=0)


def test_prepare_image_of_a_photo_equals_the_float_route():
    img = np.random.default_rng(2).integers(0, 256, (768, 1024, 3), dtype=np.uint8)
    fast = prepare_image(img, 224)
    slow = prepare_image(to_float_rgb(img), 224)  # float input: torch's own kernel
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), atol=2e-6)


@pytest.mark.parametrize(("src", "dst"), [((224, 224), (768, 1024)), ((7, 5), (64, 33)),
                                          ((1, 1), (3, 4)), ((100, 37), (100, 200)),
                                          ((16, 16), (16, 16))])
def test_upsample_map_equals_torch_bilinear_then_clamp(src, dst):
    x = np.random.default_rng(3).random(src, dtype=np.float32) * 1.2 - 0.1  # some outside [0, 1]
    if x.size > 1:
        x[0, 0] = np.nan  # stays NaN where it counts
    ref = F.interpolate(torch.from_numpy(x)[None, None], size=dst, mode="bilinear",
                        align_corners=False)[0, 0].clamp_(0.0, 1.0).numpy()
    got = fr.upsample_map(x, dst)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(got[ok], ref[ok], atol=3e-7, rtol=0)
    assert got[ok].min() >= 0.0 and got[ok].max() <= 1.0


def test_upsample_map_declines_shrinking():
    assert fr.upsample_map(np.zeros((10, 10), np.float32), (5, 20)) is None
