"""The three docks fit a laptop screen: scrolled content, one tab group, the canvas keeps room."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui

DOCKS = ("Review", "Predictions", "Training")


def _open_all(viewer, qtbot):
    from qtpy.QtWidgets import QMainWindow

    window = viewer.window
    docks = [window.add_plugin_dock_widget("napari-iaa", name)[0] for name in DOCKS]
    qmw = next(w for w in [docks[0].parentWidget()] if isinstance(w, QMainWindow))
    qtbot.waitUntil(lambda: len(qmw.tabifiedDockWidgets(docks[-1])) == len(DOCKS) - 1,
                    timeout=10_000)
    return qmw, docks


def test_three_docks_fit_1366x768(make_napari_viewer, qtbot):
    from napari_iaa.widgets import ReviewWidget
    from napari_iaa.widgets.predictions import PredictionsWidget
    from napari_iaa.widgets.training import TrainingWidget

    viewer = make_napari_viewer()
    qmw, docks = _open_all(viewer, qtbot)
    hint = qmw.minimumSizeHint()
    # 2,327 px tall before the docks scrolled; a 1366x768 screen must hold the window
    assert hint.width() <= 1366 and hint.height() <= 768, hint
    # the docks share one tab group in the right area; napari still hands out our widgets
    for dock in docks:
        assert {d.windowTitle() for d in qmw.tabifiedDockWidgets(dock)} == (
            {d.windowTitle() for d in docks} - {dock.windowTitle()})
    inner = viewer.window.dock_widgets
    assert isinstance(inner["Review (napari-iaa)"], ReviewWidget)
    assert isinstance(inner["Predictions (napari-iaa)"], PredictionsWidget)
    assert isinstance(inner["Training (napari-iaa)"], TrainingWidget)
    # napari remembers where each dock went (the tabbing itself does not tell it again)
    from napari.settings import get_settings

    positions = get_settings().application.plugin_widget_positions
    assert all(positions.get(d.name) == "right" for d in docks), dict(positions)


def test_window_at_1366x768_keeps_canvas_and_scrolls(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QScrollArea

    viewer = make_napari_viewer(show=True)
    qmw, docks = _open_all(viewer, qtbot)
    qmw.resize(1366, 768)
    qtbot.waitUntil(lambda: qmw.size().height() <= 768, timeout=5_000)
    review = viewer.window.dock_widgets["Review (napari-iaa)"]
    docks[0].raise_()
    qtbot.waitUntil(review.isVisible, timeout=5_000)
    area = review.findChild(QScrollArea, "napari_iaa_scroll")
    # the review content (860 px) is taller than the dock: it scrolls, the dock does not grow
    assert area.verticalScrollBar().maximum() > 0
    assert docks[0].height() < 768
    canvas = viewer.window._qt_viewer.canvas.native
    assert canvas.width() >= 0.35 * qmw.width(), (canvas.width(), qmw.width())


def test_scroll_contents_keeps_order_and_stretch(qtbot):
    from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

    from napari_iaa.widgets._common.scroll import scroll_contents

    w = QWidget()
    qtbot.addWidget(w)
    lay = QVBoxLayout(w)
    top = QLabel("top")
    row = QHBoxLayout()
    btn = QPushButton("in a nested row")
    row.addWidget(btn)
    big = QLabel("big")
    big.setMinimumHeight(900)
    lay.addWidget(top)
    lay.addLayout(row)
    lay.addWidget(big, 3)
    lay.addStretch(1)
    area = scroll_contents(w, min_height=120)
    content = area.widget()
    assert w.layout().count() == 1 and w.layout().itemAt(0).widget() is area
    moved = content.layout()
    assert [moved.itemAt(i).widget() for i in (0, 2)] == [top, big]
    assert moved.itemAt(1).layout() is row and btn.parentWidget() is content
    assert [moved.stretch(i) for i in range(moved.count())] == [0, 0, 3, 1]
    assert w.minimumSizeHint().height() <= 200  # the 900 px label scrolls


def test_long_mask_ids_elided_with_whole_id_in_tooltip(qtbot):
    from napari_iaa.widgets.review.agreement_panel import AgreementPanel

    panel = AgreementPanel()
    qtbot.addWidget(panel)
    ids = ["reader_1_segmentation_final", "A02"]
    panel.set_annotators(ids, ["#E69F00", "#56B4E9"])
    item = panel.matrix.horizontalHeaderItem(0)
    assert item.text() != ids[0] and "…" in item.text() and len(item.text()) <= 14
    assert item.text().startswith("reader_") and item.text().endswith("final")
    assert item.toolTip() == ids[0]
    assert panel.matrix.verticalHeaderItem(1).text() == "A02"
