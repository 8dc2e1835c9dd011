"""Opening a case in the review dock, and adopting layers a reader or a sample added.

Small cases are shown at once. Larger ones are prepared in a worker (:func:`prepare_case`:
layer data, boolean mirrors, tracker counts, MHR display, majority vote) and their layers
then added or updated one per event-loop turn, so the viewer stays responsive. Reusing a
layer of the previous case (new data, name, tag) is much faster than removing and adding
one (napari garbage-collects on every removal), so walking cases stays snappy.

Layers napari adds from our reader or a sample carry our tag (:mod:`.layers`); the dock
adopts them: it drops the previous case's layers, takes the data set of their source and
binds its live agreement to them (:mod:`.binding`).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import QTimer

from napari_iaa.data import Case
from napari_iaa.errors import IAAError
from napari_iaa.widgets._common import no_threads, notify_error, notify_warning, start_worker
from napari_iaa.widgets.review.edits import apply_edits
from napari_iaa.widgets.review.layers import LayerData, case_layer_data, new_load_id, tag_of
from napari_iaa.widgets.review.live import LiveSetup, prepare_live
from napari_iaa.widgets.review.navigation import open_in_unit

__all__ = ["LoaderMixin", "prepare_case", "prepare_edited_case"]


def prepare_case(case: Case, source: str | None, load_id: str, contour: bool, mhr_max: int
                 ) -> tuple[list[LayerData], LiveSetup]:
    """Layer data and live set-up of ``case`` (thread-safe: the opening worker's job)."""
    setup = prepare_live([(mid, case.masks[mid]) for mid in case.mask_ids], mhr_max)
    setup.baseline = {mid: np.asarray(case.masks[mid]) for mid in case.mask_ids}
    tuples = case_layer_data(
        case, source=source, load_id=load_id, contour=contour,
        compute_staple=False,  # the bind's reliability refresh computes it
        prepared=setup,
    )
    return tuples, setup


def prepare_edited_case(case: Case, edits: dict[str, Path], *args: Any
                        ) -> tuple[list[LayerData], LiveSetup, Case, dict[str, Path], list[str]]:
    """:func:`prepare_case` of ``case`` with its current saved edits read in (thread-safe).

    Also returns the case as shown, mask id -> the edit file shown, and the edits that
    could not be read (those masks show their original).
    """
    shown, loaded, problems = apply_edits(case, edits)
    tuples, setup = prepare_case(shown, *args)
    return tuples, setup, shown, loaded, problems


def _n_pixels(case: Case) -> int:
    """Pixels (voxels) of the case's spatial grid: what the opening's cost scales with."""
    shape = tuple(case.shape) if hasattr(case, "shape") else np.shape(case.image)[:2]
    return int(np.prod(shape, dtype=np.int64)) if len(shape) >= 2 else 0


def _grid(layer_or_data: Any, meta: dict | None = None) -> tuple:
    """(spatial shape, scale) of an image layer or of new layer data (a change resets the view)."""
    if meta is None:
        data, rgb = layer_or_data.data, bool(layer_or_data.rgb)
        scale = tuple(float(s) for s in layer_or_data.scale)
    else:
        data, rgb = layer_or_data, bool(meta.get("rgb"))
        scale = tuple(float(s) for s in meta.get("scale", (1.0,) * (np.ndim(data) - rgb)))
    ndim = np.ndim(data) - (1 if rgb else 0)
    return tuple(np.shape(data)[:ndim]), scale


class LoaderMixin:
    """Case opening and layer adoption of :class:`~napari_iaa.widgets.review.ReviewWidget`.

    Uses the dock's ``viewer``, ``live``, ``load_id``, ``case_id``, ``_case``, ``source``,
    ``_open_gen`` (the latest opening: older ones are dropped), ``_adding`` (our own layer
    changes, ignored by the layer listeners), ``async_open_min_pixels``,
    ``mhr_display_max_pixels``, ``contour_check``, ``our_layers`` and the binding steps.
    """

    def show_case(self, case: Case, source: str | None = None) -> bool:
        """Show an already loaded :class:`~napari_iaa.data.Case` (replacing our layers).

        Small cases are shown at once. Cases with more than ``async_open_min_pixels``
        pixels are prepared in a worker (layer data, boolean mirrors, tracker counts, MHR,
        majority vote) and their layers then added or updated one per event-loop turn, so
        the viewer stays responsive; ``case_opened`` is emitted when the case is bound.
        Returns ``False`` if the case cannot be shown (synchronous path) and ``True`` once
        started (asynchronous path; errors are notified).
        """
        load_id = new_load_id()
        edits = self.current_edit_paths(case.case_id) if case.case_id else {}
        args = (case, edits, source, load_id, self.contour_check.isChecked(),
                self.mhr_display_max_pixels)
        self._open_gen += 1
        gen = self._open_gen

        def failed(exc: BaseException) -> None:
            if isinstance(exc, IAAError):
                notify_error(str(exc))
            else:
                notify_error(f"case {case.case_id}: cannot show ({type(exc).__name__}: {exc})")

        if _n_pixels(case) <= self.async_open_min_pixels or no_threads():
            try:
                res = prepare_edited_case(*args)
            except Exception as exc:  # noqa: BLE001 - bad data is a notification, not a crash
                failed(exc)
                return False
            for _ in self._replace_steps(res[0], load_id, res[2], res[1], res[3:]):
                pass
            return True

        if self.live is not None:  # the old case's layers are about to be replaced
            self.live.disconnect_all()
            self.live = None

        def done(res: tuple) -> None:
            try:
                if gen != self._open_gen:
                    return  # another case was requested meanwhile
                self._run_steps(gen, self._replace_steps(res[0], load_id, res[2], res[1],
                                                         res[3:]))
            except RuntimeError:  # the dock was closed meanwhile
                pass

        self._open_worker = start_worker(prepare_edited_case, *args, on_return=done,
                                         on_error=failed, owner=self)
        return True

    def _run_steps(self, gen: int, steps: Generator[None, None, None]) -> None:
        """Advance a layer-replacement generator by one step per event-loop turn."""
        try:
            if gen != self._open_gen:
                steps.close()
                return
            next(steps)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - never crash the viewer (dock deleted too)
            notify_error(f"cannot show the case ({type(exc).__name__}: {exc})")
            return
        # 1 ms, not 0: a zero timer is a posted event that Qt may handle in the same pass
        # as the repaint the previous layer asked for, adding the two stalls up
        QTimer.singleShot(1, lambda: self._run_steps(gen, steps))

    def _replace_steps(self, tuples: list[LayerData], load_id: str, case: Case, setup: LiveSetup,
                       edits: tuple = ({}, [])) -> Generator[None, None, None]:
        """Generator: replace our layers (one layer per step), then bind the case.

        ``edits``: (mask id -> the saved edit shown, problems reading the others).
        """
        if self.live is not None:
            self.live.disconnect_all()
            self.live = None
        self._clear_prebind()
        shape_changed = False
        for changed in self._replace_layers(tuples):
            shape_changed = shape_changed or changed
            yield
        self.load_id = load_id
        self.case_id = case.case_id
        self._case = case
        if shape_changed:
            self.viewer.reset_view()
        self.__dict__["_loaded_edits"] = dict(edits[0])
        for problem in edits[1]:
            notify_warning(problem)
        self._bind(setup)
        self.notify_edits_changed()

    def _replace_layers(self, tuples: list[LayerData]) -> Generator[bool, None, None]:
        """Put the new case into our layers: reuse matching layers, add/remove the rest.

        A generator with one step per layer (so large cases can be spread over several
        event-loop turns); each step yields whether the spatial shape changed.
        """
        from napari.layers import Layer

        old = self.our_layers()
        by_key: dict[tuple, Any] = {}
        old_shape = None
        for layer in old:
            tag = tag_of(layer)
            if tag.get("role") == "image":
                old_shape = _grid(layer)
            by_key.setdefault((tag.get("role"), tag.get("index")), layer)
        used: set[int] = set()
        plan = []  # (data, meta, kind, the old layer that takes them or None: a new layer)
        for data, meta, kind in tuples:
            tag = meta["metadata"]["napari_iaa"]
            layer = by_key.get((tag.get("role"), tag.get("index")))
            if layer is not None and id(layer) not in used and _reusable(layer, data, meta, kind):
                used.add(id(layer))
            else:
                layer = None
            plan.append((data, meta, kind, layer))
        self._adding = True
        try:
            _free_names(old, plan)
        finally:
            self._adding = False
        for data, meta, kind, layer in plan:
            tag = meta["metadata"]["napari_iaa"]
            changed = tag.get("role") == "image" and _grid(data, meta) != old_shape
            self._adding = True
            try:
                if layer is not None:
                    _reuse_layer(layer, data, meta, kind)
                else:
                    layer = Layer.create(data, meta, kind)
                    self.viewer.add_layer(layer)
                if tag.get("role") == "annotator":
                    self._watch_prebind(tag.get("mask_id"), layer)
            finally:
                self._adding = False
            yield changed
        for layer in old:
            if id(layer) not in used:
                self._adding = True
                try:
                    self.viewer.layers.remove(layer)
                finally:
                    self._adding = False
                yield False

    # -- adoption of layers added by a reader or a sample -------------------------------
    def _adopt_existing(self) -> None:
        tags = [t for lay in self.viewer.layers if (t := tag_of(lay))]
        if tags:
            self._adopt(tags[-1].get("load_id"), tags[-1])

    def _on_layer_inserted(self, event: Any) -> None:
        if self._adding:
            return
        tag = tag_of(event.value)
        if tag is None or not tag.get("load_id"):
            return
        if tag["load_id"] != self.load_id:
            self._adopt(tag["load_id"], tag)
        self._schedule_bind()

    def _on_layer_removed(self, event: Any) -> None:
        tag = tag_of(event.value)
        if self._adding or tag is None or tag.get("load_id") != self.load_id:
            return
        if tag.get("role") == "annotator":
            self._schedule_bind()

    def _adopt(self, load_id: str, tag: dict) -> None:
        if self.load_id is not None and self.live is not None:
            self._confirm_leave(allow_cancel=False)
        self._remove_our_layers(keep_load_id=load_id)
        self.__dict__["_loaded_edits"] = {}  # a reader's or a sample's layers: the files as named
        self.load_id = load_id
        self.case_id = tag.get("case_id")
        self._case = None
        src = tag.get("source")
        if src and src != self.source:
            try:
                ds, unit = open_in_unit(src, case_id=self.case_id)
                self.set_dataset(ds, source=src, case_id=self.case_id, load=False, unit=unit)
            except Exception:  # noqa: BLE001 - the layers are there; the data set is a convenience
                self.source = src
        elif self.case_id:
            self._select_combo(self.case_id)
        self._schedule_bind()

    def _remove_our_layers(self, keep_load_id: str | None = None) -> None:
        if self.live is not None:
            self.live.disconnect_all()
            self.live = None
        for layer in list(self.viewer.layers):
            tag = tag_of(layer)
            if tag is None or tag.get("load_id") == keep_load_id:
                continue
            if tag.get("load_id") == self.load_id or keep_load_id is not None:
                self.viewer.layers.remove(layer)


def _free_names(old: list[Any], plan: list[tuple]) -> None:
    """Rename the previous case's layers whose names the new case's layers take.

    napari keeps layer names unique: giving annotator ``A03``'s name to the layer that
    held another annotator, while ``A03``'s old layer (now another index, or about to be
    removed) still had it, left the new one named ``A03 [1]``.
    """
    taker = {meta["name"]: layer for _, meta, _, layer in plan}
    for layer in old:
        if layer.name in taker and taker[layer.name] is not layer:
            layer.name = f"{layer.name} (previous case)"


def _reusable(layer: Any, data: Any, meta: dict, kind: str) -> bool:
    """Whether ``layer`` can take the new ``data`` (same dimensionality and RGB-ness)."""
    if np.ndim(layer.data) != np.ndim(data):
        return False
    return kind != "image" or bool(layer.rgb) == bool(meta.get("rgb"))


def _reuse_layer(layer: Any, data: Any, meta: dict, kind: str) -> None:
    """Give an existing layer the new case's data, name, tag, scale and colours."""
    tag = meta["metadata"]["napari_iaa"]
    layer.metadata = dict(meta["metadata"])
    ndim = np.ndim(data) - (1 if meta.get("rgb") else 0)
    if tuple(np.asarray(layer.scale)) != tuple(meta.get("scale", (1.0,) * ndim)):
        layer.scale = meta.get("scale", (1.0,) * ndim)
    if tuple(np.asarray(layer.translate)) != tuple(meta.get("translate", (0.0,) * ndim)):
        layer.translate = meta.get("translate", (0.0,) * ndim)
    layer.data = data
    layer.name = meta["name"]
    if kind == "image" and tag.get("role") == "image" and not meta.get("rgb"):
        layer.reset_contrast_limits()
    if kind == "labels" and "colormap" in meta and not _same_label_colors(layer, meta["colormap"]):
        layer.colormap = meta["colormap"]  # napari redraws the layer (and its contours) for it


def _same_label_colors(layer: Any, colors: Any) -> bool:
    """Whether a Labels layer already draws ``colors`` (a label -> colour dict).

    A reused layer keeps its role and index, so its colours rarely change; setting them
    anyway made napari refresh the layer a second time, contours included (scipy filters
    over the whole slice: ~16 ms per annotator at 1024 x 768).
    """
    from napari.utils.colormaps.standardize_color import transform_color

    current = getattr(getattr(layer, "colormap", None), "color_dict", None)
    if not isinstance(colors, dict) or current is None or set(current) != set(colors):
        return False
    try:
        return all(np.array_equal(np.asarray(current[k], np.float32),
                                  transform_color(v)[0].astype(np.float32))
                   for k, v in colors.items())
    except (ValueError, TypeError):  # a colour napari cannot read: set it and let napari say
        return False
