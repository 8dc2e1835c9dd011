"""Data-set panel: every case of a data set with its agreement, sortable, filterable, flagged.

Flags follow rules on either kind of disagreement (:mod:`.flags`): today's IAA threshold
(the default), "marked by fewer than k" (detection) and "boundary IAA below t" (the IAA
among the annotators who marked); the "flagged by" column says which rule fired.

The metadata columns appear at once (no pixels read); the agreement columns are filled by a
background worker (:func:`~napari_iaa.widgets._common.start_worker`) that scores each case
with :mod:`napari_iaa.scoring`, the same definitions as ``napari-iaa score``. The worker
hands rows over in batches, reports progress to the panel's bar (and napari's once hidden),
and can be cancelled; results of a cancelled or replaced run are dropped.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from qtpy.QtCore import QItemSelectionModel, QModelIndex, QObject, Qt, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.data import Dataset, atomic_write_bytes
from napari_iaa.widgets._common import Progress, activity, notify_error, notify_info, start_worker
from napari_iaa.widgets._common.paint import set_bar
from napari_iaa.widgets.dataset.columns import fit_columns
from napari_iaa.widgets.dataset.csv_export import csv_frame
from napari_iaa.widgets.dataset.events import ScoredBatch
from napari_iaa.widgets.dataset.flag_controls import FlagControls
from napari_iaa.widgets.dataset.flags import FlagRules
from napari_iaa.widgets.dataset.jobs import score_cases, table_values
from napari_iaa.widgets.dataset.review_controls import ReviewControls
from napari_iaa.widgets.dataset.status_text import StatusText
from napari_iaa.widgets.dataset.table_model import (
    AGREEMENT_COLUMNS,
    NUMERIC_AGREEMENT_COLUMNS,
    CaseTableModel,
    SortProxy,
)
from napari_iaa.widgets.dataset.table_view import CaseTableView

__all__ = ["NEXT_FLAGGED_KEY", "PREV_FLAGGED_KEY", "DatasetPanel"]

#: default shortcuts of next / previous flagged (napari actions, see the review dock's
#: ``shortcuts`` module; changeable in napari's preferences)
NEXT_FLAGGED_KEY = "F3"
PREV_FLAGGED_KEY = "Shift+F3"


class _Run(QObject):
    """One scoring run's receiver: forwards the worker's messages to the panel.

    A child of the panel, so Qt drops its connections when the panel goes; the panel
    ignores a run that is no longer its current one (cancelled or replaced).
    """

    def __init__(self, panel: DatasetPanel, bar: activity.Activity) -> None:
        super().__init__(panel)
        self.panel = panel
        self.activity = bar  # napari's bar for the run, made when the panel is hidden

    def message(self, msg: Any) -> None:
        self.panel._on_message(self, msg)

    def returned(self, _value: Any) -> None:
        self.panel._on_returned(self)

    def errored(self, exc: BaseException) -> None:
        self.panel._on_error(self, exc)

    def finished(self) -> None:
        self.panel._on_finished(self)
        self.deleteLater()

    def stopped(self) -> None:
        """The worker was told to stop from outside (the dock closed, the application
        quitting): its ``finished`` will not reach the panel."""
        with contextlib.suppress(RuntimeError):  # the panel was deleted with its dock
            self.panel._on_stopped(self)


def _docked_widget(widget: QWidget) -> QWidget:
    """The widget napari docks that holds ``widget``: its outermost ancestor below a
    ``QDockWidget`` or a window (the review dock). Closing the dock takes that widget out
    of its window, which stops the workers it owns."""
    w = widget
    while (p := w.parentWidget()) is not None and not (isinstance(p, QDockWidget)
                                                       or p.isWindow()):
        w = p
    return w


class DatasetPanel(QWidget):
    """All cases of a data set, their agreement, flags and exports.

    Signals
    -------
    case_requested(str) : the user asked to open a case (double-click, next/previous).
    scoring_finished(bool) : the worker ended; ``True`` if it ran to completion.
    review_refresh_requested() : Refresh pressed: the owner reads the verdicts again and
        hands them to :meth:`set_verdicts`.
    """

    case_requested = Signal(str)
    scoring_finished = Signal(bool)
    review_refresh_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dataset: Dataset | None = None
        self.empty_rule = "zero"
        self.same_rater_pairs = True  # the CLI's default (IMA++ counts them)
        self.surface = True  # HD95 and ASSD columns (the CLI's default)
        self.problems: dict[str, str] = {}
        self._review_fitted = False  # columns sized again once the first verdicts show
        #: case id -> its score row (``napari-iaa score``'s columns; None: unreadable)
        self.score_rows: dict[str, dict[str, Any] | None] = {}
        self._run: _Run | None = None
        self._worker: Any = None
        self._completed = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        self.flag_controls = FlagControls()
        self.threshold_spin = self.flag_controls.threshold_spin
        self.flag_controls.rules_changed.connect(self._on_rules)
        lay.addWidget(self.flag_controls)
        lay.addLayout(self._build_flag_row())
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("filter (any column, e.g. malignant or LIDC-0001)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._on_filter)
        lay.addWidget(self.filter_edit)
        self.review_controls = ReviewControls()
        self.review_controls.refresh_requested.connect(self.review_refresh_requested)
        self.review_controls.status_filter_changed.connect(self._on_status_filter)
        lay.addWidget(self.review_controls)
        lay.addWidget(self._build_table(), 1)
        lay.addLayout(self._build_progress_row())
        lay.addLayout(self._build_export_row())

    # -- layout ----------------------------------------------------------------------------
    def _build_flag_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.count_label = StatusText("no data set")  # changes with every scored batch
        row.addWidget(self.count_label, 1)
        self.prev_btn = QPushButton("◀ flagged")
        self.prev_btn.setToolTip(f"previous flagged case ({PREV_FLAGGED_KEY})")
        self.next_btn = QPushButton("flagged ▶")
        self.next_btn.setToolTip(f"next flagged case ({NEXT_FLAGGED_KEY})")
        self.prev_btn.clicked.connect(self.previous_flagged)
        self.next_btn.clicked.connect(self.next_flagged)
        row.addWidget(self.prev_btn)
        row.addWidget(self.next_btn)
        return row

    def _build_table(self) -> CaseTableView:
        self.model = CaseTableModel(self)
        self.proxy = SortProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setDynamicSortFilter(False)
        self.proxy.setFilterKeyColumn(0)
        self.proxy.setFilterCaseSensitivity(Qt.CaseInsensitive)
        self.view = view = CaseTableView()
        view.setModel(self.proxy)
        view.setSortingEnabled(True)
        # no sort until the user clicks a header (cases stay in data-set order)
        view.horizontalHeader().setSortIndicator(-1, Qt.AscendingOrder)
        view.setSelectionBehavior(QAbstractItemView.SelectRows)
        view.setSelectionMode(QAbstractItemView.SingleSelection)
        view.setEditTriggers(QAbstractItemView.NoEditTriggers)
        view.setAlternatingRowColors(False)
        view.verticalHeader().setDefaultSectionSize(22)
        view.verticalHeader().setVisible(False)
        view.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        view.horizontalHeader().setStretchLastSection(True)
        # columns are sized by fit_columns (a sample of rows); a double-click on a
        # header's edge sizes from the first rows only (10k-case tables stay instant)
        view.horizontalHeader().setResizeContentsPrecision(200)
        view.doubleClicked.connect(self._on_double_click)
        view.setMinimumHeight(220)
        return view

    def _build_progress_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m cases")
        self._set_progress(0)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        self.rescore_btn = QPushButton("Score")
        self.rescore_btn.setToolTip("(re)compute the agreement of every case")
        self.rescore_btn.clicked.connect(lambda: self.compute())
        self.surface_check = QCheckBox("HD95/ASSD")
        self.surface_check.setChecked(self.surface)
        self.surface_check.setToolTip(
            "also compute the mean surface distances (a distance transform per mask: on "
            "large images several times the cost of the Dice counts); applies to the next "
            "Score")
        self.surface_check.toggled.connect(lambda on: setattr(self, "surface", bool(on)))
        row.addWidget(self.progress, 1)
        row.addWidget(self.surface_check)
        row.addWidget(self.cancel_btn)
        row.addWidget(self.rescore_btn)
        return row

    def _build_export_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.export_btn = QPushButton("Export table…")
        self.export_flagged_btn = QPushButton("Export flagged…")
        self.export_btn.clicked.connect(lambda: self._export_dialog(flagged=False))
        self.export_flagged_btn.clicked.connect(lambda: self._export_dialog(flagged=True))
        row.addWidget(self.export_btn)
        row.addWidget(self.export_flagged_btn)
        row.addStretch(1)
        return row

    def _on_filter(self, text: str) -> None:
        # all columns only while filtering: scanning every cell of a 10k-row table on
        # each model reset costs seconds
        self.proxy.setFilterKeyColumn(-1 if text else 0)
        self.proxy.setFilterFixedString(text)

    def _on_status_filter(self, status: str | None) -> None:
        self.proxy.set_status_filter(status)
        self._update_count()

    def set_status_filter(self, status: str | None) -> None:
        """Show only the cases with this review status (``reviewed``: any but unreviewed)."""
        self.review_controls.set_status_filter(status)

    def set_verdicts(self, verdicts: list[Any]) -> None:
        """Show verdicts (:class:`napari_iaa.review.Verdict`) in the review columns."""
        self.model.set_review(verdicts)
        if self.proxy.status_filter is not None:
            self.proxy.invalidateFilter()
        if not self._review_fitted:
            # the columns were sized before the store opened (empty review cells): once per
            # data set, size them again now that status, reviewer and comment have texts
            self._review_fitted = True
            fit_columns(self.view, self.model)
        self._update_count()

    # -- data set ------------------------------------------------------------------------
    def set_dataset(self, dataset: Dataset, compute: bool = True) -> None:
        """Show a data set (metadata at once) and score it in the background."""
        self.cancel()
        self.dataset = dataset
        self._review_fitted = False
        self.problems = {}
        self.score_rows = {}
        try:
            df = dataset.metadata()
        except Exception:  # noqa: BLE001 - metadata is a convenience: fall back to the ids
            df = pd.DataFrame({"case_id": list(dataset.ids)})
        if "case_id" not in df.columns:
            df = df.reset_index().rename(columns={"index": "case_id"})
        df = df.copy()
        for c in AGREEMENT_COLUMNS:
            df[c] = math.nan if c in NUMERIC_AGREEMENT_COLUMNS else ""
        self.model.set_frame(df)
        self.progress.setRange(0, max(len(df), 1))
        self._set_progress(0)
        fit_columns(self.view, self.model)
        self._update_count()
        if compute:
            self.compute()

    def compute(self, empty: str | None = None, same_rater_pairs: bool | None = None,
                surface: bool | None = None) -> Any:
        """Start scoring every case in a worker thread; returns the worker.

        ``empty``, ``same_rater_pairs`` and ``surface`` (kept for later runs) are as in
        :func:`napari_iaa.scoring.score_case`.
        """
        if self.dataset is None:
            return None
        if empty is not None:
            self.empty_rule = empty
        if same_rater_pairs is not None:
            self.same_rater_pairs = bool(same_rater_pairs)
        if surface is not None:
            self.surface_check.setChecked(bool(surface))  # sets self.surface
        self.cancel()
        ids = [self.model.case_id(r) for r in range(self.model.rowCount())]
        # napari's bar only once the table is out of sight: it and each of its updates
        # repaint the window at once (40-80 ms on software GL), and the table shows the run
        bar = activity.Activity(f"scoring {len(ids)} cases", out_of_sight=self,
                                min_interval=activity.LONG_JOB_INTERVAL_S)
        self._run = run = _Run(self, bar)
        self._completed = False
        self.progress.setRange(0, max(len(ids), 1))
        self._set_progress(0)
        self.cancel_btn.setEnabled(True)
        self.rescore_btn.setEnabled(False)
        worker = start_worker(
            score_cases, self.dataset, ids, self.empty_rule, self.same_rater_pairs, self.surface,
            on_yield=run.message, on_return=run.returned, on_error=run.errored,
            on_finish=run.finished, activity=bar,
            # scoring only fills this table (nothing is written): closing the dock stops it
            owner=_docked_widget(self), on_stop=run.stopped,
        )
        if self._run is run:  # still running (not run synchronously)
            self._worker = worker
        return worker

    @property
    def busy(self) -> bool:
        """Whether scoring is running."""
        return self._run is not None

    def cancel(self) -> None:
        """Stop the scoring worker (the rows done so far stay)."""
        if self._run is None:
            return
        if self._worker is not None:
            self._worker.quit()
        # the old run must no longer touch the table (a new one may be starting)
        self._run, self._worker = None, None
        self._ready_buttons()
        self.scoring_finished.emit(False)

    def _ready_buttons(self) -> None:
        self.cancel_btn.setEnabled(False)
        self.rescore_btn.setEnabled(True)
        self._update_count()

    def _on_message(self, run: _Run, msg: Any) -> None:
        if run is not self._run:
            return  # a cancelled or replaced run
        if isinstance(msg, ScoredBatch):
            cells = []
            for case_id, row, error in zip(msg.case_ids, msg.rows, msg.errors, strict=True):
                if error is not None:
                    self.problems[case_id] = error
                self.score_rows[case_id] = row
                cells.append((case_id, table_values(row)))
            self.model.update_cases(cells)
        elif isinstance(msg, Progress):
            self._set_progress(msg.done)
            self._update_count()
            run.activity.update(msg)  # kept until napari's bar is made

    def _set_progress(self, done: int) -> None:
        """Move the bar with the window's next repaint: ``QProgressBar.setValue`` repaints at
        once, and every repaint recomposes napari's window (tens of ms under software GL)."""
        set_bar(self.progress, value=done)  # painted with the table's rows

    def _on_returned(self, run: _Run) -> None:
        if run is self._run:
            self._completed = True

    def _on_error(self, run: _Run, exc: BaseException) -> None:
        if run is self._run:
            notify_error(f"data-set scoring stopped: {type(exc).__name__}: {exc}")

    def _on_stopped(self, run: _Run) -> None:
        if run is self._run:
            self.cancel()  # the rows done so far stay; Score starts a new run
        run.deleteLater()

    def _on_finished(self, run: _Run) -> None:
        if run is not self._run:
            return
        self._run, self._worker = None, None
        self._ready_buttons()
        hdr = self.view.horizontalHeader()
        if hdr.isSortIndicatorShown() and hdr.sortIndicatorSection() >= 0:
            # rows were filled in while sorted: sort again with the final values
            self.model.sort(hdr.sortIndicatorSection(), hdr.sortIndicatorOrder())
        fit_columns(self.view, self.model)
        self.scoring_finished.emit(self._completed)

    # -- flags ---------------------------------------------------------------------------
    def _on_rules(self, rules: FlagRules) -> None:
        self.model.set_rules(rules)
        self._update_count()

    def set_rules(self, rules: FlagRules) -> None:
        """Flag by ``rules`` (shown in the controls)."""
        self.flag_controls.set_rules(rules)

    def set_threshold(self, value: float) -> None:
        """Set the IAA rule's threshold (IAA below it is flagged); turns the rule on."""
        self.set_rules(replace(self.model.rules, iaa_below=float(value)))

    def _source_row(self, view_row: int) -> int:
        return self.proxy.mapToSource(self.proxy.index(view_row, 0)).row()

    def flagged_ids(self) -> list[str]:
        """Flagged case ids in the current (sorted, filtered) view order."""
        rows = (self._source_row(r) for r in range(self.proxy.rowCount()))
        return [self.model.case_id(src) for src in rows if self.model.is_flagged(src)]

    def visible_ids(self) -> list[str]:
        """Case ids in the current view order."""
        return [self.model.case_id(self._source_row(r)) for r in range(self.proxy.rowCount())]

    def _update_count(self) -> None:
        n = self.model.rowCount()
        scored = self.progress.value()
        txt = f"{self.model.n_flagged} of {n} cases flagged ({self.model.rules.describe()})"
        if self.busy or scored < n:
            txt += f" ({scored} scored)"
        if self.problems:
            txt += f", {len(self.problems)} unreadable"
        self.count_label.setText(txt)
        self.review_controls.show_progress(self.model.review_counts(), n, self.model.n_flagged)

    def current_id(self) -> str | None:
        """Case id of the selected row."""
        rows = self.view.selectionModel().selectedRows()
        if not rows:
            return None
        return self.model.case_id(self.proxy.mapToSource(rows[0]).row())

    def select_case(self, case_id: str) -> None:
        """Select (without opening) a case's row."""
        src = self.model.row_of(case_id)
        if src is None:
            return
        idx = self.proxy.mapFromSource(self.model.index(src, 0))
        if idx.isValid():
            self.view.selectionModel().setCurrentIndex(
                idx, QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows
            )
            self.view.scrollTo(idx)

    def _step_flagged(self, step: int) -> str | None:
        n = self.proxy.rowCount()
        if n == 0:
            return None
        rows = self.view.selectionModel().selectedRows()
        r = rows[0].row() if rows else (-1 if step > 0 else n)
        while 0 <= r + step < n:
            r += step
            src = self._source_row(r)
            if self.model.is_flagged(src):
                cid = self.model.case_id(src)
                self.select_case(cid)
                self.case_requested.emit(cid)
                return cid
        return None

    def next_flagged(self) -> str | None:
        """Select and open the next flagged case below the selection (view order)."""
        return self._step_flagged(+1)

    def previous_flagged(self) -> str | None:
        """Select and open the previous flagged case above the selection."""
        return self._step_flagged(-1)

    def _on_double_click(self, index: QModelIndex) -> None:
        src = self.proxy.mapToSource(index)
        self.case_requested.emit(self.model.case_id(src.row()))

    # -- export --------------------------------------------------------------------------
    def _write_rows(self, case_ids: list[str], path: str | Path) -> Path:
        df = csv_frame(self.model.frame(), self.score_rows, case_ids)
        path = Path(path)
        atomic_write_bytes(path, df.to_csv(index=False).encode("utf-8"))
        return path

    def export_table(self, path: str | Path) -> Path:
        """Write the whole table (view order) to CSV, with the column names of
        ``napari-iaa review export`` / ``score`` (:mod:`.csv_export`), then ``flagged``,
        ``flagged_by`` and the metadata."""
        return self._write_rows(self.visible_ids(), path)

    def export_flagged(self, path: str | Path) -> Path:
        """Write the flagged cases (view order) to CSV (columns as :meth:`export_table`)."""
        return self._write_rows(self.flagged_ids(), path)

    def _export_dialog(self, flagged: bool) -> None:
        name = "flagged_cases.csv" if flagged else "case_table.csv"
        path, _ = QFileDialog.getSaveFileName(self, "Export CSV", name, "CSV (*.csv)")
        if path:
            (self.export_flagged if flagged else self.export_table)(path)
            notify_info(f"wrote {path}")
