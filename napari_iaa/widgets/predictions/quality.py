"""Mask quality in the predictions dock: predicted Dice beside the actual one, per mask.

The annotators' masks are re-scored after edits (actual = leave-one-out Dice); any other
Labels layer (a model's segmentation) can be scored against the annotators' majority.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from napari_iaa.data import Case
from napari_iaa.predict import CasePrediction
from napari_iaa.widgets._common import fmt_number, notify_error, refill_combo
from napari_iaa.widgets.predictions.case_source import CaseSource, read_only
from napari_iaa.widgets.predictions.events import QualityScore
from napari_iaa.widgets.predictions.jobs import ModelCache, ModelKey, quality_job
from napari_iaa.widgets.predictions.worker_slot import WorkerSlot

__all__ = ["NumItem", "QualityPanel"]


class NumItem(QTableWidgetItem):
    """A table cell that sorts by number (NaN last)."""

    def __init__(self, value: float | None, spec: str = ".3f") -> None:
        self.value = float(value) if value is not None else math.nan
        super().__init__(fmt_number(self.value, spec))
        self.setTextAlignment(int(Qt.AlignRight | Qt.AlignVCenter))

    def __lt__(self, other: QTableWidgetItem) -> bool:
        b = other.value if isinstance(other, NumItem) else math.nan
        if math.isnan(self.value):
            return False
        if math.isnan(b):
            return True
        return self.value < b


class QualityPanel(QGroupBox):
    """The quality table and the "score any Labels layer" row.

    Parameters
    ----------
    source
        Where the case comes from.
    models
        The dock's loaded models.
    model_key
        Returns the models chosen now.
    on_error
        Called with ``(what, exception)`` when a worker fails.

    Signals
    -------
    scored(str, float)
        A mask or layer was scored (name, predicted quality).
    """

    scored = Signal(str, float)

    def __init__(self, source: CaseSource, models: ModelCache, model_key: Callable[[], ModelKey],
                 on_error: Callable[[str, BaseException], None]) -> None:
        super().__init__("Mask quality (predicted Dice vs. actual leave-one-out Dice)")
        self.source = source
        self._models = models
        self._model_key = model_key
        self._on_error = on_error
        self.job = WorkerSlot(self)
        self._pending: list[tuple[dict[str, np.ndarray], Case, bool]] = []

        ql = QVBoxLayout(self)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["mask", "annotator", "predicted", "actual LOO",
                                              "model"])
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.table.setMinimumHeight(120)
        self.table.setToolTip(
            "one row per mask; a volume's masks are scored slice by slice and each mask's "
            "predicted Dice is the mean over its slices weighted by its area on each "
            "(actual: the 3D leave-one-out Dice)")
        ql.addWidget(self.table)
        row = QHBoxLayout()
        self.labels_combo = QComboBox()
        self.labels_combo.setToolTip("any Labels layer, e.g. a model's segmentation")
        self.score_button = QPushButton("Score layer")
        self.score_button.clicked.connect(self.score_selected_layer)
        row.addWidget(QLabel("Labels layer"))
        row.addWidget(self.labels_combo, 1)
        row.addWidget(self.score_button)
        ql.addLayout(row)
        source.layers_changed.connect(self._refill_labels)
        self._refill_labels()

    def _refill_labels(self) -> None:
        refill_combo(self.labels_combo, self.source.labels_names(),
                     keep=self.labels_combo.currentText())

    # ------------------------------------------------------------------ table
    def show_prediction(self, pred: CasePrediction) -> None:
        """Fill the table from a case prediction (one row per annotator mask)."""
        t = self.table
        t.setSortingEnabled(False)
        t.setRowCount(0)
        model = pred.models.get("quality", "")
        for mid in pred.mask_ids:
            self._add_row(mid, pred.raters.get(mid, mid), pred.quality.get(mid, math.nan),
                          pred.loo_dice.get(mid, math.nan), model)
        t.setSortingEnabled(True)

    def _add_row(self, name: str, annotator: str, predicted: float, actual: float,
                 model: str = "") -> None:
        t = self.table
        for r in range(t.rowCount()):
            if t.item(r, 0) is not None and t.item(r, 0).text() == name:
                t.removeRow(r)
                break
        r = t.rowCount()
        t.insertRow(r)
        t.setItem(r, 0, QTableWidgetItem(name))
        t.setItem(r, 1, QTableWidgetItem(annotator))
        t.setItem(r, 2, NumItem(predicted))
        t.setItem(r, 3, NumItem(actual))
        t.setItem(r, 4, QTableWidgetItem(model or "—"))

    def rows(self) -> dict[str, tuple[float, float]]:
        """The table as ``name -> (predicted, actual)``."""
        t = self.table
        return {t.item(r, 0).text(): (t.item(r, 2).value, t.item(r, 3).value)
                for r in range(t.rowCount())}

    # ------------------------------------------------------------------ scoring
    def refresh(self) -> None:
        """Re-score every annotator mask of the open case (after edits)."""
        case = self.source.current_case()
        if case is None or not case.mask_ids:
            return
        self._run({mid: case.masks[mid] for mid in case.mask_ids}, case, annotators=True)

    def score_selected_layer(self) -> None:
        """Score the Labels layer chosen in the combo box."""
        name = self.labels_combo.currentText()
        layers = self.source.viewer.layers
        if not name or name not in layers:
            notify_error("choose a Labels layer to score")
            return
        self.score_layer(layers[name])

    def score_layer(self, layer: Any) -> None:
        """Predict the quality of any Labels layer (compared with the annotators' consensus)."""
        case = self.source.current_case()
        if case is None:
            notify_error("no image to score the layer on")
            return
        mask = read_only(layer.data)  # made boolean in the worker
        image_shape = tuple(np.asarray(case.image).shape[:2])
        if mask.shape[-2:] != image_shape[-2:] and mask.shape != case.shape:
            notify_error(f"layer {layer.name!r}: shape {mask.shape} does not match the image "
                         f"{case.shape}")
            return
        self.source.scored_layers.add(layer.name)  # a model's segmentation, not an annotator
        self._run({layer.name: mask}, case, annotators=False)

    def _run(self, masks: dict[str, np.ndarray], case: Case, annotators: bool) -> None:
        key = self._model_key()
        if "quality" not in dict(key[0]):
            if not annotators:
                notify_error("no quality model chosen: pick one in the Models tab")
            return
        if self.job.running:
            self._pending.append((masks, case, annotators))  # after the running one
            return
        self.job.start(quality_job, case, masks, annotators, self._models, key,
                       on_return=self._show, on_finish=self._done,
                       on_error=self._failed, activity=f"mask quality: {case.case_id}")

    def _failed(self, exc: BaseException) -> None:
        self._on_error("quality", exc)

    def _show(self, scores: dict[str, QualityScore]) -> None:
        self.table.setSortingEnabled(False)
        for name, s in scores.items():
            self._add_row(name, s.annotator, s.predicted, s.actual, s.model)
        self.table.setSortingEnabled(True)
        for name, s in scores.items():
            self.scored.emit(name, float(s.predicted))

    def _done(self) -> None:
        if self._pending:
            masks, case, annotators = self._pending.pop(0)
            if annotators:  # re-read the edited masks rather than the stale ones
                self._pending = [p for p in self._pending if not p[2]]
                self.refresh()
            else:
                self._run(masks, case, annotators)
