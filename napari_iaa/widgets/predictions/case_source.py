"""Where the predictions dock's case comes from: the review dock, else the viewer's layers.

:class:`CaseSource` finds the review dock (given, or among the viewer's docks), builds the
open case (the review dock's, with views of its live masks; else the active Image layer
and the Labels layers of its size), and says when the case may have changed or a mask was
edited.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, Signal

from napari_iaa.data import Case
from napari_iaa.widgets.predictions.events import LAYER_UNCAL
from napari_iaa.widgets.predictions.map_layers import OWN_LAYERS
from napari_iaa.widgets.review import ReviewWidget

__all__ = ["CaseSource", "find_review", "read_only", "role_of", "with_layer_spacing"]


def read_only(a: Any) -> np.ndarray:
    """A read-only view of an array (no copy)."""
    v = np.asarray(a).view()
    v.flags.writeable = False
    return v


def with_layer_spacing(case: Case, image_layer: Any) -> Case:
    """A volume case without spacing gets its Image layer's ``scale`` (the voxel size the
    viewer shows it with); anything else is returned as it is."""
    if not case.is_volume or case.spacing is not None or image_layer is None:
        return case
    scale = tuple(float(v) for v in np.asarray(image_layer.scale)[-3:])
    if len(scale) != 3 or all(v == 1.0 for v in scale):
        return case
    return dataclasses.replace(case, spacing=scale)


def role_of(layer: Any) -> str | None:
    """The napari-iaa role tag of a layer (image, annotator, mhr, ...), None if untagged."""
    meta = layer.metadata or {}
    tag = meta.get("napari_iaa") if isinstance(meta, Mapping) else None
    return tag.get("role") if isinstance(tag, Mapping) else None


def find_review(viewer: Any) -> ReviewWidget | None:
    """The ReviewWidget docked in the viewer, if any."""
    try:
        docks = viewer.window.dock_widgets
    except (AttributeError, RuntimeError):  # a viewer model without a window; closed
        return None
    for widget in list(docks.values()):
        w = getattr(widget, "native", widget)  # a magicgui widget wraps its QWidget
        if isinstance(w, ReviewWidget):
            return w
        found = w.findChild(ReviewWidget)
        if found is not None:
            return found
    return None


class CaseSource(QObject):
    """The open case of a viewer, for the predictions dock.

    Signals
    -------
    changed()
        The case may have changed (a case opened in the review dock, layers added or
        removed); listeners debounce and compare.
    edited()
        A mask was painted or replaced.
    layers_changed()
        Layers were added or removed.
    """

    changed = Signal()
    edited = Signal()
    layers_changed = Signal()

    def __init__(self, viewer: Any, review: ReviewWidget | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self._review = review
        self._connected: ReviewWidget | None = None
        self._watched: list[Any] = []
        #: Labels layers scored as a model's segmentation: not annotators
        self.scored_layers: set[str] = set()
        layers = viewer.layers
        layers.events.inserted.connect(self._on_layers)
        layers.events.removed.connect(self._on_layers)
        self._connect_review()
        self._watch_labels()

    # ------------------------------------------------------------------ review dock
    @property
    def review(self) -> ReviewWidget | None:
        """The review dock in use (looked for among the viewer's docks until found)."""
        if self._review is None:
            self._review = find_review(self.viewer)
            self._connect_review()
        return self._review

    def _connect_review(self) -> None:
        rv = self._review
        if rv is None or self._connected is rv:
            return
        rv.case_opened.connect(self._case_opened)
        rv.agreement_updated.connect(self.edited)
        self._connected = rv

    def _case_opened(self, *_: Any) -> None:
        self.changed.emit()

    def empty_rule(self) -> str:
        """The review dock's empty-pair rule ("zero" without a review dock)."""
        rv = self._review
        return rv.panel.empty_rule if rv is not None else "zero"

    def dataset_model(self) -> Any:
        """The review dock's data-set table model (None without a review dock)."""
        rv = self.review
        return rv.dataset_panel.model if rv is not None else None

    # ------------------------------------------------------------------ the data
    def open_data(self) -> tuple[Any, Any]:
        """``(key, data)`` of what is open, to match models to: the review dock's data set
        (``("dataset", root)``, the Dataset), else the open case (``("case", id, shape)``,
        ``[case]``), else ``(None, None)``."""
        rv = self.review
        ds = rv.dataset if rv is not None else None
        if ds is not None:
            return ("dataset", str(ds.root), len(ds)), ds
        case = self.current_case()
        if case is None:
            return None, None
        return ("case", str(case.case_id), tuple(np.asarray(case.image).shape)), [case]

    # ------------------------------------------------------------------ the case
    def current_case(self) -> Case | None:
        """The open case: the review dock's, else one built from the viewer's layers.

        The masks are read-only views (no copy on the GUI thread), possibly of label
        data: workers make them boolean. None when there is no image.
        """
        rv = self.review
        if rv is not None:
            try:
                case = rv.current_case(copy=False)  # views of the live masks
            except RuntimeError:  # the review dock was closed (its C++ object is gone)
                self._review = self._connected = None
                case = None
            if case is not None:
                return with_layer_spacing(case, self.image_layer())
        img = self.image_layer()
        if img is None:
            return None
        masks = {layer.name: read_only(layer.data) for layer in self._annotator_layers(img)}
        return with_layer_spacing(Case(img.name, np.asarray(img.data), masks), img)

    def image_layer(self) -> Any:
        """The case's Image layer: the active one, else the first (not our map layers)."""
        from napari.layers import Image

        def ok(layer: Any) -> bool:
            return (isinstance(layer, Image) and layer.name not in OWN_LAYERS
                    and layer.name != LAYER_UNCAL and role_of(layer) in (None, "image"))

        active = self.viewer.layers.selection.active
        if ok(active):
            return active
        return next((layer for layer in self.viewer.layers if ok(layer)), None)

    def _annotator_layers(self, image_layer: Any) -> list[Any]:
        from napari.layers import Labels

        data = np.asarray(image_layer.data)
        spatial = data.shape[:-1] if image_layer.rgb else data.shape
        if len(spatial) == 3:  # a volume: masks of its whole shape

            def fits(shape: tuple[int, ...]) -> bool:
                return tuple(shape) == tuple(spatial)
        else:
            shape = data.shape[-2:] if not image_layer.rgb and data.ndim > 2 else data.shape[:2]

            def fits(s: tuple[int, ...]) -> bool:
                return tuple(s[-2:]) == tuple(shape[-2:])
        return [layer for layer in self.viewer.layers
                if isinstance(layer, Labels) and role_of(layer) in (None, "annotator")
                and layer.name not in self.scored_layers and fits(layer.data.shape)]

    def labels_names(self) -> list[str]:
        """Names of every Labels layer (any of them can be scored)."""
        from napari.layers import Labels

        return [ly.name for ly in self.viewer.layers if isinstance(ly, Labels)]

    # ------------------------------------------------------------------ events
    def _on_layers(self, *_: Any) -> None:
        self._watch_labels()
        if self._review is None:
            self.review  # noqa: B018 - look for a review dock that appeared
        self.layers_changed.emit()
        self.changed.emit()

    def _watch_labels(self) -> None:
        from napari.layers import Labels

        for layer in self._watched:
            for ev in (layer.events.paint, layer.events.set_data):
                with contextlib.suppress(TypeError, ValueError, RuntimeError):
                    ev.disconnect(self._on_edit)
        self._watched = [ly for ly in self.viewer.layers if isinstance(ly, Labels)]
        for layer in self._watched:
            layer.events.paint.connect(self._on_edit)
            layer.events.set_data.connect(self._on_edit)

    def _on_edit(self, *_: Any) -> None:
        self.edited.emit()
