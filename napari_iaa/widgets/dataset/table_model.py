"""The data-set table's model: one row per case, flagged when its IAA is below a threshold.

Sorting is done on the Python side (fast on 10k-case tables, missing values last); the
proxy only filters.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
from qtpy.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from qtpy.QtGui import QBrush, QColor

__all__ = ["AGREEMENT_COLUMNS", "FLAG_COLOR", "CaseTableModel", "SortProxy"]

AGREEMENT_COLUMNS = ["IAA", "min pair", "lowest pair"]
FLAG_COLOR = QColor(200, 60, 60, 110)
_DIGITS = re.compile(r"(\d+)")
_MISSING_KEY = float("inf")


def _is_number(v: Any) -> bool:
    """A number or a missing value (NaN/None/empty): sortable as a float column."""
    if v is None or (isinstance(v, str) and v == ""):
        return True
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


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
        self._rows = [
            [rec.get(c, math.nan if c in AGREEMENT_COLUMNS else "") for c in cols]
            for rec in df.to_dict("records")
        ]
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
                return _MISSING_KEY
            return f if np.isfinite(f) else _MISSING_KEY
        if _is_missing(v):
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
        finite = [i for i in range(n) if keys[i] != _MISSING_KEY]
        missing = [i for i in range(n) if keys[i] == _MISSING_KEY]
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
        return [str(r[0]) for r, f in zip(self._rows, self._flags, strict=True) if f]

    def case_id(self, row: int) -> str:
        """Case id of source row ``row``."""
        return str(self._rows[row][0])

    def row_of(self, case_id: str) -> int | None:
        """Source row of a case."""
        return self._row_of.get(case_id)

    # -- Qt model API ------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._columns)

    def headerData(self, section: int, orientation, role=Qt.DisplayRole):
        if role != Qt.DisplayRole:
            return None
        if orientation == Qt.Horizontal and 0 <= section < len(self._columns):
            return self._columns[section].replace("_", " ")
        return str(section + 1) if orientation == Qt.Vertical else None

    def _display(self, v: Any, col: str) -> str:
        if isinstance(v, float | np.floating):
            if not np.isfinite(v):  # an agreement value not scored yet shows "…"
                return "…" if col in AGREEMENT_COLUMNS and col != "lowest pair" else ""
            return f"{v:.3f}"
        return "" if _is_missing(v) else str(v)

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        v = self._rows[r][c]
        if role == Qt.DisplayRole:
            return self._display(v, self._columns[c])
        if role == Qt.UserRole:  # sort key
            return self._sort_key(self._rows[r], c)
        if role == Qt.BackgroundRole and self._flags[r]:
            return QBrush(FLAG_COLOR)
        if role == Qt.TextAlignmentRole and isinstance(v, int | float | np.integer | np.floating):
            return int(Qt.AlignRight | Qt.AlignVCenter)
        if role == Qt.ToolTipRole and self._flags[r]:
            return f"IAA below {self.threshold:.2f}"
        return None


class SortProxy(QSortFilterProxyModel):
    """Filters; sorting is delegated to the source model (a Python-side sort of the rows is
    far faster than Qt calling ``data()`` for every comparison)."""

    def sort(self, column: int, order=Qt.AscendingOrder) -> None:
        self.sourceModel().sort(column, order)
