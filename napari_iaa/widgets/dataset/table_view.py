"""The data-set table's view: a ``QTableView`` that repaints only the rows it shows.

Qt's item views repaint their whole viewport for any ``dataChanged`` that spans more than
one cell, even when none of the changed rows is on screen. While the table is scored, each
batch of results is one ``dataChanged`` over the rows it touched (mostly rows far below the
visible ones), so every batch repainted the visible rows and, in a napari window, composed
the whole window again: on a software-OpenGL display that repaint is one of the longest
event-loop stalls of a scoring run (BENCHMARKS.md, issue 16, eleventh pass).

:class:`CaseTableView` repaints the intersection of the changed rows with the rows on
screen, or nothing when they do not meet. Everything else is ``QTableView``'s own (a
single changed cell, a hidden view, a model with a tree, the view's editors: this table has
none).
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QTableView

__all__ = ["CaseTableView", "visible_rows"]


def visible_rows(view: QTableView) -> tuple[int, int] | None:
    """The first and last row (of the view's model) with a pixel on screen; None when the
    view shows no row (empty model, or a viewport of no height)."""
    model = view.model()
    n = model.rowCount() if model is not None else 0
    height = view.viewport().height()
    if n == 0 or height <= 0:
        return None
    first = view.rowAt(0)
    if first < 0:
        return None
    last = view.rowAt(height - 1)
    return first, (n - 1 if last < 0 else last)  # -1: the rows end above the bottom


class CaseTableView(QTableView):
    """``QTableView`` whose multi-row ``dataChanged`` repaints only the changed rows that
    are on screen (see the module's docstring)."""

    def dataChanged(self, top_left: Any, bottom_right: Any, roles: Any = ()) -> None:
        if (top_left == bottom_right or not top_left.isValid() or not bottom_right.isValid()
                or top_left.parent().isValid() or not self.isVisible()):
            super().dataChanged(top_left, bottom_right, roles)
            return
        shown = visible_rows(self)
        if shown is None:
            return
        a, b = max(shown[0], top_left.row()), min(shown[1], bottom_right.row())
        if a > b:  # no changed row on screen: nothing to repaint
            return
        y0 = self.rowViewportPosition(a)
        y1 = self.rowViewportPosition(b) + self.rowHeight(b)
        viewport = self.viewport()
        viewport.update(0, y0, viewport.width(), y1 - y0)
