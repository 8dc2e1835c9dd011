"""The fast inference paths give the same numbers as the plain ones.

uint8 images skip the float copy of the whole image (integer block sums, channels-last
resize, crop before converting); isotonic calibration uses a lookup table; predict_many
prepares the next batch in a worker thread. None of that may change a result.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from napari_iaa.calibration import IsotonicCalibrator
from napari_iaa.errors import DatasetError
from napari_iaa.models import IAAPredictor, MHRPredictor, QualityPredictor
from napari_iaa.models._fast_calibration import PiecewiseLinearLUT as _PiecewiseLinearLUT
from napari_iaa.models._fast_calibration import isotonic_lut as _isotonic_lut
from napari_iaa.models.preprocess import prepare_image, quality_input, to_float_rgb

SHAPES = [(50, 70), (64, 64, 3), (33, 41, 1), (80, 60, 4), (300, 200, 3), (257, 131)]
SIZES = [16, (20, 24), 64]


def _u8(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size", SIZES)
def test_uint8_prepare_image_equals_the_float_route(shape, size):
    img = _u8(shape)
    fast = prepare_image(img, size)
    # the same image as float in [0, 1] takes the generic float32 route
    slow = prepare_image(to_float_rgb(img), size)
    assert fast.shape == slow.shape and fast.dtype == torch.float32 and fast.is_contiguous()
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), atol=2e-6)


def test_uint8_prepare_image_accepts_read_only_and_reversed_views():
    img = _u8((90, 120, 3), 1)
    ref = prepare_image(np.ascontiguousarray(img[::-1, ::-1]), 32)
    ro = img.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(prepare_image(ro, 32).numpy(), prepare_image(img, 32).numpy())
    np.testing.assert_array_equal(prepare_image(img[::-1, ::-1], 32).numpy(), ref.numpy())


def test_uint8_prepare_image_rejects_bad_shapes():
    with pytest.raises(DatasetError, match="not a 2D"):
        prepare_image(np.zeros((4, 5, 6, 7), np.uint8), 8)
    with pytest.raises(DatasetError, match="empty"):
        prepare_image(np.zeros((0, 5, 3), np.uint8), 8)


@pytest.mark.parametrize("shape", [(120, 90, 3), (77, 101), (64, 64, 4)])
def test_uint8_quality_input_equals_the_float_route(shape):
    img = _u8(shape, 2)
    h, w = shape[:2]
    for mask in (np.zeros((h, w), bool), np.pad(np.ones((20, 30), np.uint8) * 3,
                                                ((10, h - 30), (10, w - 40)))):
        fast = quality_input(img, mask, 32)
        slow = quality_input(to_float_rgb(img), mask, 32)
        assert fast.is_contiguous()
        np.testing.assert_allclose(fast.numpy(), slow.numpy(), atol=2e-6)
    with pytest.raises(DatasetError, match="does not match"):
        quality_input(img, np.zeros((3, 3), bool), 32)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("alpha", [0.5, 0.3, 0.0, 1.0, 0.123, np.float64(0.7), np.float32(0.25)])
def test_blended_crop_is_numpy_s_arithmetic_bit_for_bit(compiled, channels, alpha, monkeypatch):
    """The EvanySeg crop by lookup tables equals the numpy expressions it replaces."""
    from napari_iaa.models import _fast_resize

    if not compiled:
        monkeypatch.setattr(_fast_resize, "numba", None)
    elif _fast_resize.numba is None:
        pytest.skip("numba is not available")
    rng = np.random.default_rng(channels)
    crop = rng.integers(0, 256, (37, 53, channels), dtype=np.uint8)
    crop[0, :, 0] = np.arange(53) * 4 % 256  # every red value with and without the mask
    mask = rng.random((37, 53)) < 0.5
    ref = np.repeat(crop, 3, axis=-1) if channels == 1 else crop
    want = np.divide(ref[..., :3], np.float32(255.0), dtype=np.float32)
    want[..., 0] = (1.0 - alpha) * want[..., 0] + alpha * mask.astype(np.float32)
    got = _fast_resize.blend_u8_crop(crop[5:30, 3:50], mask[5:30, 3:50], alpha)
    assert got.dtype == np.float32 and got.shape == (25, 47, 3)
    np.testing.assert_array_equal(got.view(np.uint32), want[5:30, 3:50].view(np.uint32))


def test_lookup_table_equals_np_interp():
    rng = np.random.default_rng(3)
    x = np.sort(np.r_[rng.random(40) * 0.9 + 0.05, 0.3, 0.3])  # a repeated knot: a step
    y = np.sort(rng.random(x.size))
    lut = _PiecewiseLinearLUT(x, y)
    p = np.r_[rng.random(20000), x, np.nextafter(x, 2), np.nextafter(x, -1), 0.0, 1.0]
    p = p.astype(np.float32).clip(0, 1)
    # np.interp's own values, bit for bit (the calibrator's transform is np.interp)
    np.testing.assert_array_equal(lut(p), np.interp(p.astype(np.float64), x, y).astype(np.float32))
    odd = np.array([np.nan, -0.5, 1.5, 0.5, np.inf, -np.inf], np.float32)
    np.testing.assert_array_equal(lut(odd), np.interp(odd.astype(np.float64), x, y).astype(np.float32))
    assert lut(p.reshape(2, -1)).shape == (2, p.size // 2)


@pytest.mark.parametrize("seed", range(6))
def test_lookup_table_equals_np_interp_on_any_knots(seed):
    """Knots below 0 and above 1, repeated knots (steps), knots closer than a table cell."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    x = np.sort(rng.random(n) * (0.5, 1.0, 1.3)[seed % 3] - (0.0, 0.1)[seed % 2])
    x = np.sort(np.round(x, 2)) if seed % 2 else x  # many repeated knots
    x[: min(3, n - 1)] = np.sort(x[0] + np.array([0.0, 1e-9, 2e-9])[: min(3, n - 1)])
    y = np.sort(rng.random(n))
    lut = _PiecewiseLinearLUT(x, y)
    smooth = np.cumsum(rng.normal(0, 0.002, 40000)) % 1.4 - 0.2  # a map's neighbours are close
    p = np.r_[smooth, rng.random(4000) * 1.6 - 0.3, x, np.nextafter(x, 2), np.nextafter(x, -1),
              np.nan].astype(np.float32)
    np.testing.assert_array_equal(lut(p), np.interp(p.astype(np.float64), x, y).astype(np.float32))
    with pytest.raises(ValueError, match="power of two"):
        _PiecewiseLinearLUT(x, y, cells=1000)


