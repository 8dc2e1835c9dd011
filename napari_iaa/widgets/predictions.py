"""Predictions dock: model predictions beside what the annotators did, and triage.

Case tab
    For the open case (from the review dock when there is one, else the active Image
    layer and the Labels layers), a thread worker predicts the IAA, the MHR map (raw and
    calibrated) and a quality score per mask. The maps become image layers (plus the
    difference from the empirical MHR), the IAA sits beside the empirical IAA, a reliability
    diagram with the case's multi-rater ECE is drawn, and a table puts each mask's
    predicted quality beside its actual leave-one-out Dice. Any Labels layer can be scored.
    Predictions refresh when the case changes; quality refreshes after edits (debounced).
Triage tab
    A folder of images (masks optional) is scored for predicted IAA in batches in a worker
    (progress, cancel) into a sortable table; export to CSV.
Models tab
    The model list with cards, one model per task, and the device.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.data import Case
from napari_iaa.predict import (
    CasePrediction,
    ModelSet,
    ece_value,
    fill_reliability,
    load_models,
    predict_case,
    predict_iaa_images,
    predict_quality,
)
from napari_iaa.widgets._live import block_mean
from napari_iaa.widgets._model_settings import ModelSettingsWidget, notify_error
from napari_iaa.widgets._prediction_plots import AsyncPlot, render_reliability

__all__ = ["PredictionsWidget", "LAYER_RAW", "LAYER_CAL", "LAYER_DIFF", "measure_event_loop_stall"]

LAYER_RAW = "predicted MHR (raw)"
LAYER_CAL = "predicted MHR (calibrated)"
LAYER_DIFF = "MHR difference (predicted - empirical)"
_OWN_LAYERS = (LAYER_RAW, LAYER_CAL, LAYER_DIFF)
MAP_DISPLAY_MAX_PIXELS = 1 << 21
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


class _NumItem(QTableWidgetItem):
    """A table cell that sorts by number (NaN last)."""

    def __init__(self, value: float, fmt: str = "{:.3f}") -> None:
        self.value = float(value) if value is not None else math.nan
        super().__init__("—" if not math.isfinite(self.value) else fmt.format(self.value))
        self.setTextAlignment(int(Qt.AlignRight | Qt.AlignVCenter))

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a = self.value
        b = getattr(other, "value", math.nan)
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return a < b


class PredictionsWidget(QWidget):
    """Dock with the case's predictions, triage of a folder and the model settings.

    Parameters
    ----------
    napari_viewer
        The viewer.
    review
        A ``ReviewWidget`` to take the open case from (found among the viewer's docks
        when not given).
    settings
        A ``ModelSettingsWidget`` to share (a new one otherwise).

    Signals
    -------
    case_predicted(object)
        A ``CasePrediction`` was shown.
    quality_scored(str, float)
        A Labels layer was scored (layer name, predicted quality).
    triage_finished(object)
        The triage table was filled (a pandas DataFrame).
    """

    case_predicted = Signal(object)
    quality_scored = Signal(str, float)
    triage_finished = Signal(object)
    failed = Signal(str)

    def __init__(self, napari_viewer: Any, review: Any = None,
                 settings: ModelSettingsWidget | None = None, auto: bool = True) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self._review = review
        self._models: ModelSet | None = None
        self._models_key: Any = None
        self._models_lock = threading.Lock()
        self.case_worker: Any = None
        self.quality_worker: Any = None
        self.triage_worker: Any = None
        self._triage_stop = threading.Event()
        self.last_prediction: CasePrediction | None = None
        self.triage_df: Any = None
        self._case_key: Any = None
        self._watched: list[Any] = []
        self._pending_case = False
        self._pending_quality: list[tuple[Any, Any, bool]] = []
        self._scored_layers: set[str] = set()
        self._layer_steps: list[Any] = []
        self._layer_pred: CasePrediction | None = None
        #: predicted maps with more pixels than this are shown as k x k block means (the
        #: MHR model predicts at its input size anyway; napari's upload of a 24 Mpx float
        #: texture per map is what stalls the viewer)
        self.map_display_max_pixels = MAP_DISPLAY_MAX_PIXELS

        self.settings = settings or ModelSettingsWidget(self)
        self._build()

        self._progress_state: tuple[int, int, str] | None = None
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(150)
        self._progress_timer.timeout.connect(self._apply_progress)
        self._case_timer = QTimer(self)
        self._case_timer.setSingleShot(True)
        self._case_timer.setInterval(300)
        self._case_timer.timeout.connect(self._maybe_case_changed)
        self._quality_timer = QTimer(self)
        self._quality_timer.setSingleShot(True)
        self._quality_timer.setInterval(600)
        self._quality_timer.timeout.connect(self.refresh_quality)

        self.settings.selection_changed.connect(self._forget_models)
        layers = self.viewer.layers
        layers.events.inserted.connect(self._layers_changed)
        layers.events.removed.connect(self._layers_changed)
        self.auto_check.setChecked(auto)
        self._connect_review()
        self._layers_changed()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        self.tabs = QTabWidget()
        outer.addWidget(self.tabs)

        # --- case tab
        case = QWidget()
        cl = QVBoxLayout(case)
        head = QHBoxLayout()
        self.case_label = QLabel("no case")
        self.case_label.setWordWrap(True)
        head.addWidget(self.case_label, 1)
        self.predict_button = QPushButton("Predict")
        self.predict_button.clicked.connect(lambda: self.predict_current(explicit=True))
        head.addWidget(self.predict_button)
        cl.addLayout(head)
        self.auto_check = QCheckBox("refresh when the case changes / after edits")
        cl.addWidget(self.auto_check)
        self.case_progress = QProgressBar()
        self.case_progress.setRange(0, 1)
        self.case_progress.setValue(0)
        self.case_progress.setFormat("idle")
        cl.addWidget(self.case_progress)

        summary = QGroupBox("Agreement")
        sf = QFormLayout(summary)
        self.pred_iaa_label = QLabel("—")
        self.emp_iaa_label = QLabel("—")
        self.ece_label = QLabel("—")
        sf.addRow("predicted IAA", self.pred_iaa_label)
        sf.addRow("empirical IAA", self.emp_iaa_label)
        sf.addRow("multi-rater ECE", self.ece_label)
        cl.addWidget(summary)

        self.reliability = AsyncPlot(render_reliability, width=320, height=240)
        self.reliability.submit(None, message="no prediction yet")
        cl.addWidget(self.reliability)

        qbox = QGroupBox("Mask quality (predicted Dice vs. actual leave-one-out Dice)")
        ql = QVBoxLayout(qbox)
        self.quality_table = QTableWidget(0, 4)
        self.quality_table.setHorizontalHeaderLabels(["mask", "annotator", "predicted", "actual LOO"])
        self.quality_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.quality_table.verticalHeader().setVisible(False)
        self.quality_table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.quality_table.setMinimumHeight(120)
        ql.addWidget(self.quality_table)
        row = QHBoxLayout()
        self.labels_combo = QComboBox()
        self.labels_combo.setToolTip("any Labels layer, e.g. a model's segmentation")
        self.score_button = QPushButton("Score layer")
        self.score_button.clicked.connect(self.score_selected_layer)
        row.addWidget(QLabel("Labels layer"))
        row.addWidget(self.labels_combo, 1)
        row.addWidget(self.score_button)
        ql.addLayout(row)
        cl.addWidget(qbox)
        cl.addStretch(1)
        self.tabs.addTab(case, "Case")

        # --- triage tab
        tri = QWidget()
        tl = QVBoxLayout(tri)
        frow = QHBoxLayout()
        self.triage_edit = QLineEdit()
        self.triage_edit.setPlaceholderText("folder of images (masks optional)")
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse_triage)
        frow.addWidget(self.triage_edit, 1)
        frow.addWidget(browse)
        tl.addLayout(frow)
        brow = QHBoxLayout()
        self.triage_button = QPushButton("Predict IAA for all")
        self.triage_button.clicked.connect(self.start_triage)
        self.triage_cancel = QPushButton("Cancel")
        self.triage_cancel.setEnabled(False)
        self.triage_cancel.clicked.connect(self.cancel_triage)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._export_dialog)
        brow.addWidget(self.triage_button)
        brow.addWidget(self.triage_cancel)
        brow.addWidget(self.export_button)
        tl.addLayout(brow)
        self.triage_progress = QProgressBar()
        self.triage_progress.setRange(0, 1)
        self.triage_progress.setValue(0)
        self.triage_progress.setFormat("idle")
        tl.addWidget(self.triage_progress)
        self.triage_table = QTableWidget(0, 4)
        self.triage_table.setHorizontalHeaderLabels(["case", "predicted IAA", "masks", "empirical IAA"])
        self.triage_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.triage_table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.triage_table.verticalHeader().setVisible(False)
        self.triage_table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.triage_table.setSortingEnabled(True)
        tl.addWidget(self.triage_table, 1)
        tl.addWidget(QLabel("lowest predicted IAA first = most ambiguous: send to more annotators"))
        self.tabs.addTab(tri, "Triage")

        # --- models tab
        self.tabs.addTab(self.settings, "Models")

    # ------------------------------------------------------------------ review / case
    @property
    def review(self) -> Any:
        """The review dock in use (or None)."""
        if self._review is None:
            self._review = _find_review(self.viewer)
            if self._review is not None:
                self._connect_review()
        return self._review

    def _connect_review(self) -> None:
        rv = self._review
        if rv is None or getattr(self, "_review_connected", None) is rv:
            return
        for name in ("case_opened", "case_changed"):
            sig = getattr(rv, name, None)
            if sig is not None and hasattr(sig, "connect"):
                sig.connect(self._on_review_case)
                break
        for name in ("agreement_updated", "agreement_changed", "masks_changed"):
            sig = getattr(rv, name, None)
            if sig is not None and hasattr(sig, "connect"):
                sig.connect(self._edited)
                break
        self._review_connected = rv

    def _on_review_case(self, *_: Any) -> None:
        self._case_timer.start()

    def current_case(self) -> Any:
        """The open case: the review dock's, else one built from the viewer's layers.

        Returns None when there is no image.
        """
        rv = self.review
        if rv is not None:
            try:
                case = _review_case(rv)
            except RuntimeError:  # the review dock was closed (its C++ object is gone)
                self._review = None
                self._review_connected = None
                case = None
            if case is not None:
                return case
        return self._case_from_layers()

    def _image_layer(self) -> Any:
        from napari.layers import Image

        def ok(layer: Any) -> bool:
            return (isinstance(layer, Image) and layer.name not in _OWN_LAYERS
                    and _role(layer) in (None, "image"))

        active = self.viewer.layers.selection.active
        if ok(active):
            return active
        for layer in self.viewer.layers:
            if ok(layer):
                return layer
        return None

    def _annotator_layers(self, image_layer: Any) -> list[Any]:
        from napari.layers import Labels

        shape = tuple(np.asarray(image_layer.data).shape[:2]) if image_layer is not None else None
        if image_layer is not None and getattr(image_layer, "rgb", False) is False and np.ndim(image_layer.data) > 2:
            shape = tuple(np.asarray(image_layer.data).shape[-2:])
        out = []
        for layer in self.viewer.layers:
            if _role(layer) not in (None, "annotator") or layer.name in self._scored_layers:
                continue
            if isinstance(layer, Labels) and (shape is None or tuple(layer.data.shape[-2:]) == shape[-2:]):
                out.append(layer)
        return out

    def _case_from_layers(self) -> Case | None:
        # the masks are read-only views of the label layers (no pass over the pixels on
        # the GUI thread); the workers turn them into booleans (``_bool_case``)
        img = self._image_layer()
        if img is None:
            return None
        masks = {layer.name: _read_only(layer.data) for layer in self._annotator_layers(img)}
        return Case(img.name, np.asarray(img.data), masks)

    def _layers_changed(self, *_: Any) -> None:
        from napari.layers import Labels

        current = self.labels_combo.currentText()
        names = [ly.name for ly in self.viewer.layers if isinstance(ly, Labels)]
        self.labels_combo.blockSignals(True)
        self.labels_combo.clear()
        self.labels_combo.addItems(names)
        if current in names:
            self.labels_combo.setCurrentText(current)
        self.labels_combo.blockSignals(False)
        self._watch_labels()
        if self._review is None:
            self.review  # noqa: B018 - look for a review dock that appeared
        self._case_timer.start()

    def _watch_labels(self) -> None:
        from napari.layers import Labels

        for layer in self._watched:
            for ev in ("paint", "set_data"):
                e = getattr(layer.events, ev, None)
                if e is not None:
                    try:
                        e.disconnect(self._edited)
                    except (TypeError, ValueError, RuntimeError):
                        pass
        self._watched = [ly for ly in self.viewer.layers if isinstance(ly, Labels)]
        for layer in self._watched:
            for ev in ("paint", "set_data"):
                e = getattr(layer.events, ev, None)
                if e is not None:
                    e.connect(self._edited)

    def _edited(self, *_: Any) -> None:
        if not self.auto_check.isChecked():
            return
        if self.case_worker is not None:
            # the running prediction reads the live masks: it may have missed this edit
            self._pending_case = True
        if self.last_prediction is not None:
            self._quality_timer.start()

    def _case_key_of(self, case: Any) -> Any:
        if case is None:
            return None
        return (str(case.case_id), tuple(case.mask_ids), np.asarray(case.image).shape)

    def _maybe_case_changed(self) -> None:
        case = self.current_case()
        key = self._case_key_of(case)
        self.case_label.setText(
            "no case: open one in the review dock or add an Image layer" if case is None else
            f"<b>{case.case_id}</b> · {case.n_masks} masks · {np.asarray(case.image).shape}"
        )
        if key == self._case_key:
            return
        self._case_key = key
        if case is not None and self.auto_check.isChecked() and self.settings.selected():
            self.predict_current(explicit=False)

    # ------------------------------------------------------------------ models
    def _forget_models(self) -> None:
        with self._models_lock:
            self._models = None
            self._models_key = None

    def _selection_key(self) -> tuple[Any, ...]:
        sel = self.settings.selected()
        return (tuple(sorted((k, str(v)) for k, v in sel.items())), self.settings.device())

    def _get_models(self, key: tuple[Any, ...]) -> ModelSet:
        """Load (or reuse) the chosen models; runs in a worker thread."""
        with self._models_lock:
            if self._models is not None and self._models_key == key:
                return self._models
        selection = dict(key[0])
        models = load_models(selection, device=key[1])
        with self._models_lock:
            self._models, self._models_key = models, key
        return models

    # ------------------------------------------------------------------ case prediction
    def predict_current(self, explicit: bool = True) -> None:
        """Predict the open case in a worker (a no-op while one is running)."""
        if self.case_worker is not None:
            self._pending_case = True
            return
        case = self.current_case()
        if case is None:
            if explicit:
                notify_error("no image to predict: open a case or add an Image layer")
            return
        key = self._selection_key()
        if not key[0]:
            if explicit:
                notify_error("no model chosen: pick at least one model in the Models tab")
            self.case_progress.setFormat("no model chosen")
            return
        empty = _empty_rule(self.review)
        get_models = self._get_models
        max_pixels = self.map_display_max_pixels

        def job():
            yield ("step", 0, 4, "loading models")
            models = get_models(key)
            yield ("device", models.device)
            yield ("step", 1, 4, "predicting")
            # the masks may be the live ones: a stroke painted meanwhile is either seen or
            # not (the prediction is re-run after edits, see ``_edited``)
            bcase = _bool_case(case)
            # the reliability curves and the multi-rater ECE (accumulated over chunks of
            # pixels) as a step of their own, so the progress bar moves
            pred = predict_case(bcase, models, empty=empty, with_ece=False)
            yield ("step", 2, 4, "reliability")
            fill_reliability(pred, [bcase.masks[m] for m in bcase.mask_ids])
            yield ("step", 3, 4, "preparing the maps")
            display = _display_maps(pred, max_pixels)
            yield ("step", 4, 4, "done")
            return pred, display

        self._progress(0, 4, "starting…")
        self.predict_button.setEnabled(False)
        self.case_worker = self._start_worker(
            job, "prediction", self._on_case_yield, lambda res: self._show_prediction(*res),
            self._case_done,
        )

    def _start_worker(
        self,
        job: Callable[[], Any],
        what: str,
        on_yield: Callable[[Any], None] | None,
        on_return: Callable[[Any], None],
        on_finish: Callable[[], None],
    ) -> Any:
        """Run generator ``job`` in a napari thread worker; errors become notifications."""
        from napari.qt.threading import create_worker

        w = create_worker(job, _start_thread=False, _ignore_errors=True)
        if on_yield is not None:
            w.yielded.connect(on_yield)
        w.returned.connect(on_return)
        w.errored.connect(lambda exc: self._fail(what, exc))
        w.finished.connect(on_finish)
        w.start()
        return w

    def _on_case_yield(self, msg: tuple[Any, ...]) -> None:
        if msg[0] == "device":
            self.settings.set_in_use(str(msg[1]))
        elif msg[0] == "step":
            _, done, total, text = msg
            self._progress(done, total, f"{text} (%v/%m)")

    def _progress(self, done: int, total: int, fmt: str) -> None:
        """Note the case progress; shown by a 150 ms timer (a progress-bar change repaints
        at once, and on a software-GL display that recomposes the whole viewer window)."""
        self._progress_state = (done, total, fmt)
        if not self._progress_timer.isActive():
            self._progress_timer.start()

    def _apply_progress(self) -> None:
        self._progress_timer.stop()
        state, self._progress_state = self._progress_state, None
        if state is None:
            return
        done, total, fmt = state
        bar = self.case_progress
        if bar.maximum() != total:
            bar.setRange(0, total)
        if bar.value() != done:
            bar.setValue(done)
        if bar.format() != fmt:
            bar.setFormat(fmt)

    def _case_done(self) -> None:
        self._apply_progress()
        self.case_worker = None
        self.predict_button.setEnabled(True)
        if self._pending_case:
            self._pending_case = False
            self._case_key = None
            self._case_timer.start()

    def _fail(self, what: str, exc: BaseException) -> None:
        msg = f"{what} failed: {exc}"
        notify_error(msg)
        if what == "prediction":
            self._apply_progress()
        self.case_progress.setFormat(f"{what} failed")
        self.failed.emit(msg)

    def _show_prediction(self, pred: CasePrediction, display: list[tuple] | None = None) -> None:
        self.last_prediction = pred
        # the map layers first, one per event-loop turn (each costs napari a repaint);
        # the numbers, table and plot after them, so that the plot's render thread does
        # not compete with napari's layer updates
        if display is None:
            display = _display_maps(pred, self.map_display_max_pixels)
        self._layer_steps = list(display)
        self._layer_pred = pred
        self._next_layer_step()

    def _show_numbers(self, pred: CasePrediction) -> None:
        self.pred_iaa_label.setText(_fmt(pred.predicted_iaa))
        self.emp_iaa_label.setText(_fmt(pred.empirical_iaa) + (
            f"  ({len(pred.mask_ids)} masks)" if pred.mask_ids else "  (no masks)"))
        ece = ece_value(pred.ece)
        self.ece_label.setText(_fmt(ece))
        if pred.reliability:
            self.reliability.submit(pred.reliability, title=f"{pred.case_id}: multi-rater ECE {_fmt(ece)}")
        elif pred.mhr_calibrated is not None:
            self.reliability.submit(None, message="no annotator masks to compare with")
        else:
            self.reliability.submit(None, message="no MHR model chosen")
        self._fill_quality(pred)

    def _next_layer_step(self) -> None:
        if not self._layer_steps:
            pred, self._layer_pred = self._layer_pred, None
            img = self._image_layer()
            if img is not None and self.viewer.layers.selection.active is not img:
                self.viewer.layers.selection.active = img
            if pred is not None:
                self._show_numbers(pred)
                self.case_predicted.emit(pred)
            return
        name, data, cmap, limits, k = self._layer_steps.pop(0)
        try:
            self._set_layer(name, data, cmap, limits, k)
        finally:
            QTimer.singleShot(1, self._next_layer_step)  # 1 ms: let the repaint happen between

    def _set_layer(self, name: str, data: np.ndarray, cmap: str, limits: tuple[float, float],
                   k: int = 1) -> None:
        """Update the map layer in place (data, placement, contrast); add it the first time."""
        img = self._image_layer()
        kw = _placement(img, data, k)
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            for attr, v in kw.items():
                if tuple(np.asarray(getattr(layer, attr))) != tuple(v):
                    setattr(layer, attr, v)
            layer.data = data
            if tuple(layer.contrast_limits) != tuple(limits):
                layer.contrast_limits = limits
        else:
            self.viewer.add_image(
                data, name=name, colormap=cmap, contrast_limits=limits, opacity=0.6,
                blending="additive" if name != LAYER_DIFF else "translucent",
                visible=name == LAYER_CAL, **kw,
            )

    def _push_quality_to_review(self, quality: Mapping[str, float]) -> None:
        """Hand predicted quality to the review dock's agreement panel, if it takes it.

        Calls ``review.panel.set_quality({mask_id: value})`` when the panel has that method.
        """
        panel = getattr(self._review, "panel", None)
        setter = getattr(panel, "set_quality", None)
        if callable(setter) and quality:
            try:
                setter(dict(quality))
            except Exception as exc:  # noqa: BLE001 - our own table still shows them
                notify_error(f"agreement panel: cannot show predicted quality ({exc})")

    def _fill_quality(self, pred: CasePrediction) -> None:
        self._push_quality_to_review(pred.quality)
        t = self.quality_table
        t.setSortingEnabled(False)
        t.setRowCount(0)
        for mid in pred.mask_ids:
            self._add_quality_row(mid, pred.raters.get(mid, mid), pred.quality.get(mid, math.nan),
                                  pred.loo_dice.get(mid, math.nan))
        t.setSortingEnabled(True)

    def _add_quality_row(self, name: str, annotator: str, predicted: float, actual: float) -> None:
        t = self.quality_table
        for r in range(t.rowCount()):
            if t.item(r, 0) is not None and t.item(r, 0).text() == name:
                t.removeRow(r)
                break
        r = t.rowCount()
        t.insertRow(r)
        t.setItem(r, 0, QTableWidgetItem(name))
        t.setItem(r, 1, QTableWidgetItem(annotator))
        t.setItem(r, 2, _NumItem(predicted))
        t.setItem(r, 3, _NumItem(actual))

    def quality_rows(self) -> dict[str, tuple[float, float]]:
        """The quality table as ``name -> (predicted, actual)``."""
        out = {}
        for r in range(self.quality_table.rowCount()):
            name = self.quality_table.item(r, 0).text()
            out[name] = (self.quality_table.item(r, 2).value, self.quality_table.item(r, 3).value)
        return out

    # ------------------------------------------------------------------ quality
    def refresh_quality(self) -> None:
        """Re-score every annotator mask of the open case (after edits)."""
        case = self.current_case()
        if case is None or not case.mask_ids:
            return
        self._run_quality({mid: case.masks[mid] for mid in case.mask_ids}, case, annotators=True)

    def score_selected_layer(self) -> None:
        """Score the Labels layer chosen in the combo box."""
        name = self.labels_combo.currentText()
        if not name or name not in self.viewer.layers:
            notify_error("choose a Labels layer to score")
            return
        self.score_layer(self.viewer.layers[name])

    def score_layer(self, layer: Any) -> None:
        """Predict the quality of any Labels layer (compared with the annotators' consensus)."""
        case = self.current_case()
        if case is None:
            notify_error("no image to score the layer on")
            return
        mask = _read_only(layer.data)  # made boolean in the worker
        if mask.shape[-2:] != tuple(np.asarray(case.image).shape[:2])[-2:] and mask.shape != case.shape:
            notify_error(f"layer {layer.name!r}: shape {mask.shape} does not match the image {case.shape}")
            return
        self._scored_layers.add(layer.name)  # a model's segmentation, not an annotator
        self._run_quality({layer.name: mask}, case, annotators=False)

    def _run_quality(self, masks: dict[str, np.ndarray], case: Any, annotators: bool) -> None:
        key = self._selection_key()
        if "quality" not in dict(key[0]):
            if not annotators:
                notify_error("no quality model chosen: pick one in the Models tab")
            return
        if self.quality_worker is not None:
            self._pending_quality.append((masks, case, annotators))  # after the running one
            return
        get_models = self._get_models
        image = case.image
        masks_in = masks

        def job() -> dict[str, tuple[float, float, str]]:
            from napari_iaa import agreement as ag

            models = get_models(key)
            masks = {k: _as_bool(m) for k, m in masks_in.items()}
            q = predict_quality(models.quality, image, masks)
            out: dict[str, tuple[float, float, str]] = {}
            if annotators:
                stack = np.stack([masks[k] for k in masks])
                loo = _loo(stack, list(masks)) if len(masks) >= 2 else {}
                for k in masks:
                    out[k] = (q.get(k, math.nan), loo.get(k, math.nan), case.raters.get(k, k))
            else:
                others = [_as_bool(case.masks[m]) for m in case.mask_ids if m not in masks]
                for k, m in masks.items():
                    actual = math.nan
                    if others:
                        ref = ag.majority_vote(np.stack(others))
                        actual = float(ag.dice(m, ref))
                    out[k] = (q.get(k, math.nan), actual, "(layer vs. majority)")
            return out

        self.quality_worker = self._start_worker(
            job, "quality", None, self._show_quality, self._quality_done
        )

    def _show_quality(self, scores: dict[str, tuple[float, float, str]]) -> None:
        self.quality_table.setSortingEnabled(False)
        for name, (pred, actual, annot) in scores.items():
            self._add_quality_row(name, annot, pred, actual)
            if self.last_prediction is not None:
                self.last_prediction.quality[name] = pred
        self.quality_table.setSortingEnabled(True)
        if self.last_prediction is not None:
            self._push_quality_to_review(self.last_prediction.quality)
        for name, (pred, _a, _n) in scores.items():
            self.quality_scored.emit(name, float(pred))

    def _quality_done(self) -> None:
        self.quality_worker = None
        if self._pending_quality:
            masks, case, annotators = self._pending_quality.pop(0)
            if annotators:  # re-read the edited masks rather than the stale ones
                self._pending_quality = [p for p in self._pending_quality if not p[2]]
                self.refresh_quality()
            else:
                self._run_quality(masks, case, annotators)

    # ------------------------------------------------------------------ triage
    def _browse_triage(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of images", self.triage_edit.text())
        if path:
            self.triage_edit.setText(path)

    def start_triage(self, folder: str | Path | None = None, batch_size: int = 8) -> None:
        """Predict the IAA of every image in a folder, in batches, in a worker."""
        if self.triage_worker is not None:
            return
        folder = Path(folder or self.triage_edit.text().strip())
        self.triage_edit.setText(str(folder))
        if not folder.is_dir():
            notify_error(f"{folder}: folder not found")
            return
        key = self._selection_key()
        if "iaa" not in dict(key[0]):
            notify_error("no IAA model chosen: pick one in the Models tab")
            return
        stop = self._triage_stop
        stop.clear()
        get_models = self._get_models

        def job():
            import pandas as pd

            models = get_models(key)
            items = _triage_items(folder)
            total = len(items)
            rows: list[dict[str, Any]] = []
            yield ("progress", 0, total, [])
            for start in range(0, total, batch_size):
                if stop.is_set():
                    break
                batch = items[start:start + batch_size]
                images = []
                for it in batch:
                    images.append(it["load"]())
                vals = predict_iaa_images(models.iaa, images, batch_size, should_stop=stop.is_set)
                new = []
                for it, v in zip(batch, vals):
                    row = {"case_id": it["case_id"], "predicted_iaa": v,
                           "n_masks": it["n_masks"], "empirical_iaa": it["empirical_iaa"](),
                           "image_path": str(it["path"])}
                    new.append(row)
                rows += new
                yield ("progress", min(start + len(batch), total), total, new)
            df = pd.DataFrame(rows, columns=["case_id", "predicted_iaa", "n_masks",
                                             "empirical_iaa", "image_path"])
            return df.sort_values("predicted_iaa", kind="stable").reset_index(drop=True)

        self.triage_table.setSortingEnabled(False)
        self.triage_table.setRowCount(0)
        self.triage_progress.setRange(0, 0)
        self.triage_progress.setFormat("reading folder…")
        self.triage_button.setEnabled(False)
        self.triage_cancel.setEnabled(True)
        self.triage_worker = self._start_worker(
            job, "triage", self._on_triage_yield, self._triage_returned, self._triage_done
        )

    def cancel_triage(self) -> None:
        """Stop the triage after the current batch (rows so far stay)."""
        self._triage_stop.set()
        self.triage_progress.setFormat("cancelling…")

    def _on_triage_yield(self, msg: tuple[Any, ...]) -> None:
        _, done, total, rows = msg
        self.triage_progress.setRange(0, max(total, 1))
        self.triage_progress.setValue(done)
        self.triage_progress.setFormat(f"{done}/{total} images")
        t = self.triage_table
        for row in rows:
            r = t.rowCount()
            t.insertRow(r)
            t.setItem(r, 0, QTableWidgetItem(str(row["case_id"])))
            t.setItem(r, 1, _NumItem(row["predicted_iaa"]))
            t.setItem(r, 2, _NumItem(row["n_masks"], "{:.0f}"))
            t.setItem(r, 3, _NumItem(row["empirical_iaa"]))

    def _triage_returned(self, df: Any) -> None:
        self.triage_df = df
        self.triage_table.setSortingEnabled(True)
        self.triage_table.sortItems(1, Qt.AscendingOrder)
        self.export_button.setEnabled(len(df) > 0)
        stopped = self._triage_stop.is_set()
        pushed = self.push_to_dataset_table(df)
        self.triage_progress.setFormat(
            f"{len(df)} images{' (cancelled)' if stopped else ''}"
            f"{' · added to the data-set table' if pushed else ''}")
        self.triage_finished.emit(df)

    def push_to_dataset_table(self, df: Any) -> bool:
        """Add a ``predicted_IAA`` column to the review dock's data-set table.

        Only when the review dock shows a data set that contains the triaged cases;
        returns True if the column was added.
        """
        rv = self.review
        model = getattr(getattr(rv, "dataset_panel", None), "model", None)
        if model is None or df is None or not len(df):
            return False
        try:
            frame = model.frame()
            if frame is None or "case_id" not in frame or not (
                    set(frame["case_id"].astype(str)) & set(df["case_id"].astype(str))):
                return False
            values = dict(zip(df["case_id"].astype(str), df["predicted_iaa"].astype(float)))
            frame = frame.copy()
            frame["predicted_IAA"] = frame["case_id"].astype(str).map(values).astype(float)
            model.set_frame(frame)
            return True
        except Exception as exc:  # noqa: BLE001 - the triage table still has the values
            notify_error(f"could not add the predictions to the data-set table: {exc}")
            return False

    def _triage_done(self) -> None:
        self.triage_worker = None
        self.triage_button.setEnabled(True)
        self.triage_cancel.setEnabled(False)

    def export_triage(self, path: str | Path) -> Path:
        """Write the triage table to CSV (sorted by predicted IAA, most ambiguous first)."""
        if self.triage_df is None:
            raise ValueError("no triage results to export")
        from napari_iaa.predict import _write_csv_atomic

        path = Path(path)
        _write_csv_atomic(self.triage_df, path)
        return path

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export triage", "triage.csv", "CSV (*.csv)")
        if path:
            try:
                self.export_triage(path)
            except Exception as exc:  # noqa: BLE001
                notify_error(f"{path}: cannot write ({exc})")

    # ------------------------------------------------------------------ teardown
    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self._triage_stop.set()
        for w in (self.case_worker, self.quality_worker, self.triage_worker):
            if w is not None:
                w.quit()
        super().closeEvent(event)


# ---------------------------------------------------------------------- helpers
def _fmt(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "—"
    return "—" if not math.isfinite(f) else f"{f:.3f}"


def _placement(img_layer: Any, data: np.ndarray, k: int = 1) -> dict[str, Any]:
    """scale / translate that lay a map over the image layer (maps may be smaller).

    ``k > 1``: ``data`` holds k x k block means of a full-resolution map.
    """
    if img_layer is None:
        return {"scale": (float(k),) * data.ndim, "translate": ((k - 1) / 2,) * data.ndim} if k > 1 else {}
    if k > 1:
        base_scale = np.asarray(img_layer.scale, float)[-data.ndim:]
        base_tr = np.asarray(img_layer.translate, float)[-data.ndim:]
        return {"scale": tuple(base_scale * k), "translate": tuple(base_tr + base_scale * (k - 1) / 2)}
    shape = np.asarray(img_layer.data).shape
    if getattr(img_layer, "rgb", False):
        shape = shape[:-1]
    shape = shape[-data.ndim:]
    base_scale = np.asarray(img_layer.scale)[-data.ndim:]
    ratio = np.asarray(shape, float) / np.asarray(data.shape, float)
    return {"scale": tuple(base_scale * ratio),
            "translate": tuple(np.asarray(img_layer.translate)[-data.ndim:])}


def _read_only(a: Any) -> np.ndarray:
    """A read-only view of an array (no copy)."""
    v = np.asarray(a).view()
    v.flags.writeable = False
    return v


def _as_bool(m: Any) -> np.ndarray:
    """A mask as a boolean array (labels > 0); boolean arrays are passed through."""
    m = np.asarray(m)
    return m if m.dtype == bool else m > 0


def _bool_case(case: Any) -> Any:
    """``case`` with boolean masks (a worker-side conversion of label-layer views)."""
    masks = getattr(case, "masks", None) or {}
    if all(np.asarray(m).dtype == bool for m in masks.values()):
        return case
    import dataclasses

    return dataclasses.replace(case, masks={k: _as_bool(m) for k, m in masks.items()})


def _display_maps(pred: Any, max_pixels: int) -> list[tuple[str, np.ndarray, str, tuple[float, float], int]]:
    """The map layers to show: (name, data, colormap, contrast limits, block size k).

    Maps with more than ``max_pixels`` pixels become k x k block means (runs in the
    prediction worker: the difference map and the means are whole-image work).
    """
    out = []
    for name, data, cmap, limits in (
            (LAYER_RAW, pred.mhr_raw, "magma", (0.0, 1.0)),
            (LAYER_CAL, pred.mhr_calibrated, "magma", (0.0, 1.0)),
            (LAYER_DIFF, pred.mhr_difference, "PiYG", (-1.0, 1.0))):
        if data is None:
            continue
        data = np.asarray(data)
        k = 1
        if data.ndim == 2 and data.size > max_pixels:
            k = int(np.ceil(np.sqrt(data.size / max_pixels)))
        out.append((name, block_mean(data, k) if k > 1 else data, cmap, limits, k))
    return out


def _role(layer: Any) -> str | None:
    """The napari-iaa role tag of a layer (image, annotator, mhr, ...), None if untagged."""
    meta = getattr(layer, "metadata", None) or {}
    tag = meta.get("napari_iaa") if isinstance(meta, Mapping) else None
    return tag.get("role") if isinstance(tag, Mapping) else None


def _find_review(viewer: Any) -> Any:
    """The ReviewWidget docked in the viewer, if any."""
    try:
        from napari_iaa.widgets.review import ReviewWidget  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - the review dock is optional
        ReviewWidget = None  # noqa: N806
    try:
        docks = viewer.window.dock_widgets
    except Exception:  # noqa: BLE001
        return None
    for widget in list(docks.values()):
        w = getattr(widget, "native", widget)
        if ReviewWidget is not None and isinstance(w, ReviewWidget):
            return w
        if ReviewWidget is not None:
            found = w.findChild(ReviewWidget) if hasattr(w, "findChild") else None
            if found is not None:
                return found
    return None


def _review_case(review: Any) -> Any:
    """The case open in a review dock, with the masks as currently edited."""
    for name in ("current_case", "case"):
        attr = getattr(review, name, None)
        if callable(attr):
            try:
                case = attr(copy=False)  # views of the live masks: no 360 MB copy
            except TypeError:
                case = attr()
        else:
            case = attr
        if case is not None and hasattr(case, "image"):
            return case
    our = getattr(review, "our_layers", None)
    ann = getattr(review, "annotator_layers", None)
    if not callable(our) or not callable(ann):
        return None
    images = our("image")
    if not images:
        return None
    layers = ann()
    masks = {mid: _read_only(layer.data) for mid, layer in layers.items()}
    # Case fills raters from the mask ids ("A04#2" -> "A04")
    return Case(str(getattr(review, "case_id", None) or images[0].name),
                np.asarray(images[0].data), masks)


def _empty_rule(review: Any) -> str:
    panel = getattr(review, "panel", None) if review is not None else None
    for obj in (review, panel):
        if obj is None:
            continue
        for name in ("empty_rule", "empty", "empty_pair"):
            v = getattr(obj, name, None)
            v = v() if callable(v) else v
            if isinstance(v, str) and v in ("zero", "one", "ignore"):
                return v
    return "zero"


def _loo(stack: np.ndarray, ids: list[str]) -> dict[str, float]:
    from napari_iaa import agreement as ag

    vals = ag.leave_one_out_dice(stack)
    if isinstance(vals, Mapping):
        return {k: float(v) for k, v in vals.items()}
    return {mid: float(v) for mid, v in zip(ids, np.asarray(vals, float).ravel())}


def _triage_items(folder: Path) -> list[dict[str, Any]]:
    """What to score in a folder: a data set's cases if it is one, else its image files."""
    from napari_iaa.errors import IAAError

    try:
        from napari_iaa.data import open_dataset

        ds = open_dataset(folder)
        ids = list(ds.ids)
    except (IAAError, ImportError, AttributeError):
        ds, ids = None, []
    items: list[dict[str, Any]] = []
    if ds is not None and ids:
        for cid in ids:
            entry = ds.entry(cid)
            cache: dict[str, Any] = {}

            def load(cid=cid, cache=cache) -> np.ndarray:
                case = ds.load(cid)
                cache["case"] = case
                return case.image

            def emp(cache=cache) -> float:
                from napari_iaa import agreement as ag

                case = cache.get("case")
                if case is None or case.n_masks < 2:
                    return math.nan
                return float(ag.iaa(case.stack()))

            items.append({"case_id": cid, "path": entry.image_path, "load": load,
                          "n_masks": len(entry.mask_paths), "empirical_iaa": emp})
        return items
    from napari_iaa.data import read_image

    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file() and "mask" not in p.stem.lower():
            items.append({"case_id": p.stem, "path": p, "load": lambda p=p: read_image(p),
                          "n_masks": 0, "empirical_iaa": lambda: math.nan})
    return items


def measure_event_loop_stall(run: Callable[[], Any], wait: Callable[[], bool], qtbot: Any,
                             interval_ms: int = 5, timeout_ms: int = 120_000) -> float:
    """Longest gap (ms) between ticks of a ``QTimer`` heartbeat while ``run`` works.

    ``run`` starts the work; ``wait`` says when it is finished. The figure is the event
    loop's worst stall (minus nothing: a tick interval of ``interval_ms`` is the floor).
    """
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000.0)
        last[0] = now

    timer = QTimer()
    timer.setInterval(interval_ms)
    timer.timeout.connect(tick)
    timer.start()
    last[0] = time.perf_counter()
    try:
        run()
        qtbot.waitUntil(wait, timeout=timeout_ms)
    finally:
        timer.stop()
    return max(gaps) if gaps else math.nan
