"""Data-set panel: every case of a data set with its agreement, sortable, filterable, flagged.

The metadata columns appear at once (no pixels read); the agreement columns are filled by a
napari thread worker that yields progress and can be cancelled.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from qtpy.QtCore import (
    QAbstractTableModel,
    QItemSelectionModel,
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from qtpy.QtGui import QBrush, QColor, QKeySequence
from qtpy.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QShortcut,
    QTableView,
    QVBoxLayout,
    QWidget,
)

__all__ = ["CaseTableModel", "DatasetPanel", "score_case", "iter_scores"]

AGREEMENT_COLUMNS = ["IAA", "min pair", "lowest pair"]
FLAG_COLOR = QColor(200, 60, 60, 110)
NEXT_FLAGGED_KEY = "F3"
_DIGITS = re.compile(r"(\d+)")
PREV_FLAGGED_KEY = "Shift+F3"
_BATCH_SECONDS = 0.1


def score_case(case: Any, empty: str = "zero") -> dict[str, Any]:
    """IAA, lowest pair value and ids of one case."""
    from napari_iaa.agreement import iaa, pairwise_dice

    ids = list(case.mask_ids)
    if len(ids) < 2:
        return {"IAA": math.nan, "min pair": math.nan, "lowest pair": ""}
    stack = case.stack()
    m = np.asarray(pairwise_dice(stack, empty=empty), dtype=float)
    value = float(iaa(stack, empty=empty))
    iu = np.triu_indices(len(ids), 1)
    vals = m[iu]
    if np.isfinite(vals).any():
        k = int(np.nanargmin(vals))
        return {
            "IAA": value,
            "min pair": float(vals[k]),
            "lowest pair": f"{ids[iu[0][k]]}–{ids[iu[1][k]]}",
        }
    return {"IAA": value, "min pair": math.nan, "lowest pair": ""}


def iter_scores(
    dataset: Any,
    empty: str = "zero",
    ids: list[str] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[tuple[int, int, str, dict[str, Any]]]:
    """Score the cases of a data set one by one.

    Yields
    ------
    (done, total, case_id, row)
        ``row`` holds the agreement columns, or ``{"error": message}`` for a case that
        cannot be read (the others still get scored).
    """
    from napari_iaa.errors import IAAError

    ids = list(dataset.ids) if ids is None else ids
    total = len(ids)
    for k, cid in enumerate(ids):
        if should_stop is not None and should_stop():
            return
        try:
            row = score_case(dataset.load(cid), empty=empty)
        except IAAError as exc:
            row = {"error": str(exc)}
        yield k + 1, total, cid, row


class CaseTableModel(QAbstractTableModel):
    """Table of cases (a pandas frame); flags rows whose IAA is below a threshold."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._columns: list[str] = []
        self._rows: list[list[Any]] = []
        self._row_of: dict[str, int] = {}
        self.threshold = 0.7
        self._flags: list[bool] = []
        self._numeric: list[bool] = []
        self.n_flagged = 0

    # -- content -----------------------------------------------------------------------
    def set_frame(self, df: pd.DataFrame) -> None:
        """Replace the content; ``df`` must have a ``case_id`` column."""
        self.beginResetModel()
        cols = ["case_id", "n_annotators", *AGREEMENT_COLUMNS]
        cols += [c for c in df.columns if c not in cols]
        self._columns = cols
        self._rows = []
        for rec in df.to_dict("records"):
            self._rows.append([rec.get(c, math.nan if c in AGREEMENT_COLUMNS else "") for c in cols])
        self._row_of = {str(r[0]): i for i, r in enumerate(self._rows)}
        self._numeric = [
            c in AGREEMENT_COLUMNS[:2] or c == "n_annotators" or all(_is_number(r[k]) for r in self._rows)
            for k, c in enumerate(cols)
        ]
        self._reflag()
        self.endResetModel()

    def update_case(self, case_id: str, values: dict[str, Any]) -> None:
        """Set some columns of one case."""
        r = self._row_of.get(case_id)
        if r is None:
            return
        for key, val in values.items():
            if key in self._columns:
                self._rows[r][self._columns.index(key)] = val
        was = self._flags[r]
        self._flags[r] = self._is_flagged(r)
        self.n_flagged += int(self._flags[r]) - int(was)
        self.dataChanged.emit(self.index(r, 0), self.index(r, len(self._columns) - 1))

    def set_threshold(self, value: float) -> None:
        """Flag rows with IAA below ``value``."""
        self.threshold = float(value)
        self._reflag()
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._rows) - 1, len(self._columns) - 1)
            )

    def _is_flagged(self, r: int) -> bool:
        v = self._rows[r][self._columns.index("IAA")] if "IAA" in self._columns else math.nan
        try:
            return bool(np.isfinite(v) and float(v) < self.threshold)
        except TypeError:
            return False

    def _reflag(self) -> None:
        self._flags = [self._is_flagged(r) for r in range(len(self._rows))]
        self.n_flagged = sum(self._flags)

    def _sort_key(self, row: list[Any], column: int) -> Any:
        v = row[column]
        if self._numeric[column]:
            try:
                f = float(v)
            except (TypeError, ValueError):
                return float("inf")
            return f if np.isfinite(f) else float("inf")
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ()
        # natural order: "slice-2" before "slice-10"
        return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in _DIGITS.split(str(v).lower()) if t)

    def sort(self, column: int, order=Qt.AscendingOrder) -> None:
        """Sort the rows in place (fast on 10k-case tables; missing values last)."""
        if not 0 <= column < len(self._columns):
            return
        self.layoutAboutToBeChanged.emit()
        n = len(self._rows)
        keys = [self._sort_key(r, column) for r in self._rows]
        finite = [i for i in range(n) if keys[i] != float("inf")]
        missing = [i for i in range(n) if keys[i] == float("inf")]
        finite.sort(key=keys.__getitem__, reverse=order == Qt.DescendingOrder)
        idx = finite + missing
        new_pos = {old: new for new, old in enumerate(idx)}
        persistent = self.persistentIndexList()
        self._rows = [self._rows[i] for i in idx]
        self._flags = [self._flags[i] for i in idx]
        self._row_of = {str(r[0]): i for i, r in enumerate(self._rows)}
        self.changePersistentIndexList(
            persistent, [self.index(new_pos[p.row()], p.column()) for p in persistent]
        )
        self.layoutChanged.emit()

    # -- read-outs -----------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        """Column names."""
        return list(self._columns)

    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame (with a ``flagged`` column)."""
        df = pd.DataFrame(self._rows, columns=self._columns)
        df["flagged"] = self._flags
        return df

    def is_flagged(self, row: int) -> bool:
        """Whether source row ``row`` is flagged."""
        return self._flags[row]

    def flagged_ids(self) -> list[str]:
        """Ids of the flagged cases, in source order."""
        return [str(r[0]) for r, f in zip(self._rows, self._flags) if f]

    def case_id(self, row: int) -> str:
        """Case id of source row ``row``."""
        return str(self._rows[row][0])

    def row_of(self, case_id: str) -> int | None:
        """Source row of a case."""
        return self._row_of.get(case_id)

    # -- Qt model API ------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._columns)

    def headerData(self, section: int, orientation, role=Qt.DisplayRole):  # noqa: N802
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            if 0 <= section < len(self._columns):
                return self._columns[section].replace("_", " ")
        if role == Qt.DisplayRole and orientation == Qt.Vertical:
            return str(section + 1)
        return None

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        v = self._rows[index.row()][index.column()]
        col = self._columns[index.column()]
        if role == Qt.DisplayRole:
            if isinstance(v, float | np.floating):
                if not np.isfinite(v):
                    return "…" if col in AGREEMENT_COLUMNS and col != "lowest pair" else ""
                return f"{v:.3f}"
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return ""
            return str(v)
        if role == Qt.UserRole:  # sort key
            return self._sort_key(self._rows[index.row()], index.column())
        if role == Qt.BackgroundRole and self._flags[index.row()]:
            return QBrush(FLAG_COLOR)
        if role == Qt.TextAlignmentRole and isinstance(v, int | float | np.integer | np.floating):
            return int(Qt.AlignRight | Qt.AlignVCenter)
        if role == Qt.ToolTipRole and self._flags[index.row()]:
            return f"IAA below {self.threshold:.2f}"
        return None


def _is_number(v: Any) -> bool:
    """A number or a missing value (NaN/None/empty): sortable as a float column."""
    if v is None or (isinstance(v, str) and v == ""):
        return True
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


class _SortProxy(QSortFilterProxyModel):
    """Filters; sorting is delegated to the source model (Python-side sort of the rows is
    far faster than Qt calling ``data()`` for every comparison)."""

    def sort(self, column: int, order=Qt.AscendingOrder) -> None:
        self.sourceModel().sort(column, order)


class DatasetPanel(QWidget):
    """All cases of a data set, their agreement, flags and exports.

    Signals
    -------
    case_requested(str) : the user asked to open a case (double-click, next/previous).
    scoring_finished(bool) : the worker ended; ``True`` if it ran to completion.
    """

    case_requested = Signal(str)
    scoring_finished = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dataset: Any = None
        self.empty_rule = "zero"
        self._worker: Any = None
        self.problems: dict[str, str] = {}

        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        row = QHBoxLayout()
        row.addWidget(QLabel("flag IAA <"))
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 1.0)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setDecimals(2)
        self.threshold_spin.setValue(0.7)
        self.threshold_spin.valueChanged.connect(self._on_threshold)
        row.addWidget(self.threshold_spin)
        self.count_label = QLabel("no data set")
        row.addWidget(self.count_label, 1)
        self.prev_btn = QPushButton("◀ flagged")
        self.prev_btn.setToolTip(f"previous flagged case ({PREV_FLAGGED_KEY})")
        self.next_btn = QPushButton("flagged ▶")
        self.next_btn.setToolTip(f"next flagged case ({NEXT_FLAGGED_KEY})")
        self.prev_btn.clicked.connect(self.previous_flagged)
        self.next_btn.clicked.connect(self.next_flagged)
        row.addWidget(self.prev_btn)
        row.addWidget(self.next_btn)
        lay.addLayout(row)

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("filter (any column, e.g. malignant or LIDC-0001)")
        self.filter_edit.setClearButtonEnabled(True)
        lay.addWidget(self.filter_edit)

        self.model = CaseTableModel(self)
        self.proxy = _SortProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setDynamicSortFilter(False)
        self.proxy.setFilterKeyColumn(0)
        self.proxy.setFilterCaseSensitivity(Qt.CaseInsensitive)
        self.filter_edit.textChanged.connect(self._on_filter)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        # no sort until the user clicks a header (cases stay in data-set order)
        self.view.horizontalHeader().setSortIndicator(-1, Qt.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.view.setAlternatingRowColors(False)
        self.view.verticalHeader().setDefaultSectionSize(22)
        self.view.verticalHeader().setVisible(False)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        self.view.horizontalHeader().setStretchLastSection(True)
        # size columns from the first rows only (10k-case data sets stay instant)
        self.view.horizontalHeader().setResizeContentsPrecision(200)
        self.view.doubleClicked.connect(self._on_double_click)
        self.view.setMinimumHeight(220)
        lay.addWidget(self.view, 1)

        prow = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m cases")
        self.progress.setValue(0)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        self.rescore_btn = QPushButton("Score")
        self.rescore_btn.setToolTip("(re)compute the agreement of every case")
        self.rescore_btn.clicked.connect(lambda: self.compute())
        prow.addWidget(self.progress, 1)
        prow.addWidget(self.cancel_btn)
        prow.addWidget(self.rescore_btn)
        lay.addLayout(prow)

        erow = QHBoxLayout()
        self.export_btn = QPushButton("Export table…")
        self.export_flagged_btn = QPushButton("Export flagged…")
        self.export_btn.clicked.connect(lambda: self._export_dialog(flagged=False))
        self.export_flagged_btn.clicked.connect(lambda: self._export_dialog(flagged=True))
        erow.addWidget(self.export_btn)
        erow.addWidget(self.export_flagged_btn)
        erow.addStretch(1)
        lay.addLayout(erow)

        for key, slot in ((NEXT_FLAGGED_KEY, self.next_flagged), (PREV_FLAGGED_KEY, self.previous_flagged)):
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.WindowShortcut)
            sc.activated.connect(slot)

    def _on_filter(self, text: str) -> None:
        # all columns only while filtering: scanning every cell of a 10k-row table on
        # each model reset costs seconds
        self.proxy.setFilterKeyColumn(-1 if text else 0)
        self.proxy.setFilterFixedString(text)

    # -- data set ------------------------------------------------------------------------
    def set_dataset(self, dataset: Any, compute: bool = True) -> None:
        """Show a data set (metadata at once) and score it in the background."""
        self.cancel()
        self.dataset = dataset
        self.problems = {}
        try:
            df = dataset.metadata()
        except Exception:  # metadata is a convenience: fall back to ids
            df = pd.DataFrame({"case_id": list(dataset.ids)})
        if "case_id" not in df.columns:
            df = df.reset_index().rename(columns={"index": "case_id"})
        df = df.copy()
        for c in AGREEMENT_COLUMNS:
            df[c] = math.nan if c != "lowest pair" else ""
        self.model.set_frame(df)
        self.progress.setRange(0, max(len(df), 1))
        self.progress.setValue(0)
        self.view.resizeColumnsToContents()
        self._update_count()
        if compute:
            self.compute()

    def compute(self, empty: str | None = None) -> Any:
        """Start scoring every case in a worker thread; returns the worker."""
        if self.dataset is None:
            return None
        if empty is not None:
            self.empty_rule = empty
        self.cancel()
        from napari.qt.threading import thread_worker

        ds, rule = self.dataset, self.empty_rule
        ids = [self.model.case_id(r) for r in range(self.model.rowCount())]

        @thread_worker(start_thread=False)
        def _work() -> Iterator[list[tuple[int, int, str, dict]]]:
            # hand rows to the GUI in batches (at most ~10 per second): one queued signal
            # and one table update per case costs more than scoring small cases
            batch: list[tuple[int, int, str, dict]] = []
            last = time.monotonic()
            for item in iter_scores(ds, rule, ids):
                batch.append(item)
                if time.monotonic() - last >= _BATCH_SECONDS:
                    yield batch
                    batch, last = [], time.monotonic()
            if batch:
                yield batch

        worker = _work()
        self._worker = worker
        self._completed = False
        worker.yielded.connect(self._on_yield)
        worker.returned.connect(self._on_returned)
        worker.finished.connect(self._on_finished)
        self.destroyed.connect(worker.quit)
        self.progress.setRange(0, max(len(ids), 1))
        self.progress.setValue(0)
        self.cancel_btn.setEnabled(True)
        self.rescore_btn.setEnabled(False)
        if os.environ.get("NAPARI_IAA_NO_THREADS"):
            worker.run()
        else:
            worker.start()
        return worker

    @property
    def busy(self) -> bool:
        """Whether scoring is running."""
        return self._worker is not None

    def cancel(self) -> None:
        """Stop the scoring worker (the rows done so far stay)."""
        w = self._worker
        if w is None:
            return
        w.quit()
        # the old worker must no longer touch the table (a new one may be starting)
        for sig, slot in (
            (w.yielded, self._on_yield),
            (w.returned, self._on_returned),
            (w.finished, self._on_finished),
        ):
            try:
                sig.disconnect(slot)
            except (TypeError, RuntimeError):
                pass
        self._worker = None
        self.cancel_btn.setEnabled(False)
        self.rescore_btn.setEnabled(True)
        self._update_count()
        self.scoring_finished.emit(False)

    def _on_yield(self, batch: list[tuple[int, int, str, dict]]) -> None:
        for _done, _total, cid, row in batch:
            if "error" in row:
                self.problems[cid] = row["error"]
                self.model.update_case(cid, {"lowest pair": "unreadable"})
            else:
                self.model.update_case(cid, row)
        if batch:
            self.progress.setValue(batch[-1][0])
        self._update_count()

    def _on_returned(self, _value: Any) -> None:
        self._completed = True

    def _on_finished(self) -> None:
        if self._worker is None:
            return
        self._worker = None
        self.cancel_btn.setEnabled(False)
        self.rescore_btn.setEnabled(True)
        self._update_count()
        hdr = self.view.horizontalHeader()
        if hdr.isSortIndicatorShown() and hdr.sortIndicatorSection() >= 0:
            # rows were filled in while sorted: sort again with the final values
            self.model.sort(hdr.sortIndicatorSection(), hdr.sortIndicatorOrder())
        self.view.resizeColumnsToContents()
        self.scoring_finished.emit(bool(getattr(self, "_completed", False)))

    # -- flags ---------------------------------------------------------------------------
    def _on_threshold(self, value: float) -> None:
        self.model.set_threshold(value)
        self._update_count()

    def set_threshold(self, value: float) -> None:
        """Set the flagging threshold (IAA below it is flagged)."""
        self.threshold_spin.setValue(value)

    def flagged_ids(self) -> list[str]:
        """Flagged case ids in the current (sorted, filtered) view order."""
        out = []
        for r in range(self.proxy.rowCount()):
            src = self.proxy.mapToSource(self.proxy.index(r, 0)).row()
            if self.model.is_flagged(src):
                out.append(self.model.case_id(src))
        return out

    def visible_ids(self) -> list[str]:
        """Case ids in the current view order."""
        return [
            self.model.case_id(self.proxy.mapToSource(self.proxy.index(r, 0)).row())
            for r in range(self.proxy.rowCount())
        ]

    def _update_count(self) -> None:
        n = self.model.rowCount()
        k = self.model.n_flagged
        scored = self.progress.value()
        txt = f"{k} of {n} cases flagged"
        if self.busy or scored < n:
            txt += f" ({scored} scored)"
        if self.problems:
            txt += f", {len(self.problems)} unreadable"
        self.count_label.setText(txt)

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
        start = rows[0].row() if rows else (-1 if step > 0 else n)
        r = start
        for _ in range(n):
            r += step
            if r < 0 or r >= n:
                break
            src = self.proxy.mapToSource(self.proxy.index(r, 0)).row()
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
    def export_table(self, path: str | Path) -> Path:
        """Write the whole table (view order, with a ``flagged`` column) to CSV."""
        from napari_iaa.data import atomic_write_bytes

        df = self.model.frame().set_index("case_id").loc[self.visible_ids()].reset_index()
        path = Path(path)
        atomic_write_bytes(path, df.to_csv(index=False).encode("utf-8"))
        return path

    def export_flagged(self, path: str | Path) -> Path:
        """Write the flagged cases (view order) to CSV."""
        from napari_iaa.data import atomic_write_bytes

        df = self.model.frame().set_index("case_id")
        df = df.loc[self.flagged_ids()].reset_index()
        path = Path(path)
        atomic_write_bytes(path, df.to_csv(index=False).encode("utf-8"))
        return path

    def _export_dialog(self, flagged: bool) -> None:
        name = "flagged_cases.csv" if flagged else "case_table.csv"
        path, _ = QFileDialog.getSaveFileName(self, "Export CSV", name, "CSV (*.csv)")
        if path:
            from napari.utils.notifications import show_info

            (self.export_flagged if flagged else self.export_table)(path)
            show_info(f"wrote {path}")
