"""The data-set table's model: one row per case, flagged by the rules of :mod:`.flags`.

Columns: the case id, the annotators, the agreement cells (IAA, the least agreeing pair,
then the two kinds of disagreement: how many marked, detection agreement, IAA among those
who marked, HD95, ASSD), "flagged by" (which rule flagged the case), then the metadata.
Sorting is done on the Python side (fast on 10k-case tables, missing values last); the
proxy only filters.

Each row is a tuple of plain values (strings, numbers), replaced whole when a cell
changes: the garbage collector stops tracking such a tuple at the first collection it
meets, so a 10,000-case table adds nothing to what a full collection walks (as lists they
were 10,000 objects of the oldest generation, and each new table brought the next full
collection of napari's heap nearer).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from qtpy.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from qtpy.QtGui import QBrush, QColor

from napari_iaa.widgets.dataset.flags import RULE_NAMES, FlagRules, flag_reasons

__all__ = [
    "AGREEMENT_COLUMNS",
    "FLAGGED_BY",
    "FLAG_COLOR",
    "NUMERIC_AGREEMENT_COLUMNS",
    "REVIEW_COLUMNS",
    "CaseTableModel",
    "SortProxy",
]

AGREEMENT_COLUMNS = ["IAA", "min pair", "lowest pair", "n marked", "detection", "IAA (marked)",
                     "HD95", "ASSD"]
#: the agreement columns that hold numbers (the cohort tab can compare any of them)
NUMERIC_AGREEMENT_COLUMNS = [c for c in AGREEMENT_COLUMNS if c != "lowest pair"]
#: the column that says which rule flagged a case (derived: not taken from a frame)
FLAGGED_BY = "flagged by"
#: the review store's columns (the names ``napari-iaa review export`` uses; status,
#: reviewer and comment come right after the case id, ``updated`` after "flagged by")
REVIEW_COLUMNS = ["status", "reviewer", "comment", "updated"]
_DERIVED = {FLAGGED_BY, "flagged"}
FLAG_COLOR = QColor(200, 60, 60, 110)
_DIGITS = re.compile(r"(\d+)")
_MISSING_KEY = float("inf")


def _is_number(v: Any) -> bool:
    """A number or a missing value (NaN/None/empty): sortable as a float column."""
    if v is None or (isinstance(v, str) and v == ""):
        return True
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _number_or_nan(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


class CaseTableModel(QAbstractTableModel):
    """Table of cases (a pandas frame); flags rows by :class:`~.flags.FlagRules`."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._columns: list[str] = []
        self._col: dict[str, int] = {}  # column name -> index
        self._counts: dict[str, int] | None = None  # cases per review status (cached)
        self._rows: list[tuple[Any, ...]] = []  # untracked by the GC (see the module)
        self._row_of: dict[str, int] = {}
        self.rules = FlagRules()
        self._flags: list[bool] = []
        self._scored: list[bool] = []
        self._numeric: list[bool] = []
        self.n_flagged = 0

    @property
    def threshold(self) -> float | None:
        """The IAA rule's threshold (None: the rule is off)."""
        return self.rules.iaa_below

    # -- content -----------------------------------------------------------------------
    def set_frame(self, df: pd.DataFrame) -> None:
        """Replace the content; ``df`` must have a ``case_id`` column (a ``flagged`` or
        ``flagged by`` column in it is recomputed, not taken)."""
        self.beginResetModel()
        cols = ["case_id", *REVIEW_COLUMNS[:3], "n_annotators", *AGREEMENT_COLUMNS,
                FLAGGED_BY, "updated"]
        cols += [c for c in df.columns if c not in cols and c not in _DERIVED]
        self._columns = cols
        self._col = {c: k for k, c in enumerate(cols)}
        self._counts = None
        self._rows = [
            tuple(rec.get(c, math.nan if c in NUMERIC_AGREEMENT_COLUMNS else "") for c in cols)
            for rec in df.to_dict("records")
        ]
        self._row_of = {str(r[0]): i for i, r in enumerate(self._rows)}
        self._numeric = [
            c in NUMERIC_AGREEMENT_COLUMNS or c == "n_annotators"
            or (c != FLAGGED_BY and c not in REVIEW_COLUMNS
                and all(_is_number(r[k]) for r in self._rows))
            for k, c in enumerate(cols)
        ]
        marked, lowest = cols.index("n marked"), cols.index("lowest pair")
        # scored: a count of marks (every scored case has one) or an "unreadable" cell
        self._scored = [not math.isnan(_number_or_nan(r[marked])) or bool(r[lowest])
                        for r in self._rows]
        self._reflag()
        self.endResetModel()

    def update_case(self, case_id: str, values: dict[str, Any]) -> None:
        """Set some columns of one case (it counts as scored from now on)."""
        self.update_cases([(case_id, values)])

    def update_cases(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        """Set some columns of several cases; the views hear of them once (one
        ``dataChanged`` over the rows touched, not one per row: a batch of a 10,000-case
        run is hundreds of rows)."""
        col = self._col
        touched = []
        for case_id, values in items:
            r = self._row_of.get(case_id)
            if r is None:
                continue
            row = list(self._rows[r])
            for key, val in values.items():
                if (k := col.get(key)) is not None:
                    row[k] = val
            self._scored[r] = True
            was = self._flags[r]
            self._flag_row(r, row)
            self.n_flagged += int(self._flags[r]) - int(was)
            touched.append(r)
        if touched:
            self.dataChanged.emit(self.index(min(touched), 0),
                                  self.index(max(touched), len(self._columns) - 1))

    def set_review(self, verdicts: list[Any]) -> None:
        """Show verdicts (records with the :data:`REVIEW_COLUMNS` and ``case_id``)."""
        idx = [self._columns.index(c) for c in REVIEW_COLUMNS]
        touched = []
        for v in verdicts:
            r = self._row_of.get(str(v.case_id))
            if r is None:
                continue
            row = list(self._rows[r])
            for k, c in zip(idx, REVIEW_COLUMNS, strict=True):
                row[k] = getattr(v, c) or ""
            self._rows[r] = tuple(row)
            touched.append(r)
        self._counts = None
        if touched:
            self.dataChanged.emit(self.index(min(touched), 0),
                                  self.index(max(touched), len(self._columns) - 1))

    def review_counts(self) -> dict[str, int]:
        """Cases per status (an empty status counts as ``unreviewed``); counted again only
        after new verdicts or a new frame (the panel asks after every scored batch)."""
        if self._counts is None:
            k = self._col.get("status")
            out: dict[str, int] = {}
            for row in self._rows:
                s = (row[k] if k is not None else "") or "unreviewed"
                out[s] = out.get(s, 0) + 1
            self._counts = out
        return dict(self._counts)

    def set_rules(self, rules: FlagRules) -> None:
        """Flag rows by ``rules``."""
        self.rules = rules
        self._reflag()
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._rows) - 1, len(self._columns) - 1)
            )

    def set_threshold(self, value: float) -> None:
        """Flag rows with IAA below ``value`` (the IAA rule; the other rules stay)."""
        self.set_rules(replace(self.rules, iaa_below=float(value)))

    def _value(self, r: int, column: str) -> Any:
        k = self._col.get(column)
        return None if k is None else self._rows[r][k]

    def reasons(self, r: int) -> list[str]:
        """The rules (``iaa``, ``detection``, ``boundary``) that flag source row ``r``."""
        return self._reasons(self._rows[r])

    def _reasons(self, row: tuple[Any, ...] | list[Any]) -> list[str]:
        col = self._col
        return flag_reasons(self.rules, row[col["IAA"]], row[col["n marked"]],
                            row[col["IAA (marked)"]])

    def _flag_row(self, r: int, row: list[Any] | None = None) -> None:
        """Flag source row ``r`` and store it (``row``: its new cells; default its own)."""
        row = list(self._rows[r]) if row is None else row
        why = self._reasons(row)
        self._flags[r] = bool(why)
        row[self._col[FLAGGED_BY]] = ", ".join(RULE_NAMES[w] for w in why)
        self._rows[r] = tuple(row)

    def _reflag(self) -> None:
        self._flags = [False] * len(self._rows)
        for r in range(len(self._rows)):
            self._flag_row(r)
        self.n_flagged = sum(self._flags)

    def _sort_key(self, row: tuple[Any, ...], column: int) -> Any:
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
        self._scored = [self._scored[i] for i in idx]
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
        """The table as a DataFrame (with ``flagged by`` and a ``flagged`` column)."""
        df = pd.DataFrame(self._rows, columns=self._columns)
        df["flagged"] = self._flags
        return df

    def display_texts(self, rows: list[int]) -> list[list[str]]:
        """Per column, the texts the table shows in source rows ``rows``."""
        cols = self._columns
        return [[self._display(self._rows[r][c], col, self._scored[r]) for r in rows]
                for c, col in enumerate(cols)]

    def longest_case_id(self) -> str:
        """The longest case id (in characters), ``""`` for an empty table."""
        return max((str(r[0]) for r in self._rows), key=len, default="")

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

    def _display(self, v: Any, col: str, scored: bool) -> str:
        if isinstance(v, float | np.floating):
            if not np.isfinite(v):  # not scored yet: "…"; scored, no value (e.g. no pair): "–"
                if col in NUMERIC_AGREEMENT_COLUMNS:
                    return "–" if scored else "…"
                return ""
            return f"{v:.3f}"
        return "" if _is_missing(v) else str(v)

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        v = self._rows[r][c]
        if role == Qt.DisplayRole:
            return self._display(v, self._columns[c], self._scored[r])
        if role == Qt.UserRole:  # sort key
            return self._sort_key(self._rows[r], c)
        if role == Qt.BackgroundRole and self._flags[r]:
            return QBrush(FLAG_COLOR)
        if role == Qt.TextAlignmentRole and isinstance(v, int | float | np.integer | np.floating):
            return int(Qt.AlignRight | Qt.AlignVCenter)
        if role == Qt.ToolTipRole and self._flags[r]:
            return self._tooltip(r)
        return None


    def _tooltip(self, r: int) -> str:
        rules, lines = self.rules, []
        for why in self.reasons(r):
            if why == "iaa":
                lines.append(f"IAA below {rules.iaa_below:.2f}")
            elif why == "detection":
                lines.append(f"marked by {self._value(r, 'n marked')} of "
                             f"{self._value(r, 'n_annotators')}: fewer than {rules.marked_below}")
            else:
                lines.append(f"boundary IAA (among those who marked) below "
                             f"{rules.boundary_below:.2f}")
        return "\n".join(lines)


class SortProxy(QSortFilterProxyModel):
    """Filters (text, and :attr:`status_filter`); sorting is delegated to the source model
    (a Python-side sort of the rows is far faster than Qt calling ``data()`` for every
    comparison)."""

    #: show only cases with this review status (``reviewed``: any but unreviewed; None: all)
    status_filter: str | None = None

    def set_status_filter(self, status: str | None) -> None:
        """Show only the cases with ``status`` (None: every case)."""
        self.status_filter = status or None
        self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:
        want = self.status_filter
        if want is not None:
            model = self.sourceModel()
            status = model._value(row, "status") or "unreviewed"
            if (status == "unreviewed") if want == "reviewed" else status != want:
                return False
        return super().filterAcceptsRow(row, parent)

    def sort(self, column: int, order=Qt.AscendingOrder) -> None:
        self.sourceModel().sort(column, order)
