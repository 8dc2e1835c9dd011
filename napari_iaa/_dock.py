"""The review dock as the npe2 hooks see it: open it, and hand it a data set.

Readers and samples return layer data tuples tagged with ``metadata["napari_iaa"]``; the
review dock, opened here when a viewer is reachable, recognises those layers when napari
adds them and binds its live agreement to them. Without a viewer (scripts, tests of the
hooks alone) the layers are still complete.

napari makes the docks from ``napari.yaml``'s widget commands, which point at
``napari_iaa.widgets.docks`` (the widget classes with their content in a scroll area and
our docks tabbed together, so three open docks fit a 1366x768 window).
"""

from __future__ import annotations

import contextlib
from typing import Any

from napari_iaa.data import Dataset

PLUGIN_NAME = "napari-iaa"
REVIEW_WIDGET_NAME = "Review"

__all__ = ["PLUGIN_NAME", "REVIEW_WIDGET_NAME", "case_layers_with_dock", "open_review_dock"]


def open_review_dock(viewer: Any = None) -> Any:
    """Open (or show) the review dock in ``viewer`` (default: the current viewer).

    Returns the :class:`~napari_iaa.widgets.ReviewWidget` (napari's ``ReviewDock``), or
    ``None`` when no viewer with a window is reachable.
    """
    if viewer is None:
        try:
            import napari

            viewer = napari.current_viewer()
        except Exception:  # noqa: BLE001 - no napari session here: the layers still load
            return None
    window = getattr(viewer, "window", None)  # a viewer proxy or None: not our object
    if window is None:
        return None
    try:
        _dock, widget = window.add_plugin_dock_widget(PLUGIN_NAME, REVIEW_WIDGET_NAME)
    except Exception:  # noqa: BLE001 - plugin not registered in this session, no Qt window
        return None
    return widget


def case_layers_with_dock(ds: Dataset, case_id: str, source: str) -> list[tuple]:
    """The layer data of ``case_id``; the review dock (when reachable) is given ``ds`` (in
    the unit of review it was opened in, ``ds.unit``).

    The dock adopts the layers (by their tag) when napari inserts them.
    """
    from napari_iaa.widgets.review.layers import case_layer_data

    case = ds.load(case_id)
    layers = case_layer_data(case, source=source)
    widget = open_review_dock()
    if widget is not None:
        # a dock that fails must not lose the layers
        with contextlib.suppress(Exception):
            widget.set_dataset(ds, source=source, case_id=case_id, load=False, unit=ds.unit)
    return layers
