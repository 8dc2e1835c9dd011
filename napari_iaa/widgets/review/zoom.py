"""Zoom to the lesion: the camera on the union of the annotators' masks, 2D and 3D.

A LIDC nodule is ~10 pixels of a 512-pixel slice, so the first view of a case shows little
of what is being reviewed. :func:`zoom_to_lesion` centres the camera on the bounding box
of every annotator mask of the case (in world coordinates: layer scale and translate
applied) and zooms so that the box, with as much context again around it, fills the
canvas; in 2D display a volume's slice moves to the box's middle. It is a viewer action
(``napari-iaa:zoom_to_lesion``, ``Shift+Z`` by default, in :mod:`.shortcuts`) and a button
(:func:`zoom_button`) for the review dock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from qtpy.QtWidgets import QPushButton

from napari_iaa.widgets._common.compat import SCENE_CAMERA
from napari_iaa.widgets.review.layers import tag_of

__all__ = ["CONTEXT", "ZOOM_SHORTCUT", "annotator_layers", "camera_of", "lesion_bounds",
           "zoom_button", "zoom_to_lesion"]

#: the view shows the lesion's box this many times over (the rest is context)
CONTEXT = 2.0
#: the least extent of the view along any axis, in the layers' finest pixel spacing (a
#: one-pixel mark is not zoomed to fill the screen)
_MIN_PIXELS = 24
ZOOM_SHORTCUT = "Shift+Z"


def camera_of(viewer: Any) -> Any:
    """The viewer's camera (napari 0.9 moved it to ``viewer.scene``; the old place warns)."""
    return viewer.scene.camera if SCENE_CAMERA else viewer.camera


def annotator_layers(viewer: Any, load_id: str | None = None) -> list[Any]:
    """The viewer's annotator layers (of one opening of a case when ``load_id`` is given).

    Visible ones when any is visible, else all of them.
    """
    layers = [layer for layer in viewer.layers
              if (tag := tag_of(layer)) and tag.get("role") == "annotator"
              and (load_id is None or tag.get("load_id") == load_id)]
    shown = [layer for layer in layers if layer.visible]
    return shown or layers


def lesion_bounds(layers: Sequence[Any]) -> np.ndarray | None:
    """World bounding box ``(2, ndim)`` (min row, max row) of every nonzero pixel of the
    layers; None when all of them are empty.

    Pixel edges count (a pixel at index i spans i - 0.5 .. i + 0.5), so one marked pixel
    has the size of a pixel.
    """
    boxes = []
    for layer in layers:
        data = np.asarray(layer.data)
        if not data.any():
            continue
        lo, hi = [], []
        for axis in range(data.ndim):
            others = tuple(a for a in range(data.ndim) if a != axis)
            idx = np.flatnonzero(data.any(axis=others) if others else data)
            lo.append(idx[0] - 0.5)
            hi.append(idx[-1] + 0.5)
        corners = np.array([layer.data_to_world(lo), layer.data_to_world(hi)], dtype=float)
        boxes.append(np.array([corners.min(axis=0), corners.max(axis=0)]))
    if not boxes:
        return None
    ndim = min(len(b[0]) for b in boxes)
    stacked = np.array([b[:, -ndim:] for b in boxes])
    return np.array([stacked[:, 0].min(axis=0), stacked[:, 1].max(axis=0)])


def zoom_to_lesion(viewer: Any, layers: Sequence[Any] | None = None,
                   context: float = CONTEXT) -> bool:
    """Centre and zoom the camera on the union of the masks; False when there is none.

    Parameters
    ----------
    viewer
        The napari viewer.
    layers
        The mask layers (default: :func:`annotator_layers` of the viewer).
    context
        The view spans the lesion's box this many times over.

    Returns
    -------
    bool
        True when the camera moved.
    """
    layers = list(layers) if layers is not None else annotator_layers(viewer)
    box = lesion_bounds(layers)
    if box is None:
        return False
    ndim = box.shape[1]
    offset = viewer.dims.ndim - ndim  # the viewer's leading axes the masks do not have
    centre = box.mean(axis=0)
    pixel = min(float(np.min(np.abs(np.asarray(layer.scale, float)))) for layer in layers)
    size = np.maximum((box[1] - box[0]) * context, _MIN_PIXELS * pixel)
    displayed = [ax - offset for ax in viewer.dims.displayed if ax >= offset]
    for ax in range(ndim):
        if ax not in displayed:  # the slice through the lesion's middle
            viewer.dims.set_point(ax + offset, float(centre[ax]))
    canvas = np.asarray(viewer.canvas.size, float)  # (height, width)
    if viewer.dims.ndisplay == 3:
        zoom = float(np.min(canvas) / np.linalg.norm(size[displayed]))
    else:
        zoom = float(np.min(canvas / size[displayed[-2:]]))
    camera = camera_of(viewer)
    camera.center = tuple(float(c) for c in centre[displayed])
    camera.zoom = zoom
    return True


def zoom_button(viewer: Any, load_id: Any = None) -> QPushButton:
    """A "zoom to lesion" button acting on ``viewer``'s annotator layers.

    Parameters
    ----------
    viewer
        The napari viewer.
    load_id
        A callable giving the load id of the case on show (the review dock's
        ``lambda: self.load_id``), or None for every annotator layer.
    """
    btn = QPushButton("Zoom")
    btn.setToolTip("zoom to lesion: centre and zoom the view on the union of the annotators' masks "
                   f"({ZOOM_SHORTCUT} in the canvas; change it in Preferences > Shortcuts)")
    btn.clicked.connect(
        lambda: zoom_to_lesion(viewer, annotator_layers(viewer, load_id() if load_id else None)))
    return btn
