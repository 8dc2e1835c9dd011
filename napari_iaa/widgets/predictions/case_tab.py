"""The Case tab: predictions for the open case beside what the annotators did.

A worker predicts the IAA, the MHR map (raw and calibrated) and a quality score per mask.
The maps become image layers (plus the difference from the empirical MHR), the predicted
IAA sits beside the empirical IAA, a reliability diagram with the case's multi-rater ECE
is drawn, and the quality panel puts each mask's predicted quality beside its actual
leave-one-out Dice. Predictions refresh when the case changes; quality after edits
(debounced).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.predict import CasePrediction, curvas_ece_value, ece_value
from napari_iaa.widgets._common import DeviceInUse, Progress, fmt_number, notify_error
from napari_iaa.widgets._common.activity import SHORT_JOB_SHOW_AFTER_MS
from napari_iaa.widgets._common.paint import set_bar
from napari_iaa.widgets._common.plots import AsyncPlot, render_reliability
from napari_iaa.widgets.predictions.case_source import CaseSource
from napari_iaa.widgets.predictions.events import LAYER_UNCAL, CaseResult, MapLayer
from napari_iaa.widgets.predictions.jobs import ModelCache, case_job
from napari_iaa.widgets.predictions.map_layers import (
    LAYER_CAL,
    LAYER_DIFF,
    LAYER_RAW,
    MAP_DISPLAY_MAX_PIXELS,
    set_map_layer,
    show_legend,
)
from napari_iaa.widgets.predictions.models_tab import ModelSettingsWidget
from napari_iaa.widgets.predictions.quality import QualityPanel
from napari_iaa.widgets.predictions.worker_slot import WorkerSlot

__all__ = ["CaseTab"]


def _reliability_args(pred: CasePrediction) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of ``render_reliability`` for a prediction's diagram."""
    mhr = pred.models.get("mhr")
    if pred.reliability:
        ece = curvas_ece_value(pred.ece)
        return (pred.reliability,), {
            "title": f"{pred.case_id}: CURVAS ECE {fmt_number(ece)} ({mhr}, {pred.mhr_label})"}
    if pred.mhr_calibrated is not None:
        return (None,), {"message": "no annotator masks to compare with"}
    return (None,), {"message": "no MHR model chosen"}


def _draw_reliability(render: Callable[..., np.ndarray], pred: CasePrediction) -> np.ndarray:
    """A prediction's reliability diagram (in the prediction's worker)."""
    args, kwargs = _reliability_args(pred)
    return render(*args, **kwargs)


def _timer(parent: QWidget, ms: int, slot: Any) -> QTimer:
    t = QTimer(parent)
    t.setSingleShot(True)
    t.setInterval(ms)
    t.timeout.connect(slot)
    return t


