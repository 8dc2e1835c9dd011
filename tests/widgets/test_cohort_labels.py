"""Cohort tab: an external labels CSV joined on the case id (as ``cohort --labels``), and a
plain message when a data set has no grouping column."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest


def test_join_labels_exact_suffix_and_ancestor():
    from napari_iaa.agreement.labels import join_labels

    labels = pd.DataFrame({"case_id": ["ISIC_1", "P1/nodule-0", "P1", "P2/nodule-1"],
                           "group": ["benign", "5", "2", "3"]})
    ids = ["ISIC_1.JPG", "P1/nodule-0/slice-3", "P1/nodule-1/slice-0", "P2/nodule-0",
           "P2/nodule-1"]
    got = join_labels(ids, labels)
    assert list(got.index) == ids
    # suffix dropped; the nodule's own row before the patient's; no row, no label
    assert got.tolist() == ["benign", "5", "2", None, "3"]


def test_label_table_conflict_names_the_file(tmp_path):
    from napari_iaa.agreement.labels import read_label_table
    from napari_iaa.errors import DatasetError

    path = tmp_path / "ratings.csv"
    path.write_text("case_id,malignancy\nP1/nodule-0,3\nP1/nodule-0,4\n")
    with pytest.raises(DatasetError, match="ratings.csv: case P1/nodule-0 has conflicting"):
        read_label_table(path, "malignancy")


@pytest.fixture
def no_groups_root(synthetic_root, tmp_path):
    """The synthetic data set without its image metadata: no grouping column at all."""
    dst = tmp_path / "nogroups"
    shutil.copytree(synthetic_root, dst, ignore=shutil.ignore_patterns(".napari-iaa"))
    (dst / "synthetic_img_metadata.csv").unlink()
    return dst


@pytest.fixture
def scored_no_groups(review, no_groups_root, qtbot):
    from napari_iaa.data import open_dataset

    viewer, widget = review
    ds = open_dataset(no_groups_root)
    with qtbot.waitSignal(widget.dataset_panel.scoring_finished, timeout=30000) as blocker:
        widget.set_dataset(ds, source=str(no_groups_root))
    assert blocker.args == [True]
    return widget, ds


@pytest.mark.gui
def test_no_grouping_column_says_so(scored_no_groups, monkeypatch):
    from napari_iaa.widgets.dataset import cohort as cohort_mod

    widget, _ds = scored_no_groups
    cohort = widget.cohort_panel
    cohort.refresh_columns()
    assert cohort.column_combo.count() == 0
    assert cohort.note.text() == cohort_mod.NO_GROUPS and "no grouping column" in \
        cohort.note.text().lower()
    assert not cohort.run_btn.isEnabled()
    # the plot area carries the message, not an empty axes
    texts = [t.get_text() for t in cohort.figure.texts]
    assert not cohort.figure.axes and any("grouping column" in t for t in texts)
    errors = []
    monkeypatch.setattr(cohort_mod, "notify_error", errors.append)
    assert cohort.run() is None
    assert errors and "no grouping column" in errors[0].lower()


@pytest.mark.gui
def test_labels_csv_joins_and_compares(scored_no_groups, tmp_path, qtbot):
    widget, ds = scored_no_groups
    cohort = widget.cohort_panel
    ids = list(ds.ids)
    # a labels table as a user has it: image file names, one rating column, one id with
    # no case, a free-text column with a value per case (not a grouping)
    rows = [{"image": f"{cid}.JPG", "malignancy": 1 + (i % 2) * 4, "note": f"n{i}"}
            for i, cid in enumerate(ids)]
    rows.append({"image": "NOT_A_CASE.JPG", "malignancy": 3, "note": "x"})
    path = tmp_path / "ratings.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert cohort.load_labels(path) == 1
    groups = [cohort.column_combo.itemText(i) for i in range(cohort.column_combo.count())]
    assert groups == ["malignancy"]
    assert cohort.run_btn.isEnabled()
    assert f"{len(ids)} of {len(ids)} cases have a label" in cohort.note.text()
    frame = cohort.frame()
    got = dict(zip(frame["case_id"], frame["malignancy"], strict=True))
    assert got == {cid: 1 + (i % 2) * 4 for i, cid in enumerate(ids)}
    result = cohort.run("malignancy")
    assert result is not None and set(result.groups) == {"1", "5"}
    assert sum(result.n.values()) == len(ids)
    # the statistics agree with the core on the same join
    iaa = frame.set_index("case_id")["IAA"].astype(float)
    for g in ("1", "5"):
        sel = [cid for cid in ids if str(got[cid]) == g]
        assert result.mean[g] == pytest.approx(float(np.mean(iaa[sel])))
    assert len(cohort.figure.axes) == 1 and cohort.figure.axes[0].has_data()
    cohort.clear_labels()
    assert cohort.column_combo.count() == 0 and cohort.labels_path is None


@pytest.mark.gui
def test_unusable_labels_csv_is_a_clear_message(scored_no_groups, tmp_path, monkeypatch):
    from napari_iaa.widgets.dataset import cohort as cohort_mod

    widget, _ds = scored_no_groups
    errors = []
    monkeypatch.setattr(cohort_mod, "notify_error", errors.append)
    path = tmp_path / "bad.csv"
    path.write_text("patient,score\nA,1\n")  # no case id column the join knows
    assert widget.cohort_panel.load_labels(path) == 0
    assert "bad.csv" in errors[0] and "case id" in errors[0]
    assert widget.cohort_panel.labels_path is None


@pytest.mark.gui
def test_lidc_says_no_grouping_then_joins_nodule_ratings(review, lidc_root, tmp_path, qtbot):
    """Real LIDC slices: no grouping column of their own; a rating per nodule labels every
    slice of the nodule."""
    from napari_iaa.data import open_dataset
    from napari_iaa.widgets.dataset.cohort import NO_GROUPS

    _viewer, widget = review
    ds = open_dataset(lidc_root)
    with qtbot.waitSignal(widget.dataset_panel.scoring_finished, timeout=120000):
        widget.set_dataset(ds, source=str(lidc_root))
    cohort = widget.cohort_panel
    cohort.refresh_columns()
    assert cohort.column_combo.count() == 0 and cohort.note.text() == NO_GROUPS
    nodules = sorted({cid.rsplit("/", 1)[0] for cid in ds.ids})
    assert len(nodules) >= 2
    path = tmp_path / "malignancy.csv"
    pd.DataFrame({"case_id": nodules,
                  "malignancy": ["low" if i % 2 else "high" for i in range(len(nodules))],
                  }).to_csv(path, index=False)
    assert cohort.load_labels(path) == 1
    frame = cohort.frame()
    expect = {n: ("low" if i % 2 else "high") for i, n in enumerate(nodules)}
    assert all(frame["malignancy"].iloc[k] == expect[cid.rsplit("/", 1)[0]]
               for k, cid in enumerate(frame["case_id"]))
    result = cohort.run("malignancy")
    assert result is not None and sum(result.n.values()) == int(frame["IAA"].notna().sum())


@pytest.mark.gui
def test_hidden_cohort_plot_is_drawn_when_shown_not_on_each_resize(make_napari_viewer, qtbot,
                                                                    monkeypatch):
    """matplotlib draws a Qt canvas's whole figure on the GUI thread after each message and
    each resize; the Cohort tab's plot, hidden behind the Case tab, is drawn when its tab
    is shown (it was drawn as the review dock was built, and again whenever Qt delivered
    a resize to it while hidden: as the Predictions dock showed its first prediction)."""
    from qtpy.QtCore import QSize
    from qtpy.QtGui import QResizeEvent
    from qtpy.QtWidgets import QApplication

    from napari_iaa.widgets import ReviewWidget
    from napari_iaa.widgets.dataset.cohort import _shown_canvas_class

    draws = []
    cls = _shown_canvas_class()
    real_draw = cls.draw
    monkeypatch.setattr(cls, "draw", lambda self: (draws.append(self.size()), real_draw(self)))
    viewer = make_napari_viewer(show=True)
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Review")
    canvas = widget.cohort_panel.canvas
    qtbot.waitUntil(lambda: widget.isVisible())
    assert not canvas.isVisible()
    for width in (300, 420, 360):  # as Qt delivers a pending resize to a hidden widget
        QApplication.sendEvent(canvas, QResizeEvent(QSize(width, 240), canvas.size()))
        QApplication.processEvents()  # matplotlib's draw_idle draws on the next turn
    assert draws == []
    widget.tabs.setCurrentWidget(widget.cohort_panel)
    qtbot.waitUntil(lambda: len(draws) > 0, timeout=5000)
    assert canvas.isVisible() and draws[-1] == canvas.size()  # at the size it is shown at
