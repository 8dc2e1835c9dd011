"""Zoom to lesion: the camera on the union of the annotators' masks (2D, volume in 2D and 3D)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_iaa.widgets.review.zoom import camera_of

pytestmark = pytest.mark.gui


def _add_masks(viewer, boxes, shape, scale=None):
    """Annotator layers tagged as the review tags them, one per ``(lo, hi)`` index box."""
    from napari_iaa.widgets.review.layers import TAG

    layers = []
    for i, (lo, hi) in enumerate(boxes):
        data = np.zeros(shape, np.uint8)
        data[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = 1
        kw = {"scale": scale} if scale else {}
        layers.append(viewer.add_labels(data, name=f"A{i}", metadata={
            TAG: {"role": "annotator", "load_id": "L1", "mask_id": f"A{i}"}}, **kw))
    return layers


def _visible_extent(viewer):
    """World extent (rows, cols) the 2D canvas shows."""
    return np.asarray(viewer.canvas.size, float) / camera_of(viewer).zoom


def test_zoom_2d_frames_union_of_masks(make_napari_viewer):
    from napari_iaa.widgets.review.zoom import CONTEXT, lesion_bounds, zoom_to_lesion

    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).random((400, 600)))
    layers = _add_masks(viewer, [((100, 300), (120, 330)), ((110, 320), (140, 340))], (400, 600))
    box = lesion_bounds(layers)
    np.testing.assert_allclose(box, [[99.5, 299.5], [139.5, 339.5]])
    viewer.reset_view()
    zoom_before = camera_of(viewer).zoom
    assert zoom_to_lesion(viewer)
    np.testing.assert_allclose(camera_of(viewer).center[-2:], [119.5, 319.5])
    shown = _visible_extent(viewer)
    size = box[1] - box[0]
    assert np.all(shown >= size * CONTEXT - 1e-6)  # the box and its context fit
    assert np.isclose(np.min(shown / (size * CONTEXT)), 1.0)  # ... and fill one direction
    assert camera_of(viewer).zoom > 5 * zoom_before


def test_zoom_volume_slices_and_3d(make_napari_viewer):
    from napari_iaa.widgets.review.zoom import CONTEXT, lesion_bounds, zoom_to_lesion

    viewer = make_napari_viewer()
    scale = (2.5, 0.7, 0.7)
    viewer.add_image(np.zeros((40, 128, 128), np.float32), scale=scale)
    layers = _add_masks(viewer, [((10, 50, 60), (14, 60, 72)), ((12, 52, 62), (18, 58, 70))],
                        (40, 128, 128), scale=scale)
    box = lesion_bounds(layers)
    centre = box.mean(axis=0)
    np.testing.assert_allclose(box[:, 0], [9.5 * 2.5, 17.5 * 2.5])  # z in world units
    viewer.dims.set_point(0, 0.0)
    assert zoom_to_lesion(viewer)
    # 2D display: the slice moves to the lesion's middle, the camera to its box
    assert abs(viewer.dims.point[0] - centre[0]) <= scale[0]
    np.testing.assert_allclose(camera_of(viewer).center[-2:], centre[1:], atol=1e-6)
    viewer.dims.ndisplay = 3
    assert zoom_to_lesion(viewer)
    np.testing.assert_allclose(camera_of(viewer).center, centre, atol=1e-6)
    # the box and its context (at least 24 of the finest pixels a side) fit the canvas
    diag = np.linalg.norm(np.maximum((box[1] - box[0]) * CONTEXT, 24 * 0.7))
    assert np.isclose(camera_of(viewer).zoom, np.min(viewer.canvas.size) / diag)


def test_zoom_without_masks_leaves_camera(make_napari_viewer):
    from napari_iaa.widgets.review.zoom import zoom_to_lesion

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((50, 50)))
    _add_masks(viewer, [((0, 0), (0, 0))], (50, 50))  # an empty mask
    before = (camera_of(viewer).center, camera_of(viewer).zoom)
    assert not zoom_to_lesion(viewer)
    assert (camera_of(viewer).center, camera_of(viewer).zoom) == before


def test_zoom_action_and_button(make_napari_viewer, qtbot):
    from napari.utils.action_manager import action_manager
    from qtpy.QtCore import Qt

    from napari_iaa.widgets.review.shortcuts import register_review_actions
    from napari_iaa.widgets.review.zoom import ZOOM_SHORTCUT, zoom_button

    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.zeros((300, 300)))
    _add_masks(viewer, [((200, 40), (220, 60))], (300, 300))
    register_review_actions()
    assert ZOOM_SHORTCUT in {str(k) for k in
                             action_manager._shortcuts["napari-iaa:zoom_to_lesion"]}
    viewer.reset_view()
    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key_Z, Qt.ShiftModifier)  # the viewer action, by its key
    qtbot.waitUntil(lambda: np.allclose(camera_of(viewer).center[-2:], [209.5, 49.5]),
                    timeout=5_000)
    viewer.reset_view()
    btn = zoom_button(viewer, lambda: "L1")
    qtbot.addWidget(btn)
    btn.click()
    np.testing.assert_allclose(camera_of(viewer).center[-2:], [209.5, 49.5])
    viewer.reset_view()
    zoom_button(viewer, lambda: "another case").click()  # not this case's layers: no move
    assert not np.allclose(camera_of(viewer).center[-2:], [209.5, 49.5])