class CaseTab(QWidget):
    """Predict the open case: IAA, MHR map layers, reliability, quality per mask.

    Signals
    -------
    case_predicted(object)
        A ``CasePrediction`` was shown.
    quality_scored(str, float)
        A mask or Labels layer was scored (name, predicted quality).
    failed(str)
        A prediction or scoring failed (the message also went to a notification).
    cancelled()
        A prediction was cancelled (a volume's stops between two batches of slices).
    """

    case_predicted = Signal(object)
    quality_scored = Signal(str, float)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, source: CaseSource, settings: ModelSettingsWidget, models: ModelCache,
                 auto: bool = True) -> None:
        super().__init__()
        self.source = source
        self.settings = settings
        self._models = models
        self.job = WorkerSlot(self)
        self.last_prediction: CasePrediction | None = None
        self._case_key: Any = None
        self._pending_case = False
        #: the steps that show a prediction on the GUI thread, one per event-loop turn
        self._layer_steps: list[Callable[[], None]] = []
        self._layer_pred: CasePrediction | None = None
        self._layer_plot: np.ndarray | None = None
        self._cancelling = False
        #: a volume's slices per forward pass
        self.batch_size = 8
        #: predicted maps with more pixels than this are shown as k x k block means
        self.map_display_max_pixels = MAP_DISPLAY_MAX_PIXELS
        self._build()

        self._progress_state: tuple[int, int, str] | None = None
        # a progress-bar change repaints at once, and on a software-GL display that
        # recomposes the whole viewer window: shown at most every 150 ms
        self._progress_timer = _timer(self, 150, self._apply_progress)
        self._case_timer = _timer(self, 300, self._maybe_case_changed)
        self._quality_timer = _timer(self, 600, self.quality.refresh)
        # the empty diagram is drawn (in a worker) once the dock has been docked and painted
        _timer(self, 400, self._empty_plot).start()
        source.changed.connect(self._case_timer.start)
        source.edited.connect(self._edited)
        settings.loaded.connect(self._models_changed)
        settings.selection_changed.connect(self._models_changed)
        settings.mismatch.connect(self._show_mismatch)
        self._predicted_with: Any = None
        self.auto_check.setChecked(auto)
        self._case_timer.start()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        cl = QVBoxLayout(self)
        cl.addLayout(self._build_head())
        self.mismatch_label = QLabel()
        self.mismatch_label.setWordWrap(True)
        self.mismatch_label.setStyleSheet("color: #e8a33d;")
        self.mismatch_label.hide()
        cl.addWidget(self.mismatch_label)
        self.auto_check = QCheckBox("refresh when the case changes / after edits")
        cl.addWidget(self.auto_check)
        self.case_progress = QProgressBar()
        self.case_progress.setRange(0, 1)
        self.case_progress.setValue(0)
        self.case_progress.setFormat("idle")
        cl.addWidget(self.case_progress)
        cl.addWidget(self._build_summary())
        self.reliability = AsyncPlot(render_reliability, width=320, height=240)
        self.reliability.setText("no prediction yet")
        cl.addWidget(self.reliability)
        self.quality = QualityPanel(self.source, self._models, self.settings.model_key,
                                    self.fail)
        self.quality.scored.connect(self._on_scored)
        cl.addWidget(self.quality)
        cl.addStretch(1)

    def _build_head(self) -> QHBoxLayout:
        head = QHBoxLayout()
        self.case_label = QLabel("no case")
        self.case_label.setWordWrap(True)
        head.addWidget(self.case_label, 1)
        self.predict_button = QPushButton("Predict")
        self.predict_button.clicked.connect(lambda: self.predict_current(explicit=True))
        head.addWidget(self.predict_button)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("stop the running prediction (a volume's after the "
                                      "batch of slices under way)")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        head.addWidget(self.cancel_button)
        return head

    def _build_summary(self) -> QGroupBox:
        summary = QGroupBox("Agreement")
        sf = QFormLayout(summary)
        self.pred_iaa_label = QLabel("—")
        self.emp_iaa_label = QLabel("—")
        self.ece_label = QLabel("—")
        self.mhr_model_label = QLabel("—")
        sf.addRow("predicted IAA", self.pred_iaa_label)
        sf.addRow("empirical IAA", self.emp_iaa_label)
        sf.addRow("MHR map", self.mhr_model_label)
        self.ece_label.setToolTip(
            "CURVAS ECE: 50-bin top-label ECE of the calibrated map against each annotator, "
            "inside the union of their masks' box +-20 px, averaged over annotators "
            "(docs/metrics.md). Pooled: the multi-rater ECE over the whole image.")
        sf.addRow("ECE (CURVAS)", self.ece_label)
        return summary

    def _empty_plot(self) -> None:
        if self.reliability.image is None and not self.reliability.busy:
            self.reliability.submit(None, message="no prediction yet")

    def _show_mismatch(self, text: str) -> None:
        self.mismatch_label.setText(text)
        self.mismatch_label.setVisible(bool(text))

    def _models_changed(self) -> None:
        """New models chosen (or read): predict the open case with them (auto mode)."""
        if (self.auto_check.isChecked() and self.settings.selected()
                and self.settings.model_key() != self._predicted_with):
            self._case_key = None
            self._case_timer.start()

    @property
    def busy(self) -> bool:
        """True while a prediction, a scoring, a layer update or a plot is under way."""
        return (self.job.running or self.quality.job.running or bool(self._layer_steps)
                or self._layer_pred is not None or self.reliability.busy)

    # ------------------------------------------------------------------ case changes
    def _edited(self) -> None:
        if not self.auto_check.isChecked():
            return
        if self.job.running:
            # the running prediction reads the live masks: it may have missed this edit
            self._pending_case = True
        if self.last_prediction is not None:
            self._quality_timer.start()

    def _maybe_case_changed(self) -> None:
        case = self.source.current_case()
        self.case_label.setText(
            "no case: open one in the review dock or add an Image layer" if case is None else
            f"<b>{case.case_id}</b> · {case.n_masks} masks · {np.asarray(case.image).shape}"
            + (f" · volume, spacing {tuple(round(v, 3) for v in case.voxel_spacing)}"
               if case.is_volume else "")
        )
        key = None if case is None else (
            str(case.case_id), tuple(case.mask_ids), np.asarray(case.image).shape)
        if key == self._case_key:
            return
        self._case_key = key
        if case is not None and self.auto_check.isChecked() and self.settings.selected():
            self.predict_current(explicit=False)

    # ------------------------------------------------------------------ prediction
    def predict_current(self, explicit: bool = True) -> None:
        """Predict the open case in a worker (after the running one, if any)."""
        if self.job.running:
            self._pending_case = True
            return
        case = self.source.current_case()
        if case is None:
            if explicit:
                notify_error("no image to predict: open a case or add an Image layer")
            return
        key = self.settings.model_key()
        if not key[0]:
            if explicit:
                notify_error("no model chosen: pick at least one model in the Models tab")
            self.case_progress.setFormat("no model chosen")
            return
        self._predicted_with = key
        self._progress(Progress(0, 4, "starting…"))
        self.predict_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._cancelling = False
        # the reliability diagram is drawn in the prediction's worker: a render thread
        # running while the GUI repaints the new layers would hold the GIL against it
        plot = functools.partial(_draw_reliability, self.reliability.prepared())
        self.job.start(case_job, case, self._models, key, self.source.empty_rule(),
                       self.map_display_max_pixels, self.batch_size, plot,
                       on_yield=self._on_yield, on_return=self.show_result,
                       on_error=self._prediction_failed, activity=f"predicting {case.case_id}",
                       activity_after_ms=SHORT_JOB_SHOW_AFTER_MS,
                       on_finish=self._case_done)

    def cancel(self) -> None:
        """Stop the running prediction at its next step (between batches of slices)."""
        if not self.job.running:
            return
        self._cancelling = True
        self._pending_case = False
        self.cancel_button.setEnabled(False)
        self._progress_state = None
        self.case_progress.setFormat("cancelling…")
        self.job.quit()

    def _on_yield(self, msg: Any) -> None:
        match msg:
            case DeviceInUse(device=device):
                self.settings.set_in_use(device)
            case Progress():
                self._progress(msg)

    def _progress(self, msg: Progress) -> None:
        """Note the case progress; the 150 ms timer shows it."""
        self._progress_state = (msg.done, msg.total, f"{msg.text} (%v/%m)")
        if not self._progress_timer.isActive():
            self._progress_timer.start()

    def _apply_progress(self) -> None:
        self._progress_timer.stop()
        state, self._progress_state = self._progress_state, None
        if state is None:
            return
        done, total, fmt = state
        set_bar(self.case_progress, total=total, value=done, fmt=fmt)  # with the next repaint

    def _case_done(self) -> None:
        self._apply_progress()
        self.predict_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self._cancelling:
            self._cancelling = False
            self.case_progress.setFormat("cancelled")
            self.cancelled.emit()
        if self._pending_case:
            self._pending_case = False
            self._case_key = None
            self._case_timer.start()

    def _prediction_failed(self, exc: BaseException) -> None:
        self.fail("prediction", exc)

    def fail(self, what: str, exc: BaseException) -> None:
        """A worker failed: a notification, the progress bar says so, ``failed`` is sent."""
        msg = f"{what} failed: {exc}"
        notify_error(msg)
        if what == "prediction":
            self._apply_progress()
        self.case_progress.setFormat(f"{what} failed")
        self.failed.emit(msg)

    # ------------------------------------------------------------------ showing it
    def show_result(self, result: CaseResult) -> None:
        """Show a prediction: the map layers first, one per event-loop turn (each costs
        napari a repaint), from the turn after the worker's end is shown, then the
        numbers, table and plot (drawn in the worker)."""
        self.last_prediction = result.prediction
        self._cancelling = False  # the result came before the cancel took effect
        self._layer_steps = [functools.partial(self._set_layer, m, result.prediction)
                             for m in result.maps]
        self._layer_pred = result.prediction
        self._layer_plot = result.reliability
        QTimer.singleShot(1, self._next_layer_step)

    def _next_layer_step(self) -> None:
        if not self._layer_steps:
            pred, self._layer_pred = self._layer_pred, None
            plot, self._layer_plot = self._layer_plot, None
            img = self.source.image_layer()
            viewer = self.source.viewer
            if img is not None and viewer.layers.selection.active is not img:
                viewer.layers.selection.active = img
            if pred is not None:
                self._show_numbers(pred, plot)
                self.case_predicted.emit(pred)
            return
        step = self._layer_steps.pop(0)
        try:
            step()
        finally:
            QTimer.singleShot(1, self._next_layer_step)  # 1 ms: let the repaint happen

    def _set_layer(self, m: MapLayer, pred: CasePrediction | None) -> None:
        """Show a map layer, tagged with the model that made it; the map of an MHR model
        without a calibrator is named "uncalibrated" (never shown as calibrated)."""
        viewer = self.source.viewer
        uncal = pred is not None and not pred.mhr_is_calibrated
        if m.name == LAYER_CAL:
            if uncal:
                m = dataclasses.replace(m, name=LAYER_UNCAL)
            stale = LAYER_CAL if uncal else LAYER_UNCAL
            if stale in viewer.layers:
                viewer.layers.remove(stale)
        model = pred.models.get("mhr", "") if pred is not None else ""
        tag = {"role": "prediction", "model": model,
               "calibrated": not uncal and m.name != LAYER_RAW}
        # the tag and the visibility are given as the layer is created (each later change
        # repaints napari's layer list); the MHR map, calibrated or not, is shown
        new = set_map_layer(viewer, self.source.image_layer(), m, tag=tag)
        if new and m.name == LAYER_DIFF:
            # its legend on a turn of its own: napari builds the colour bar's visuals
            # (about 40 ms on a software-OpenGL display) on top of the layer's own 50-80 ms
            self._layer_steps.insert(0, functools.partial(show_legend, viewer.layers[m.name]))

    def _show_numbers(self, pred: CasePrediction, plot: np.ndarray | None = None) -> None:
        iaa_model = pred.models.get("iaa")
        self.pred_iaa_label.setText(
            fmt_number(pred.predicted_iaa) + (f"  · {iaa_model}" if iaa_model else
                                              "  (no IAA model)"))
        self.emp_iaa_label.setText(fmt_number(pred.empirical_iaa) + (
            f"  ({len(pred.mask_ids)} masks)" if pred.mask_ids else "  (no masks)"))
        mhr = pred.models.get("mhr")
        self.mhr_model_label.setText(
            "no MHR model" if not mhr else f"{mhr} · {pred.mhr_label}" + (
                "" if pred.mhr_is_calibrated else " (no calibrator)"))
        ece, pooled = curvas_ece_value(pred.ece), ece_value(pred.ece)
        self.ece_label.setText(
            f"{fmt_number(ece)} (pooled {fmt_number(pooled)})"
            + (f"  · {pred.mhr_label}" if mhr else ""))  # the model: the row above
        if plot is not None:
            self.reliability.show_image(plot)
        else:  # not drawn in the worker (its draw failed): drawn now, in a render thread
            args, kwargs = _reliability_args(pred)
            self.reliability.submit(*args, **kwargs)
        self.quality.show_prediction(pred)

    def _on_scored(self, name: str, quality: float) -> None:
        if self.last_prediction is not None:
            self.last_prediction.quality[name] = quality
        self.quality_scored.emit(name, quality)

    def quit(self) -> None:
        """Stop the running workers (the dock is closing)."""
        self.job.quit()
        self.quality.job.quit()
