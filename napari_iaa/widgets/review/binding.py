"""Binding the review dock's live agreement to the current case's annotator layers.

A bind builds the :class:`~napari_iaa.widgets.review.live.LiveAgreement` (tracker, MHR)
from a :class:`~napari_iaa.widgets.review.live.LiveSetup` made in a worker, or prepares one
first (in a worker, for large adopted layers), then fills the agreement panel and starts
the reliability refresh. Edits made between the layers' arrival and the bind are noted
("pre-bind" edits) and resynchronised right after it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import QTimer

from napari_iaa.widgets._common import no_threads, notify_error, start_worker
from napari_iaa.widgets.review.layers import annotator_color, apply_contours, tag_of
from napari_iaa.widgets.review.live import LiveAgreement, LiveSetup, prepare_live

__all__ = ["BindingMixin"]


class BindingMixin:
    """Live-agreement binding of :class:`~napari_iaa.widgets.review.ReviewWidget`.

    Uses the dock's ``live``, ``case_id``, ``_mask_info``, ``_baseline``, ``_open_gen``,
    ``_bind_pending``, ``_prebind_touched`` and ``_prebind_conns``, ``panel``,
    ``contour_check``, ``contour_max_pixels``, ``async_open_min_pixels``,
    ``mhr_display_max_pixels``, ``reliability``, ``profile`` and the ``case_opened`` signal.
    """

    def _schedule_bind(self) -> None:
        if not self._bind_pending:
            self._bind_pending = True
            QTimer.singleShot(0, self._bind)

    def _annotators(self) -> list[tuple[int, str, Any, dict]]:
        """(index, mask id, layer, tag) of our annotator layers, in index order."""
        ann = []
        for layer in self.our_layers("annotator"):
            tag = tag_of(layer)
            ann.append((tag.get("index", len(ann)), tag["mask_id"], layer, tag))
        ann.sort(key=lambda t: t[0])
        return ann

    def _bind(self, prepared: LiveSetup | None = None) -> None:
        """Build the live tracker on the current case's annotator layers.

        ``prepared`` (from :func:`prepare_live` in the opening worker) spares the
        whole-image set-up; without it, large cases are prepared in a worker first.
        """
        self._bind_pending = False
        if self.live is not None:
            self.live.disconnect_all()
            self.live = None
        ann = self._annotators()
        self._mask_info = {mid: tag for _, mid, _, tag in ann}
        if not ann:
            self._clear_prebind()
            self.panel.clear()
            self.profile.reset()
            self._update_edit_label()
            return
        layers = [(mid, layer) for _, mid, layer, _ in ann]
        ids = [mid for mid, _ in layers]
        if prepared is None or prepared.ids != ids:
            if layers[0][1].data.size > self.async_open_min_pixels and not no_threads():
                self._bind_async(layers)
                return
            prepared = None
        mhr = self.our_layers("mhr")
        try:
            self.live = LiveAgreement(layers, mhr_layer=mhr[0] if mhr else None, prepared=prepared)
        except Exception as exc:  # noqa: BLE001 - odd layer data: a notification, not a crash
            notify_error(f"case {self.case_id}: cannot track agreement ({exc})")
            return
        self._resync_prebind(ids)
        self.live.changed.connect(self._on_live_changed)
        self._take_baseline(prepared, ids)
        self.reliability.reset()
        colors = [annotator_color(int(i)) for i, *_ in ann]
        # a large case: the panel, the matrix and the rest each on its own event-loop turn
        # (a 15-annotator bind is ~50 ms of GUI work, next to napari's work for the new
        # layers); a small one is bound when show_case returns
        steps = [lambda: self._bind_panel(colors), self._refresh_fast, self._bind_finish]
        large = layers[0][1].data.size > self.async_open_min_pixels
        self._run_bind_steps(self.live, steps, spread=large)

    def _run_bind_steps(self, live: LiveAgreement, steps: list[Any], spread: bool) -> None:
        """Run ``steps`` one per event-loop turn (``spread``) while ``live`` is still the
        bound one; at once otherwise and without threads (the tests' synchronous mode)."""
        if not spread or no_threads():
            for step in steps:
                step()
            return

        def next_step() -> None:
            if self.live is live and steps:  # else re-bound meanwhile: its own steps run
                steps.pop(0)()
            if self.live is live and steps:
                timer.start(0)
            else:
                timer.deleteLater()

        timer = QTimer(self)  # a child: nothing runs once the dock is gone
        timer.setSingleShot(True)
        timer.timeout.connect(next_step)
        next_step()

    def _bind_panel(self, colors: list[Any]) -> None:
        self.panel.set_annotators(self.live.ids, colors)
        self._apply_contour_setting()
        self._apply_visibility_checks()

    def _bind_finish(self) -> None:
        self.reliability.refresh()
        self.profile.reset()
        self._update_info()
        if self.case_id:
            self._select_combo(self.case_id)
        self.case_opened.emit(self.case_id or "")

    def _take_baseline(self, prepared: LiveSetup | None, ids: list[str]) -> None:
        """The masks as opened: the reference of "unsaved edits"."""
        base = prepared.baseline if prepared is not None else None
        if base is not None and set(base) == set(ids):
            # the case's own masks: referenced, never edited (the layers hold copies)
            self._baseline = dict(base)
        else:
            self._baseline = {mid: m.copy() for mid, m in self.live.masks().items()}
        self.live.baseline = self._baseline  # (updated in place on saves)

    def _apply_contour_setting(self) -> None:
        """Outline the annotator masks (filled on large images) and the consensus layers."""
        n_pix = next(iter(self.live.mirrors.values())).size
        if self.contour_check.isChecked() and n_pix > self.contour_max_pixels:
            # napari recomputes contours over the whole slice on every dab: too slow here
            self.contour_check.blockSignals(True)
            self.contour_check.setChecked(False)
            self.contour_check.blockSignals(False)
        contour = self._contour_width() if self.contour_check.isChecked() else 0
        for layer in self.our_layers():
            tag = tag_of(layer)
            role = tag.get("role")
            if role == "annotator":
                tag["contour"] = contour
            if role in ("annotator", "majority", "staple") and layer.contour != tag.get(
                "contour", layer.contour
            ):
                apply_contours(layer)
            if role in ("majority", "staple"):
                # napari's emitters ignore a callback that is already connected
                layer.events.visible.connect(self.reliability.apply_pending)

    def _bind_async(self, layers: list[tuple[str, Any]]) -> None:
        """Prepare the tracker of (large) adopted layers in a worker, then bind."""
        gen = self._open_gen = self._open_gen + 1
        for mid, layer in layers:
            self._watch_prebind(mid, layer)

        def done(prepared: LiveSetup) -> None:
            try:
                if gen != self._open_gen:
                    return
            except RuntimeError:  # the dock was closed meanwhile
                return
            self._show_block_mhr(prepared)
            self._bind(prepared)

        self._bind_worker = start_worker(
            _prepare_layers, layers, self.mhr_display_max_pixels,
            on_return=done,
            on_error=lambda exc: notify_error(
                f"case {self.case_id}: cannot track agreement ({exc})"),
            owner=self,
        )

    def _show_block_mhr(self, prepared: LiveSetup) -> None:
        """A reader's full-resolution MHR layer: show the cheap down-sampled one instead."""
        k = int(prepared.mhr_k)
        for lay in self.our_layers("mhr"):
            if k > 1 and np.shape(lay.data) != prepared.mhr.shape:
                self._adding = True
                try:
                    lay.scale = (k, k)
                    lay.translate = ((k - 1) / 2, (k - 1) / 2)
                    lay.data = prepared.mhr
                finally:
                    self._adding = False

    # -- edits made before the bind ------------------------------------------------------
    def _watch_prebind(self, mid: Any, layer: Any) -> None:
        """Note edits of an annotator layer made before the case is bound."""

        def cb(_event: Any = None, mid: Any = mid) -> None:
            self._prebind_touched.add(str(mid))

        emitter = layer.events.paint
        emitter.connect(cb)
        self._prebind_conns.append((emitter, cb))

    def _clear_prebind(self) -> None:
        for emitter, cb in self._prebind_conns:
            emitter.disconnect(cb)
        self._prebind_conns = []

    def _resync_prebind(self, ids: list[str]) -> None:
        """Stop watching; resynchronise the masks painted while the case was opening."""
        self._clear_prebind()
        if touched := self._prebind_touched & set(ids):
            self.live.request_resync(touched)
        self._prebind_touched = set()


def _prepare_layers(layers: list[tuple[str, Any]], mhr_max: int) -> LiveSetup:
    """Live set-up of adopted layers, their data as the baseline (the worker's job)."""
    setup = prepare_live([(mid, layer.data) for mid, layer in layers], mhr_max)
    setup.baseline = {mid: m.copy() for mid, m in setup.mirrors.items()}
    return setup
