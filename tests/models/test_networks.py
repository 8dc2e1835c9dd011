"""Networks, the architecture registry and shared preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_iaa.errors import ConfigError, DatasetError
from napari_iaa.models import (
    ARCHITECTURES,
    MHREnsemble,
    MHRNet,
    ModelCard,
    build_model,
    expected_fraction,
    prepare_image,
    quality_crop_box,
    quality_input,
    register_architecture,
    resize_map,
    resize_mask,
    to_float_rgb,
)

SIZE = (64, 64)


def test_registry_has_all_architectures():
    assert {"iaa_regressor", "mhr_unet", "mhr_ensemble", "quality_regressor"} <= set(ARCHITECTURES)


def test_iaa_regressor_outputs(make_card, make_model):
    x = torch.randn(3, 3, *SIZE)
    single = make_model(make_card("iaa"))
    out = single(x)
    assert set(out) == {"iaa"} and out["iaa"].shape == (3,)
    assert torch.all((out["iaa"] >= 0) & (out["iaa"] <= 1))
    multi = make_model(make_card("iaa", classes=["benign", "malignant", "other"]))
    out = multi(x)
    assert out["diagnosis"].shape == (3, 3)


@pytest.mark.parametrize("n_levels", [2, 5])
def test_mhr_net_shapes_and_expected_fraction(n_levels, make_card, make_model):
    card = make_card("mhr", n_levels=n_levels)
    net = make_model(card)
    x = torch.randn(2, 3, 64, 96)  # non-square input comes back at its size
    logits = net(x)
    assert logits.shape == (2, n_levels, 64, 96)
    frac = net.expected_fraction(x)
    assert frac.shape == (2, 64, 96)
    assert torch.all((frac >= 0) & (frac <= 1))
    probs = torch.softmax(logits, 1)
    ref = sum(probs[:, k] * k / (n_levels - 1) for k in range(n_levels))
    torch.testing.assert_close(frac, ref)


def test_expected_fraction_extremes():
    logits = torch.full((1, 4, 1, 2), -50.0)
    logits[0, 0, 0, 0] = 50.0  # certain level 0
    logits[0, 3, 0, 1] = 50.0  # certain level 3
    torch.testing.assert_close(expected_fraction(logits), torch.tensor([[[0.0, 1.0]]]))


def test_ensemble_is_mean_of_members(make_card, make_model):
    card = make_card("mhr", architecture="mhr_ensemble",
                     options={"n_members": 2, "decoder_channels": [16, 16, 16, 16]})
    ens = make_model(card)
    assert isinstance(ens, MHREnsemble) and len(ens.members) == 2
    x = torch.randn(1, 3, *SIZE)
    ref = (ens.members[0].expected_fraction(x) + ens.members[1].expected_fraction(x)) / 2
    torch.testing.assert_close(ens(x), ref)


def test_quality_regressor_range(make_card, make_model):
    net = make_model(make_card("quality"))
    y = net(torch.randn(4, 3, *SIZE))
    assert y.shape == (4,) and torch.all((y >= 0) & (y <= 1))


def test_build_model_errors():
    with pytest.raises(ConfigError, match="unknown architecture"):
        build_model(ModelCard(name="x", task="iaa", backbone="test_resnet", architecture="nope"))
    with pytest.raises(ConfigError, match="unknown timm backbone"):
        build_model(ModelCard(name="x", task="iaa", backbone="not_a_backbone_42"))
    with pytest.raises(ConfigError, match="decoder_channels"):
        MHRNet("test_resnet", 3, decoder_channels=[8])


def test_register_architecture_decorator():
    name = "_test_tiny_linear"
    try:
        @register_architecture(name)
        def _make(card):
            return torch.nn.Linear(card.in_chans, 1)

        m = build_model(ModelCard(name="x", task="iaa", backbone="test_resnet", architecture=name))
        assert isinstance(m, torch.nn.Linear)
        with pytest.raises(ConfigError, match="already registered"):
            register_architecture(name)(_make)
    finally:
        ARCHITECTURES.pop(name, None)


# -- preprocessing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        np.full((40, 30), 255, np.uint8),
        np.full((40, 30, 3), 255, np.uint8),
        np.full((40, 30, 4), 255, np.uint8),
        np.full((40, 30, 1), 255, np.uint8),
        np.ones((40, 30), bool),
        np.full((40, 30), 1.0, np.float32),
    ],
)
def test_prepare_image_dtypes_and_channels(image):
    x = prepare_image(image, (16, 20), mean=None, std=None)
    assert x.shape == (3, 16, 20) and x.dtype == torch.float32
    torch.testing.assert_close(x, torch.ones_like(x))
    a = prepare_image(image, 16).numpy()
    assert a.shape == (3, 16, 16) and isinstance(a, np.ndarray)


def test_to_float_rgb_scaling():
    u16 = np.array([[0, 1000], [2000, 4000]], np.uint16)
    np.testing.assert_allclose(to_float_rgb(u16)[..., 0], [[0, 0.25], [0.5, 1.0]])
    f = np.array([[np.nan, 0.5]], np.float32)
    assert np.isfinite(to_float_rgb(f)).all()
    with pytest.raises(DatasetError):
        to_float_rgb(np.zeros((2, 3, 4, 5)))


def test_prepare_image_normalises():
    img = np.full((8, 8, 3), 255, np.uint8)
    x = prepare_image(img, 8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    torch.testing.assert_close(x, torch.full((3, 8, 8), 2.0))


def test_quality_crop_and_blend():
    img = np.zeros((100, 100), np.uint8)
    mask = np.zeros((100, 100), bool)
    assert quality_crop_box(mask) == (0, 100, 0, 100)  # empty mask: whole image
    mask[40:60, 20:30] = True
    y0, y1, x0, x1 = quality_crop_box(mask, margin=0.5)
    assert y0 < 40 and y1 > 60 and x0 < 20 and x1 > 30
    assert (y0, y1, x0, x1) == (29, 71, 14, 36)
    a = quality_input(img, mask, 32, mean=None, std=None).numpy()
    assert a.shape == (3, 32, 32)
    assert a[0].max() == pytest.approx(0.5)  # mask blended into red with alpha 0.5
    assert a[1].max() == 0 and a[2].max() == 0
    t = quality_input(img, mask, (32, 32))
    assert t.shape == (3, 32, 32)
    with pytest.raises(DatasetError, match="does not match"):
        quality_input(img, mask[:50], 32)


def test_resize_helpers():
    m = np.zeros((10, 10), np.uint8)
    m[:5] = 3
    r = resize_mask(m, (20, 20))
    assert r.dtype == np.uint8 and set(np.unique(r)) == {0, 3}
    f = resize_map(np.full((10, 10), 0.25, np.float32), (7, 13))
    assert f.shape == (7, 13)
    np.testing.assert_allclose(f, 0.25, atol=1e-6)
    stack = resize_map(np.zeros((4, 10, 10)), 5)
    assert stack.shape == (4, 5, 5)


def test_large_images_are_block_reduced_first():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (1200, 900, 3), dtype=np.uint8)
    x = prepare_image(img, 64, mean=None, std=None)
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None], size=(64, 64),
        mode="bilinear", antialias=True)[0]
    assert x.shape == (3, 64, 64)
    assert float((x - ref).abs().mean()) < 0.01
    u16 = (rng.random((1000, 1000)) * 4000).astype(np.uint16)
    y = prepare_image(u16, 32, mean=None, std=None)
    assert float(y.min()) >= 0 and float(y.max()) <= 1


@pytest.mark.parametrize("backbone", ["mobilenetv3_small_050", "lcnet_050"])
def test_heads_fit_backbones_with_a_conv_head(backbone):
    """timm models with a conv_head after pooling return head_hidden_size features."""
    import torch

    from napari_iaa.models.networks import IAARegressor, QualityRegressor

    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        out = IAARegressor(backbone, n_classes=3).eval()(x)
        q = QualityRegressor(backbone).eval()(x)
    assert out["iaa"].shape == (2,) and out["diagnosis"].shape == (2, 3)
    assert q.shape == (2,) and bool(((q >= 0) & (q <= 1)).all())