def test_upsampling_and_calibrating_in_one_pass_equals_the_two_steps():
    from napari_iaa.models._fast_calibration import upsample_calibrated
    from napari_iaa.models._fast_resize import upsample_map

    rng = np.random.default_rng(8)
    x = np.sort(rng.random(60))
    lut = _PiecewiseLinearLUT(x, np.sort(rng.random(60)))
    for src, dst in (((224, 224), (768, 1024)), ((7, 5), (64, 33)), ((16, 16), (16, 16))):
        small = rng.random(src, dtype=np.float32) * 1.2 - 0.1
        small[0, 0] = np.nan
        both = upsample_calibrated(small, dst, lut)
        if both is None:  # numba missing or switched off
            assert upsample_map(small, dst) is None
            return
        raw, cal = both
        np.testing.assert_array_equal(raw, upsample_map(small, dst))
        np.testing.assert_array_equal(cal, lut(raw))
    assert upsample_calibrated(np.zeros((10, 10), np.float32), (5, 20), lut) is None


def test_isotonic_lut_is_cached_and_follows_refits():
    rng = np.random.default_rng(4)
    p, t = rng.random(500), rng.random(500)
    cal = IsotonicCalibrator().fit(p, np.clip(p + 0.2 * t - 0.1, 0, 1))
    assert _isotonic_lut(cal) is _isotonic_lut(cal)
    first = _isotonic_lut(cal)
    cal.fit(p, t)  # new thresholds -> a new table
    assert _isotonic_lut(cal) is not first
    assert _isotonic_lut(object()) is None


