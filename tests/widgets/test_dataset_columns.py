"""The data-set table's columns are sized from a sample of rows (issue 16): every header and
every cell text of the sampled rows fits, without asking the view for every row's data."""

from __future__ import annotations

import pandas as pd
import pytest
from qtpy.QtGui import QFontMetrics

from napari_iaa.widgets.dataset.columns import MAX_WIDTH, sample_rows

pytestmark = pytest.mark.gui


def test_sample_rows_spreads_over_the_table():
    assert sample_rows(10) == list(range(10))
    rows = sample_rows(10_000, 300)
    assert len(rows) == 300 and rows[:150] == list(range(150))
    assert rows == sorted(set(rows)) and rows[-1] > 9_900  # reaches the end of the table


def test_columns_fit_headers_and_sampled_texts(qtbot):
    from napari_iaa.widgets.dataset.panel import DatasetPanel

    panel = DatasetPanel()
    qtbot.addWidget(panel)
    ids = [f"case-{i:05d}" for i in range(5000)]
    ids[2345] = "LIDC-IDRI-0999/nodule-12/slice-0123"  # a long id off the sample
    df = pd.DataFrame({"case_id": ids, "a_rather_long_metadata_column_name": "x",
                       "note": ["short"] * 4999 + ["y" * 400]})  # the last row is sampled

    class _DS:  # only what set_dataset reads when it does not score
        def metadata(self):
            return df

    panel.set_dataset(_DS(), compute=False)
    view, model = panel.view, panel.model
    cell = QFontMetrics(view.font())
    head = QFontMetrics(view.horizontalHeader().font())
    for col, name in enumerate(model.columns):
        width = view.columnWidth(col)
        header = model.headerData(col, 1)
        assert width >= min(head.horizontalAdvance(header), MAX_WIDTH - 30), name
        assert width <= MAX_WIDTH
    case_col = model.columns.index("case_id")
    assert view.columnWidth(case_col) >= cell.horizontalAdvance(ids[2345])
    assert view.columnWidth(model.columns.index("note")) == MAX_WIDTH  # capped, not 400 chars
