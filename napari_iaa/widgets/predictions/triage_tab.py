"""The Triage tab: predicted IAA for every image of a folder or data set.

The images are scored in batches in a worker (progress here and in napari's activity
dock, cancel) into a sortable table, lowest predicted IAA (most ambiguous) first; the
values join the review dock's data-set table when it shows the same cases; CSV export.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.predict import write_csv_atomic
from napari_iaa.widgets._common import Progress, notify_error
from napari_iaa.widgets._common.forms import PathEdit
from napari_iaa.widgets.predictions.events import TriageRows
from napari_iaa.widgets.predictions.jobs import ModelCache, ModelKey, triage_job
from napari_iaa.widgets.predictions.quality import NumItem
from napari_iaa.widgets.predictions.worker_slot import WorkerSlot

__all__ = ["TriageTab"]


class TriageTab(QWidget):
    """Predict the IAA of a folder's images (a data set's cases or plain image files).

    Parameters
    ----------
    models
        The dock's loaded models.
    model_key
        Returns the models chosen now.
    dataset_model
        Returns the review dock's data-set table model (None without one).

    Signals
    -------
    triage_finished(object)
        The table was filled (a pandas DataFrame, sorted by predicted IAA).
    failed(str)
        The triage failed (the message also went to a notification).
    """

    triage_finished = Signal(object)
    failed = Signal(str)

    def __init__(self, models: ModelCache, model_key: Callable[[], ModelKey],
                 dataset_model: Callable[[], Any]) -> None:
        super().__init__()
        self._models = models
        self._model_key = model_key
        self._dataset_model = dataset_model
        self.job = WorkerSlot(self)
        self._stop = threading.Event()
        self.triage_df: Any = None
        self._build()

    def _build(self) -> None:
        tl = QVBoxLayout(self)
        self.triage_edit = PathEdit(title="Folder of images",
                                    placeholder="folder of images (masks optional)")
        tl.addWidget(self.triage_edit)
        brow = QHBoxLayout()
        self.triage_button = QPushButton("Predict IAA for all")
        self.triage_button.clicked.connect(lambda: self.start_triage())
        self.triage_cancel = QPushButton("Cancel")
        self.triage_cancel.setEnabled(False)
        self.triage_cancel.clicked.connect(self.cancel_triage)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._export_dialog)
        for b in (self.triage_button, self.triage_cancel, self.export_button):
            brow.addWidget(b)
        tl.addLayout(brow)
        self.triage_progress = QProgressBar()
        self.triage_progress.setRange(0, 1)
        self.triage_progress.setValue(0)
        self.triage_progress.setFormat("idle")
        tl.addWidget(self.triage_progress)
        self.triage_table = QTableWidget(0, 5)
        self.triage_table.setHorizontalHeaderLabels(
            ["case", "predicted IAA", "masks", "empirical IAA", "model"])
        self.triage_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.triage_table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.triage_table.verticalHeader().setVisible(False)
        self.triage_table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.triage_table.setSortingEnabled(True)
        tl.addWidget(self.triage_table, 1)
        tl.addWidget(QLabel("lowest predicted IAA first = most ambiguous: send to more annotators"))

    # ------------------------------------------------------------------ the run
    def start_triage(self, folder: str | Path | None = None, batch_size: int = 8) -> None:
        """Predict the IAA of every image in a folder, in batches, in a worker."""
        if self.job.running:
            return
        folder = Path(folder or self.triage_edit.text())
        self.triage_edit.setText(str(folder))
        if not folder.is_dir():
            notify_error(f"{folder}: folder not found")
            return
        key = self._model_key()
        if "iaa" not in dict(key[0]):
            notify_error("no IAA model chosen: pick one in the Models tab")
            return
        self._stop.clear()
        self.triage_table.setSortingEnabled(False)
        self.triage_table.setRowCount(0)
        self.triage_progress.setRange(0, 0)
        self.triage_progress.setFormat("reading folder…")
        self.triage_button.setEnabled(False)
        self.triage_cancel.setEnabled(True)
        self.job.start(triage_job, folder, self._models, key, batch_size, self._stop,
                       on_yield=self._on_yield, on_return=self._returned,
                       on_error=self._fail, on_finish=self._done,
                       activity=f"triage: {folder.name}")

    def cancel_triage(self) -> None:
        """Stop the triage after the current batch (rows so far stay)."""
        self._stop.set()
        self.triage_progress.setFormat("cancelling…")

    def _on_yield(self, msg: Any) -> None:
        match msg:
            case Progress(done=done, total=total):
                self.triage_progress.setRange(0, max(total, 1))
                self.triage_progress.setValue(done)
                self.triage_progress.setFormat(f"{done}/{total} images")
            case TriageRows(rows=rows):
                self._add_rows(rows)

    def _add_rows(self, rows: tuple[dict[str, Any], ...]) -> None:
        t = self.triage_table
        for row in rows:
            r = t.rowCount()
            t.insertRow(r)
            t.setItem(r, 0, QTableWidgetItem(str(row["case_id"])))
            t.setItem(r, 1, NumItem(row["predicted_iaa"]))
            t.setItem(r, 2, NumItem(row["n_masks"], ".0f"))
            t.setItem(r, 3, NumItem(row["empirical_iaa"]))
            t.setItem(r, 4, QTableWidgetItem(str(row.get("iaa_model", ""))))

    def _returned(self, df: Any) -> None:
        self.triage_df = df
        self.triage_table.setSortingEnabled(True)
        self.triage_table.sortItems(1, Qt.AscendingOrder)
        self.export_button.setEnabled(len(df) > 0)
        stopped = self._stop.is_set()
        pushed = self.push_to_dataset_table(df)
        self.triage_progress.setFormat(
            f"{len(df)} images{' (cancelled)' if stopped else ''}"
            f"{' · added to the data-set table' if pushed else ''}")
        self.triage_finished.emit(df)

    def _fail(self, exc: BaseException) -> None:
        msg = f"triage failed: {exc}"
        notify_error(msg)
        self.triage_progress.setFormat("triage failed")
        self.failed.emit(msg)

    def _done(self) -> None:
        self.triage_button.setEnabled(True)
        self.triage_cancel.setEnabled(False)

    def quit(self) -> None:
        """Stop the triage (the dock is closing)."""
        self._stop.set()
        self.job.quit()

    # ------------------------------------------------------------------ results
    def push_to_dataset_table(self, df: Any) -> bool:
        """Add a ``predicted_IAA`` column to the review dock's data-set table.

        Only when the review dock shows a data set that contains the triaged cases;
        returns True if the column was added.
        """
        model = self._dataset_model()
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
        except (KeyError, TypeError, ValueError) as exc:  # the triage table has the values
            notify_error(f"could not add the predictions to the data-set table: {exc}")
            return False
        return True

    def export_triage(self, path: str | Path) -> Path:
        """Write the triage table to CSV (sorted by predicted IAA, most ambiguous first)."""
        if self.triage_df is None:
            raise ValueError("no triage results to export")
        path = Path(path)
        write_csv_atomic(self.triage_df, path)
        return path

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export triage", "triage.csv", "CSV (*.csv)")
        if path:
            try:
                self.export_triage(path)
            except OSError as exc:
                notify_error(f"{path}: cannot write ({exc})")