def test_mhr_predictor_isotonic_calibration_matches_transform(tmp_path, make_card, make_model):
    from napari_iaa.models import save_checkpoint

    card = make_card("mhr")
    model = make_model(card)
    rng = np.random.default_rng(5)
    p = rng.random(4000)
    card.calibrator = IsotonicCalibrator().fit(p, np.clip(p ** 2 + 0.05 * rng.random(4000), 0, 1)
                                               ).to_dict()
    pred = MHRPredictor.from_checkpoint(save_checkpoint(model, card, tmp_path / "iso"),
                                        device="cpu")
    out = pred.predict(_u8((90, 110, 3), 6))
    expected = np.clip(pred.calibrator.transform(out.raw), 0, 1)
    np.testing.assert_array_equal(out.calibrated, expected)  # enlarged and calibrated in one pass
    assert out.calibrated.dtype == np.float32 and not np.allclose(out.calibrated, out.raw)
    assert out.calibrated.min() >= 0.0 and out.calibrated.max() <= 1.0


def test_lookup_table_stays_within_unit_interval_at_the_top():
    x = np.array([0.0, 0.5, 0.9999999, 1.0])
    y = np.array([0.0, 0.999999, 1.0, 1.0])
    lut = _PiecewiseLinearLUT(x, y)
    assert lut.bounded
    p = np.linspace(0.0, 1.0, 200001, dtype=np.float32)
    out = lut(p)
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_allclose(out, np.interp(p.astype(np.float64), x, y), atol=1e-6)


def test_predict_many_prefetches_in_order_on_another_thread(tiny_checkpoint, monkeypatch):
    ipath, _, _ = tiny_checkpoint("iaa")
    pred = IAAPredictor.from_checkpoint(ipath, device="cpu")
    imgs = [_u8((40 + i, 50, 3), i) for i in range(7)]
    threads = set()
    real = pred._prepare

    def spy(batch, strict=True):
        threads.add(threading.get_ident())
        return real(batch, strict)

    monkeypatch.setattr(pred, "_prepare", spy)
    many = pred.predict_many(imgs, batch_size=2)
    assert threading.get_ident() not in threads  # batches were prepared by the worker
    singles = [pred.predict(im).iaa for im in imgs]
    np.testing.assert_allclose([r.iaa for r in many], singles, atol=1e-6)


def test_predict_many_raises_a_strict_error_of_a_later_batch(tiny_checkpoint):
    qpath, _, _ = tiny_checkpoint("quality")
    qp = QualityPredictor.from_checkpoint(qpath, device="cpu")
    img = _u8((40, 50, 3))
    good = (img, np.zeros((40, 50), bool))
    pairs = [good, good, good, (img, np.zeros((3, 3), bool))]
    with pytest.raises(DatasetError, match="does not match"):
        qp.predict_many(pairs, batch_size=2, strict=True)
    vals = qp.predict_many(pairs, batch_size=2)
    assert np.isnan(vals[3]) and all(0 <= v <= 1 for v in vals[:3])


def test_compiled_calibration_lut_equals_the_numpy_version(monkeypatch):
    """The compiled table look-up gives the numpy version's float32 values bit for bit."""
    import numpy as np

    from napari_iaa.models import _fast_calibration as fc

    if fc._lut_kernel is None:
        return  # numba missing or switched off: only the numpy version exists
    rng = np.random.default_rng(3)
    x = np.sort(np.concatenate([[0.0, 1.0], rng.random(40)]))
    y = np.maximum.accumulate(rng.random(x.size))
    lut = fc.PiecewiseLinearLUT(x, y)
    p = rng.random((300, 257)).astype(np.float32)
    p.flat[:6] = [0.0, 1.0, x[3], np.nextafter(np.float32(1), np.float32(0)), 1e-30, 0.5]
    for q in (p, np.array([0.2, 1.5, np.nan, -0.1], np.float32)):
        fast = lut(q)
        monkeypatch.setattr(fc, "_lut_kernel", None)
        slow = lut(q)
        monkeypatch.undo()
        assert fast.dtype == np.float32
        np.testing.assert_array_equal(fast, slow)
