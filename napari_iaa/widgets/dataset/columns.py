"""Column widths of the data-set table from a sample of rows (cheap on 10k-case tables).

``QTableView.resizeColumnsToContents`` asks the model for the display text, font and
alignment of every sampled cell through the proxy (several Python calls per cell) and
measures each: on the LIDC table (10,681 slices x 20 columns) that took 0.1-0.9 s of the
GUI thread at the end of each scoring run. Here the texts come straight from the model's
rows, at most :data:`SAMPLE_ROWS` rows spread over the table (and the longest case id of all
rows), and only the few longest texts of each column are measured with the view's font
metrics.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtGui import QFontMetrics

__all__ = ["MAX_WIDTH", "SAMPLE_ROWS", "fit_columns"]

#: rows whose texts size the columns (the first ones and an even spread over the rest)
SAMPLE_ROWS = 300
#: no column gets wider than this (pixels) from its contents (the user can widen it)
MAX_WIDTH = 360
#: per column, this many of the longest sampled texts are measured (proportional fonts)
_MEASURED = 4
#: padding around a cell's text and a header's text (sort indicator included)
_CELL_PAD = 14
_HEADER_PAD = 26


def sample_rows(n: int, k: int = SAMPLE_ROWS) -> list[int]:
    """Up to ``k`` row numbers out of ``n``: the first ``k // 2`` and a spread over the rest."""
    if n <= k:
        return list(range(n))
    head = k // 2
    step = (n - 1 - head) / (k - 1 - head)
    return list(range(head)) + sorted({head + round(i * step) for i in range(k - head)})


def fit_columns(view: Any, model: Any, rows: int = SAMPLE_ROWS) -> list[int]:
    """Size ``view``'s columns to the header and a sample of ``model``'s cell texts.

    Parameters
    ----------
    view : QTableView
        The table (its font and its header's font measure the texts).
    model : CaseTableModel
        The source model (:meth:`~.table_model.CaseTableModel.display_texts`).
    rows : int
        How many rows to sample.

    Returns
    -------
    list of int
        The widths set, one per column.
    """
    texts = model.display_texts(sample_rows(model.rowCount(), rows))
    if texts:  # the case ids, all of them (the column users read; ~1 ms per 10k rows)
        texts[0] = [model.longest_case_id()]
    cell_fm = QFontMetrics(view.font())
    head_fm = QFontMetrics(view.horizontalHeader().font())
    widths = []
    for col, column_texts in enumerate(texts):
        header = str(model.headerData(col, Qt.Horizontal) or "")
        longest = sorted(set(column_texts), key=len, reverse=True)[:_MEASURED]
        cell = max((cell_fm.horizontalAdvance(t) for t in longest), default=0)
        width = max(head_fm.horizontalAdvance(header) + _HEADER_PAD, cell + _CELL_PAD)
        widths.append(min(width, MAX_WIDTH))
    for col, width in enumerate(widths):
        view.setColumnWidth(col, width)
    return widths
