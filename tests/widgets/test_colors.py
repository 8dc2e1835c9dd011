"""Colours: colour-blind-safe annotators apart from the MHR map; MHR layers that let the
image show through (never additive); a diverging difference map with a legend."""

from __future__ import annotations

import numpy as np
import pytest

OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"]


def _lab(rgb):
    from skimage.color import rgb2lab

    return rgb2lab(np.asarray(rgb, float).reshape(1, -1, 3))[0]


def _hex(h):
    return [int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)]


def test_annotator_palette_is_okabe_ito_and_apart_from_mhr_map():
    from skimage.color import deltaE_ciede2000

    from napari_iaa.widgets._common.colormaps import annotator_color, mhr_rgba

    colours = [annotator_color(i) for i in range(10)]
    assert colours[:7] == OKABE_ITO
    assert len(set(colours)) == 10 and annotator_color(25) not in colours
    pal = _lab([_hex(c) for c in colours])
    shown = _lab(mhr_rgba(np.linspace(0.1, 1.0, 37))[:, :3])  # every level the map shows
    dist = deltaE_ciede2000(pal[:, None, :], shown[None, :, :])
    assert dist.min() > 10, dist.min(axis=1)  # no annotator outline reads as an MHR level
    pair = deltaE_ciede2000(pal[:, None, :], pal[None, :, :])
    assert pair[~np.eye(len(pal), dtype=bool)].min() > 10


def test_mhr_and_difference_maps_are_transparent_at_zero():
    from napari_iaa.widgets._common.colormaps import difference_rgba, mhr_rgba

    assert mhr_rgba(0.0)[3] == 0.0
    alpha = mhr_rgba(np.linspace(0, 1, 11))[:, 3]
    assert np.all(np.diff(alpha) > 0) and alpha[-1] < 1.0  # more agreement, more colour
    d = difference_rgba(np.array([-1.0, -0.3, 0.0, 0.3, 1.0]))
    assert d[2, 3] == 0.0 and np.allclose(d[[0, 1]][:, 3], d[[4, 3]][:, 3])  # symmetric
    assert d[0, 2] > d[0, 0] and d[4, 0] > d[4, 2]  # below: blue, above: red


@pytest.mark.gui
def test_mhr_layer_not_additive_and_image_shows_through(make_napari_viewer):
    from napari_iaa.data import Case
    from napari_iaa.widgets.review.layers import case_layer_data

    image = np.full((64, 64), 230, np.uint8)  # a bright image: additive blending whitens it
    masks = {"A": np.zeros((64, 64), bool), "B": np.zeros((64, 64), bool)}
    masks["A"][20:40, 20:40] = True
    masks["B"][20:40, 20:40] = True
    case = Case(case_id="c1", image=image, masks=masks)
    layers = case_layer_data(case, source="test")
    data, meta, kind = next(t for t in layers if t[1]["name"] == "MHR")
    assert meta["blending"] != "additive"
    viewer = make_napari_viewer(show=True)
    viewer.add_image(image, contrast_limits=(0, 255))
    mhr = viewer.add_image(data, **{k: v for k, v in meta.items() if k != "metadata"})
    assert mhr.blending == "translucent"
    assert mhr.colormap.map(np.array([0.0]))[0, 3] == 0.0
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    h, w = shot.shape[:2]
    inside = shot[h // 2, w // 2]  # MHR = 1 (both annotators)
    corner = shot[int(h * 0.2), int(w * 0.2)]  # MHR = 0
    assert np.all(np.abs(corner - 230) <= 2)  # the image as it is where nobody marked
    assert inside.max() < 250 and np.abs(inside - 230).max() > 40  # tinted, not whitened


@pytest.mark.gui
def test_predicted_maps_translucent_with_difference_legend(make_napari_viewer):
    from napari_iaa.widgets._common.colormaps import DIFFERENCE_COLORMAP, MHR_COLORMAP
    from napari_iaa.widgets.predictions.events import MapLayer
    from napari_iaa.widgets.predictions.map_layers import (
        LAYER_CAL,
        LAYER_DIFF,
        LAYER_RAW,
        set_map_layer,
        show_legend,
    )

    viewer = make_napari_viewer()
    img = viewer.add_image(np.zeros((32, 32)))
    rng = np.random.default_rng(0)
    for name, limits in ((LAYER_RAW, (0, 1)), (LAYER_CAL, (0, 1)), (LAYER_DIFF, (-1, 1))):
        cmap = DIFFERENCE_COLORMAP if name == LAYER_DIFF else MHR_COLORMAP
        if set_map_layer(viewer, img, MapLayer(name, rng.random((32, 32)), cmap, limits)):
            show_legend(viewer.layers[name])  # as the dock does, on a turn of its own
    for name in (LAYER_RAW, LAYER_CAL, LAYER_DIFF):
        layer = viewer.layers[name]
        assert layer.blending == "translucent", name
    cal = viewer.layers[LAYER_CAL]
    assert cal.colormap.map(np.array([0.0]))[0, 3] == 0.0  # zero: the image as it is
    diff = viewer.layers[LAYER_DIFF]
    rgba = diff.colormap.map(np.array([0.0, 0.5, 1.0]))  # -1, 0, +1 under limits (-1, 1)
    assert rgba[1, 3] == 0.0 and rgba[0, 2] > rgba[0, 0] and rgba[2, 0] > rgba[2, 2]
    from napari_iaa.widgets._common.compat import HAS_LAYER_COLORBAR

    if HAS_LAYER_COLORBAR:  # napari 0.9: the layer's colour bar is its legend on the canvas
        assert diff.colorbar.visible
        assert not viewer.layers[LAYER_RAW].colorbar.visible
