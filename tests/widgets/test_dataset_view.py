"""The data-set table repaints only the changed rows it shows (issue 16): scored rows below
the visible ones repaint nothing, changed visible rows are repainted (their new values
shown), and the table's own behaviour (one cell, a filter) is Qt's."""

from __future__ import annotations

import pandas as pd
import pytest
from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QApplication

pytestmark = pytest.mark.gui


class _Paints(QObject):
    """The regions of the paint events a widget receives."""

    def __init__(self, widget):
        super().__init__()
        self.rects = []
        widget.installEventFilter(self)

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Paint:
            self.rects.append(event.region().boundingRect())
        return False


def _settle():
    for _ in range(3):  # the posted update requests run, then their paints
        QApplication.processEvents()


@pytest.fixture
def panel(qtbot):
    from napari_iaa.widgets.dataset.panel import DatasetPanel

    panel = DatasetPanel()
    qtbot.addWidget(panel)
    df = pd.DataFrame({"case_id": [f"case-{i:04d}" for i in range(2000)]})

    class _DS:  # only what set_dataset reads when it does not score
        def metadata(self):
            return df

    panel.set_dataset(_DS(), compute=False)
    panel.resize(500, 500)
    panel.show()
    qtbot.waitExposed(panel)
    _settle()
    return panel


def _score(panel, rows):
    panel.model.update_cases([(f"case-{r:04d}", {"IAA": 0.5 + r / 10_000}) for r in rows])


def test_rows_scored_off_screen_repaint_nothing(panel):
    from napari_iaa.widgets.dataset.table_view import visible_rows

    first, last = visible_rows(panel.view)
    assert first == 0 and 5 < last < 100
    paints = _Paints(panel.view.viewport())
    _score(panel, range(last + 50, last + 400))  # one batch far below the visible rows
    _settle()
    assert paints.rects == []
    col = panel.model.columns.index("IAA")
    assert panel.proxy.index(last + 60, col).data().startswith("0.5")  # the rows were updated


def test_changed_visible_rows_are_repainted_and_only_they(panel):
    view = panel.view
    paints = _Paints(view.viewport())
    _score(panel, [3, 4, 5])  # one dataChanged over rows 3..5
    _settle()
    assert paints.rects, "the changed rows on screen were not repainted"
    top = view.rowViewportPosition(3)
    bottom = view.rowViewportPosition(5) + view.rowHeight(5)
    for rect in paints.rects:
        assert rect.top() >= top and rect.bottom() < bottom  # rows 3-5, nothing more
    paints.rects.clear()
    _score(panel, [8, 1500])  # one dataChanged over rows 8..1500: from row 8 to the bottom
    _settle()
    assert paints.rects
    assert min(r.top() for r in paints.rects) == view.rowViewportPosition(8)
    col = panel.model.columns.index("IAA")
    shown = panel.proxy.index(4, col).data()
    assert shown and shown.startswith("0.50")  # the value a repaint draws


def test_a_filtered_table_repaints_the_rows_it_maps_to(panel):
    view = panel.view
    panel.filter_edit.setText("case-1")  # case-1000..1999
    _settle()
    assert panel.proxy.rowCount() == 1000
    paints = _Paints(view.viewport())
    _score(panel, [5, 1001, 1002])  # source rows 5..1002: the filtered table's rows 0..2
    _settle()
    assert paints.rects
    assert max(r.bottom() for r in paints.rects) < view.rowViewportPosition(3)
