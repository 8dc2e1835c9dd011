"""The predicted maps as napari image layers: names, display size, placement, update.

A volume's maps are 3D layers ``(z, y, x)`` laid over the volume with its voxel spacing
as ``scale``. 2D maps larger than a limit are shown as k x k block means (the MHR model predicts at its
input size anyway; napari's upload of a 24 Mpx float texture per map is what stalls the
viewer). :func:`display_maps` runs in the prediction worker; :func:`set_map_layer` on the
GUI thread updates a layer in place (added the first time), and :func:`show_legend` gives
the difference map its colour bar (the dock does that on an event-loop turn of its own).

Colours (:mod:`napari_iaa.widgets._common.colormaps`): the predicted MHR maps use the
review dock's MHR ramp (transparent at 0, ``translucent`` blending: the image shows
through, never washed out as ``additive`` did); the difference map a diverging blue-red
map, transparent at 0, with napari's colour bar on the canvas as its legend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_iaa.agreement import block_mean
from napari_iaa.predict import CasePrediction
from napari_iaa.widgets._common.colormaps import DIFFERENCE_COLORMAP, MHR_COLORMAP, colormap_arg
from napari_iaa.widgets._common.compat import HAS_LAYER_COLORBAR
from napari_iaa.widgets.predictions.events import LAYER_UNCAL, MapLayer

__all__ = [
    "LAYER_CAL", "LAYER_DIFF", "LAYER_RAW", "MAP_DISPLAY_MAX_PIXELS", "OWN_LAYERS",
    "display_maps", "placement", "set_map_layer", "show_legend",
]

LAYER_RAW = "predicted MHR (raw)"
LAYER_CAL = "predicted MHR (calibrated)"
LAYER_DIFF = "MHR difference (predicted - empirical)"
#: the layers this dock writes (never read back as the case's image or masks)
OWN_LAYERS = (LAYER_RAW, LAYER_CAL, LAYER_DIFF)
#: maps with more pixels than this are shown as block means
MAP_DISPLAY_MAX_PIXELS = 1 << 21


def display_maps(pred: CasePrediction, max_pixels: int) -> tuple[MapLayer, ...]:
    """The map layers to show for a prediction (raw, calibrated, difference; those present).

    Parameters
    ----------
    pred
        The case's prediction.
    max_pixels
        Maps with more pixels become k x k block means (whole-image work: call it in the
        worker).

    Returns
    -------
    tuple of MapLayer
    """
    out = []
    for name, data, cmap, limits in (
            (LAYER_RAW, pred.mhr_raw, MHR_COLORMAP, (0.0, 1.0)),
            (LAYER_CAL, pred.mhr_calibrated, MHR_COLORMAP, (0.0, 1.0)),
            (LAYER_DIFF, pred.mhr_difference, DIFFERENCE_COLORMAP, (-1.0, 1.0))):
        if data is None:
            continue
        data = np.asarray(data)
        k = 1
        if data.ndim == 2 and data.size > max_pixels:
            k = int(np.ceil(np.sqrt(data.size / max_pixels)))
        spacing = tuple(float(v) for v in pred.spacing) if (
            pred.spacing is not None and len(pred.spacing) == data.ndim) else None
        out.append(MapLayer(name, block_mean(data, k) if k > 1 else data, cmap, limits, k,
                            spacing))
    return tuple(out)


def placement(img_layer: Any, data: np.ndarray, k: int = 1,
              spacing: tuple[float, ...] | None = None) -> dict[str, Any]:
    """``scale`` / ``translate`` that lay a map over the image layer (maps may be smaller).

    Parameters
    ----------
    img_layer
        The case's napari Image layer (None: the map is placed at the origin).
    data
        The map as shown.
    k
        ``data`` holds k x k block means of a full-resolution map when ``k > 1``.
    spacing
        A volume's voxel spacing: the map's ``scale`` when there is no image layer (over
        an image layer the map follows the layer's own scale, which shows the volume
        with its spacing).

    Returns
    -------
    dict
        Keyword arguments for the layer (empty when nothing is to be set).
    """
    if img_layer is None:
        if spacing is not None and k == 1:
            return {"scale": tuple(spacing)}
        if k > 1:
            return {"scale": (float(k),) * data.ndim, "translate": ((k - 1) / 2,) * data.ndim}
        return {}
    if k > 1:
        base_scale = np.asarray(img_layer.scale, float)[-data.ndim:]
        base_tr = np.asarray(img_layer.translate, float)[-data.ndim:]
        return {"scale": tuple(base_scale * k),
                "translate": tuple(base_tr + base_scale * (k - 1) / 2)}
    shape = np.asarray(img_layer.data).shape
    if img_layer.rgb:
        shape = shape[:-1]
    shape = shape[-data.ndim:]
    base_scale = np.asarray(img_layer.scale)[-data.ndim:]
    ratio = np.asarray(shape, float) / np.asarray(data.shape, float)
    return {"scale": tuple(base_scale * ratio),
            "translate": tuple(np.asarray(img_layer.translate)[-data.ndim:])}


def set_map_layer(viewer: Any, img_layer: Any, m: MapLayer,
                  tag: dict[str, Any] | None = None) -> bool:
    """Update the map's layer in place (data, placement, contrast); add it the first time.

    Parameters
    ----------
    viewer
        The napari viewer.
    img_layer
        The case's Image layer (the map is laid over it), or None.
    m
        The map to show.
    tag
        The layer's ``metadata["napari_iaa"]`` (given to a new layer as it is created:
        each later change of a layer repaints napari's layer list).

    Returns
    -------
    bool
        Whether the layer was added (a new difference map then wants :func:`show_legend`,
        best on a later event-loop turn: napari builds the colour bar's visuals, about
        40 ms on a software-OpenGL display, even while the layer is hidden).
    """
    kw = placement(img_layer, m.data, m.k, m.spacing)
    if m.name in viewer.layers and viewer.layers[m.name].ndim != m.data.ndim:
        viewer.layers.remove(m.name)  # a 2D case's map, now a volume's (or back)
    if m.name in viewer.layers:
        layer = viewer.layers[m.name]
        for attr, v in kw.items():
            if tuple(np.asarray(getattr(layer, attr))) != tuple(v):
                setattr(layer, attr, v)
        layer.data = m.data
        if tuple(layer.contrast_limits) != tuple(m.limits):
            layer.contrast_limits = m.limits
        if tag is not None and layer.metadata.get("napari_iaa") != tag:
            layer.metadata = {**layer.metadata, "napari_iaa": tag}
    else:
        layer = viewer.add_image(
            m.data, name=m.name, colormap=colormap_arg(m.colormap), contrast_limits=m.limits,
            opacity=0.9, blending="translucent", visible=m.name in (LAYER_CAL, LAYER_UNCAL),
            metadata={} if tag is None else {"napari_iaa": tag}, **kw,
        )
        return True
    return False


def show_legend(layer: Any) -> None:
    """The difference map's legend: its layer's colour bar on the canvas (napari draws it
    while the layer is shown; napari >= 0.9). Other layers are left as they are."""
    if layer.name == LAYER_DIFF and HAS_LAYER_COLORBAR:
        layer.colorbar.visible = True
        layer.colorbar.box = True
