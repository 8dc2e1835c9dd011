"""Data-set table (worker scoring, sorting, flags, navigation, export) and cohort tab."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from qtpy.QtCore import Qt

from napari_iaa.agreement import iaa

pytestmark = pytest.mark.gui


@pytest.fixture
def scored(review, synthetic_root, qtbot):
    """The dock on the synthetic data set with its table fully scored."""
    from napari_iaa.data import open_dataset

    viewer, widget = review
    ds = open_dataset(synthetic_root)
    panel = widget.dataset_panel
    with qtbot.waitSignal(panel.scoring_finished, timeout=30000) as blocker:
        widget.set_dataset(ds, source=str(synthetic_root))
    assert blocker.args == [True]
    return viewer, widget, ds


def test_table_scores_every_case_in_worker(scored):
    viewer, widget, ds = scored
    df = widget.dataset_panel.model.frame()
    assert list(df["case_id"]) == ds.ids
    for cid, value, n in zip(df["case_id"], df["IAA"], df["n_annotators"]):
        case = ds.load(cid)
        assert value == pytest.approx(iaa(case.stack()))
        assert n == len(set(case.raters.values()))
    assert "benign_malignant" in df.columns  # metadata columns are there
    assert widget.dataset_panel.progress.value() == len(ds.ids)


def test_table_agrees_with_the_cli_scorer(scored):
    """The table's agreement cells are ``napari-iaa score``'s iaa, min_pair_dice, min_pair."""
    from napari_iaa.scoring import score_dataset

    viewer, widget, ds = scored
    df = widget.dataset_panel.model.frame().set_index("case_id")
    for row in score_dataset(ds).rows:
        got = df.loc[row["case_id"]]
        assert got["IAA"] == row["iaa"]
        assert got["min pair"] == row["min_pair_dice"]
        assert got["lowest pair"] == row["min_pair"] and ";" in got["lowest pair"]


def test_same_rater_pairs_switch_reaches_the_scorer(review, synthetic_root, qtbot, monkeypatch):
    from napari_iaa.data import open_dataset
    from napari_iaa.widgets.dataset import jobs

    monkeypatch.setenv("NAPARI_IAA_NO_THREADS", "1")
    seen = []
    real = jobs.score_id
    monkeypatch.setattr(jobs, "score_id", lambda ds, cid, e, s, surf: seen.append((e, s, surf)) or real(ds, cid, e, s, surf))
    viewer, widget = review
    panel = widget.dataset_panel
    assert panel.same_rater_pairs is True  # the CLI's default
    panel.set_dataset(open_dataset(synthetic_root), compute=False)
    panel.compute(empty="one", same_rater_pairs=False)
    assert seen and set(seen) == {("one", False, True)}
    seen.clear()
    panel.compute(surface=False)  # the HD95/ASSD box
    assert set(seen) == {("one", False, False)} and not panel.surface_check.isChecked()
    assert not panel.busy


def _panel_on(review, root):
    """The review dock's data-set panel on ``root``, not scored yet; its finished runs."""
    from napari_iaa.data import open_dataset

    viewer, widget = review
    panel = widget.dataset_panel
    ds = open_dataset(root)
    panel.set_dataset(ds, compute=False)
    finished: list[bool] = []
    panel.scoring_finished.connect(finished.append)
    return viewer, widget, panel, ds, finished


def test_a_replaced_run_leaves_the_table_alone(review, synthetic_root, qtbot):
    from napari_iaa.widgets._common import Progress
    from napari_iaa.widgets.dataset.events import ScoredBatch

    _, _, panel, ds, finished = _panel_on(review, synthetic_root)
    panel.compute()
    stale = panel._run
    panel.compute()  # the first run is cancelled (finished(False)) and replaced
    qtbot.waitUntil(lambda: not panel.busy, timeout=30000)
    qtbot.wait(300)  # the first worker's own end, if still queued, is dropped
    assert finished == [False, True]
    before = panel.model.frame()
    panel._on_message(stale, ScoredBatch((ds.ids[0],), (None,), ("stale",)))
    panel._on_message(stale, Progress(1, 8))
    assert panel.problems == {} and panel.progress.value() == len(ds.ids)
    pd.testing.assert_frame_equal(panel.model.frame(), before)


def test_sorting_filter_and_flags(scored):
    viewer, widget, ds = scored
    panel = widget.dataset_panel
    col = panel.model.columns.index("IAA")
    panel.view.sortByColumn(col, Qt.SortOrder.AscendingOrder)
    df = panel.model.frame().set_index("case_id")
    order = panel.visible_ids()
    assert list(df.loc[order, "IAA"]) == sorted(df["IAA"])
    panel.view.sortByColumn(col, Qt.SortOrder.DescendingOrder)
    assert list(df.loc[panel.visible_ids(), "IAA"]) == sorted(df["IAA"], reverse=True)
    panel.view.sortByColumn(panel.model.columns.index("case_id"), Qt.SortOrder.AscendingOrder)
    assert panel.visible_ids() == sorted(ds.ids)
    # flags follow the threshold
    t = float(np.median(df["IAA"]))
    panel.set_threshold(t)
    expected = set(df.index[df["IAA"] < t])
    assert set(panel.flagged_ids()) == expected and expected
    assert f"{len(expected)} of {len(ds.ids)} cases flagged" in panel.count_label.text()
    src_row = panel.model.row_of(next(iter(expected)))
    assert panel.model.data(panel.model.index(src_row, 0), role=8) is not None  # BackgroundRole
    ok_row = panel.model.row_of(next(c for c in df.index if c not in expected))
    assert panel.model.data(panel.model.index(ok_row, 0), role=8) is None
    # filter text
    target = ds.ids[3]
    panel.filter_edit.setText(target)
    assert panel.visible_ids() == [target]
    panel.filter_edit.setText("")
    assert len(panel.visible_ids()) == len(ds.ids)


def test_next_previous_flagged_open_cases(scored, qtbot):
    viewer, widget, ds = scored
    panel = widget.dataset_panel
    panel.view.sortByColumn(panel.model.columns.index("IAA"), Qt.SortOrder.AscendingOrder)
    df = panel.model.frame().set_index("case_id")
    panel.set_threshold(float(np.sort(df["IAA"])[2]) + 1e-9)  # the 3 lowest are flagged
    flagged = panel.flagged_ids()
    assert len(flagged) == 3
    panel.view.clearSelection()
    panel.view.selectionModel().clearCurrentIndex()
    assert panel.next_flagged() == flagged[0]
    assert widget.case_id == flagged[0]
    assert panel.next_flagged() == flagged[1]
    assert widget.case_id == flagged[1]
    assert panel.previous_flagged() == flagged[0]
    assert widget.case_id == flagged[0]
    # double-click opens a case too
    idx = panel.proxy.index(5, 0)
    panel.view.doubleClicked.emit(idx)
    assert widget.case_id == panel.visible_ids()[5]


def test_flagged_keyboard_shortcuts_are_wired(scored):
    """F3 / Shift+F3 are napari actions (listed in napari's preferences), pressed on the
    canvas while an annotator's Labels layer is selected."""
    from napari.utils.action_manager import action_manager

    viewer, widget, ds = scored
    panel = widget.dataset_panel
    panel.set_threshold(1.0)  # everything scored below 1 is flagged
    for name, key in (("napari-iaa:next_flagged", "F3"), ("napari-iaa:previous_flagged", "Shift+F3")):
        assert name in action_manager._actions
        assert key in [str(k) for k in action_manager._shortcuts[name]]
    assert type(viewer.layers.selection.active).__name__ == "Labels"
    press = viewer.window._qt_viewer._key_map_handler.press_key
    panel.view.clearSelection()
    panel.view.selectionModel().clearCurrentIndex()
    press("F3")
    assert widget.case_id == panel.flagged_ids()[0]
    press("F3")
    assert widget.case_id == panel.flagged_ids()[1]
    press("Shift+F3")
    assert widget.case_id == panel.flagged_ids()[0]


def test_export_table_and_flagged(scored, tmp_path):
    viewer, widget, ds = scored
    panel = widget.dataset_panel
    panel.set_threshold(0.95)
    table = pd.read_csv(panel.export_table(tmp_path / "table.csv"))
    assert sorted(table["case_id"]) == sorted(ds.ids)
    assert {"iaa", "flagged", "n_annotators"} <= set(table.columns)  # the CLI's names
    flagged = pd.read_csv(panel.export_flagged(tmp_path / "flagged.csv"))
    assert list(flagged["case_id"]) == panel.flagged_ids()
    assert (flagged["iaa"] < 0.95).all()


def test_cancel_stops_worker(review, synthetic_root, qtbot):
    from napari_iaa.data import open_dataset

    viewer, widget = review
    panel = widget.dataset_panel
    ds = open_dataset(synthetic_root)
    panel.set_dataset(ds, compute=False)
    with qtbot.waitSignal(panel.scoring_finished, timeout=30000) as blocker:
        panel.compute()
        panel.cancel()
    assert blocker.args == [False]
    assert not panel.busy


def test_cohort_tab_statistics_and_plot(scored):
    viewer, widget, ds = scored
    cohort = widget.cohort_panel
    cohort.refresh_columns()
    assert cohort.column_combo.findText("benign_malignant") >= 0
    df = widget.dataset_panel.model.frame()
    if df["benign_malignant"].nunique() < 2:
        pytest.skip("the tiny sample has a single diagnosis group")
    result = cohort.run("benign_malignant")
    assert result is not None
    assert set(result.groups) == set(df["benign_malignant"])
    assert cohort.table.rowCount() >= 5
    texts = [cohort.table.item(r, 0).text() for r in range(cohort.table.rowCount())]
    assert any("Mann-Whitney" in t for t in texts)
    assert len(cohort.figure.axes) == 1 and cohort.figure.axes[0].has_data()


def test_scoring_without_threads(review, synthetic_root, monkeypatch):
    from napari_iaa.data import open_dataset

    monkeypatch.setenv("NAPARI_IAA_NO_THREADS", "1")
    viewer, widget = review
    panel = widget.dataset_panel
    ds = open_dataset(synthetic_root)
    done = []
    panel.scoring_finished.connect(done.append)
    panel.set_dataset(ds, compute=True)  # runs synchronously
    assert done == [True] and not panel.busy
    assert np.isfinite(panel.model.frame()["IAA"]).all()


def test_napari_s_bar_only_while_the_table_is_out_of_sight(review, synthetic_root, monkeypatch,
                                                           qtbot):
    """napari's activity bar repaints the window at its creation and at each update (40-80 ms
    on software GL): the run's bar is asked to appear only while the table is out of sight
    (``Activity(out_of_sight=table)``, tested in test_activity.py), at once-a-second updates,
    and is fed every progress message."""
    from napari_iaa.data import open_dataset
    from napari_iaa.widgets._common import Progress
    from napari_iaa.widgets._common import activity as activity_module

    bars = []

    class FakeActivity:
        def __init__(self, desc, out_of_sight=None, min_interval=0.2):
            self.desc, self.seen, self.closed = desc, [], False
            self.out_of_sight, self.min_interval = out_of_sight, min_interval
            bars.append(self)

        def update(self, msg):
            self.seen.append(msg)

        def close(self):
            self.closed = True

    monkeypatch.setattr(activity_module, "Activity", FakeActivity)
    viewer, widget = review
    panel = widget.dataset_panel
    ds = open_dataset(synthetic_root)
    n = len(ds.ids)
    monkeypatch.setenv("NAPARI_IAA_NO_THREADS", "1")
    panel.set_dataset(ds, compute=True)
    assert bars[-1].desc == f"scoring {n} cases" and bars[-1].closed
    assert bars[-1].out_of_sight is panel
    assert bars[-1].min_interval == activity_module.LONG_JOB_INTERVAL_S
    assert bars[-1].seen and bars[-1].seen[-1] == Progress(n, n)
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS")
    panel.compute()  # in a worker: its end reaches the panel on a later event-loop turn
    running = bars[-1]
    assert panel.busy and running.out_of_sight is panel
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
    assert running.closed and running.seen[-1] == Progress(n, n)


# ------------------------------------------------------------------ two kinds of disagreement


LIDC_SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "lidc"


@pytest.fixture
def lidc_panel(qtbot):
    """The data-set panel alone on the bundled LIDC sample (some readers leave a slice
    unmarked), fully scored."""
    from napari_iaa.data import open_dataset
    from napari_iaa.widgets.dataset import DatasetPanel

    panel = DatasetPanel()
    qtbot.addWidget(panel)
    ds = open_dataset(LIDC_SAMPLE)
    with qtbot.waitSignal(panel.scoring_finished, timeout=30000):
        panel.set_dataset(ds)
    return panel, ds


def test_table_has_both_kinds_of_disagreement_as_the_cli(lidc_panel):
    from napari_iaa.scoring import score_dataset

    panel, ds = lidc_panel
    df = panel.model.frame().set_index("case_id")
    cells = {"n marked": "n_marked", "detection": "detection_agreement",
             "IAA (marked)": "iaa_marked", "HD95": "hd95_mean", "ASSD": "assd_mean"}
    rows = score_dataset(ds).rows
    assert any(r["n_marked"] < r["n_masks"] for r in rows)  # the sample has unmarked slices
    for row in rows:
        got = df.loc[row["case_id"]]
        for col, key in cells.items():
            if isinstance(row[key], float) and np.isnan(row[key]):
                assert np.isnan(got[col]), (row["case_id"], col)
            else:
                assert got[col] == row[key], (row["case_id"], col)
    # a scored case without two marks shows "–" for its boundary IAA, not "not scored yet"
    r = panel.model.row_of(next(row["case_id"] for row in rows if row["n_marked"] < 2))
    assert panel.model.data(panel.model.index(r, panel.model.columns.index("IAA (marked)"))) == "–"


def test_flag_rules_on_either_kind_say_which_rule_flagged(lidc_panel, tmp_path, qtbot):
    from napari_iaa.widgets.dataset import FlagRules

    panel, ds = lidc_panel
    df = panel.model.frame().set_index("case_id")
    old = set(df.index[df["IAA"] < 0.7])
    assert set(panel.flagged_ids()) == old and old  # today's rule is the default
    assert set(df.loc[list(old), "flagged by"]) == {"IAA"}
    # detection only: marked by fewer than 3 (of 4)
    panel.set_rules(FlagRules(iaa_below=None, marked_below=3))
    det = set(df.index[df["n marked"] < 3])
    assert set(panel.flagged_ids()) == det and det
    assert not panel.flag_controls.iaa_check.isChecked()
    assert panel.flag_controls.marked_check.isChecked()
    # boundary only: IAA among those who marked below 0.8 (needs two marks)
    panel.set_rules(FlagRules(iaa_below=None, boundary_below=0.8))
    bnd = set(df.index[df["IAA (marked)"] < 0.8])
    assert set(panel.flagged_ids()) == bnd and bnd
    assert all(df.loc[c, "n marked"] >= 2 for c in bnd)
    # both: the column names each rule that fired
    panel.set_rules(FlagRules(iaa_below=None, marked_below=3, boundary_below=0.8))
    frame = panel.model.frame().set_index("case_id")
    assert set(panel.flagged_ids()) == det | bnd
    for cid in det | bnd:
        want = ", ".join(w for w, s in (("detection", det), ("boundary", bnd)) if cid in s)
        assert frame.loc[cid, "flagged by"] == want
    assert (frame.loc[list(set(frame.index) - det - bnd), "flagged by"] == "").all()
    assert "marked by fewer than 3 or boundary IAA < 0.80" in panel.count_label.text()
    # F3 walks the flagged cases; the export carries the new columns and the rule
    opened = []
    panel.case_requested.connect(opened.append)
    panel.view.clearSelection()
    panel.view.selectionModel().clearCurrentIndex()
    assert panel.next_flagged() == panel.flagged_ids()[0] == opened[0]
    assert panel.next_flagged() == panel.flagged_ids()[1]
    out = pd.read_csv(panel.export_flagged(tmp_path / "flagged.csv"), keep_default_na=False)
    assert list(out["case_id"]) == panel.flagged_ids()
    assert {"n_marked", "detection_agreement", "iaa_marked", "hd95_mean", "assd_mean",
            "flagged_by"} <= set(out.columns)  # the CLI's names (issue 13)
    assert set(out["flagged_by"]) <= {"detection", "boundary", "detection, boundary"}


def test_a_frame_round_trip_keeps_flags_and_scored_state(lidc_panel):
    """The triage tab pushes ``frame()`` back with a new column: flags are recomputed."""
    panel, _ds = lidc_panel
    from napari_iaa.widgets.dataset import FlagRules

    panel.set_rules(FlagRules(iaa_below=0.7, marked_below=4))
    before = panel.model.frame()
    frame = before.copy()
    frame["predicted_IAA"] = 0.5
    panel.model.set_frame(frame)
    after = panel.model.frame()
    assert list(after.columns).count("flagged") == 1 and "predicted_IAA" in after.columns
    pd.testing.assert_frame_equal(after.drop(columns="predicted_IAA"), before)
    col = panel.model.columns.index("IAA (marked)")
    shown = {panel.model.data(panel.model.index(r, col)) for r in range(panel.model.rowCount())}
    assert "…" not in shown  # nothing looks unscored


def test_flag_reasons_rules():
    from napari_iaa.widgets.dataset import FlagRules, flag_reasons

    nan = float("nan")
    rules = FlagRules(iaa_below=0.7, marked_below=3, boundary_below=0.8)
    assert flag_reasons(rules, 0.2, 1, nan) == ["iaa", "detection"]
    assert flag_reasons(rules, 0.75, 4, 0.75) == ["boundary"]
    assert flag_reasons(rules, 0.9, 4, 0.9) == []
    assert flag_reasons(rules, nan, None, "") == []  # not scored: no rule fires
    assert flag_reasons(FlagRules(None, None, None), 0.0, 0, 0.0) == []
    assert FlagRules().describe() == "IAA < 0.70"


def test_cohort_compares_any_numeric_agreement_column(scored):
    viewer, widget, ds = scored
    cohort = widget.cohort_panel
    cohort.refresh_columns()
    values = [cohort.value_combo.itemText(i) for i in range(cohort.value_combo.count())]
    assert values[0] == "IAA" and {"IAA (marked)", "detection", "HD95", "ASSD"} <= set(values)
    groups = [cohort.column_combo.itemText(i) for i in range(cohort.column_combo.count())]
    assert not {"n marked", "flagged by", "detection"} & set(groups)
    df = widget.dataset_panel.model.frame()
    if df["benign_malignant"].nunique() < 2:
        pytest.skip("the tiny sample has a single diagnosis group")
    result = cohort.run("benign_malignant", "HD95")
    assert result is not None and result.value_name == "HD95"
    for g in result.groups:
        want = df.loc[df["benign_malignant"] == g, "HD95"].astype(float)
        assert result.mean[g] == pytest.approx(want.mean())
    assert "HD95" in cohort.figure.axes[0].get_ylabel()


def test_closing_the_dock_stops_the_scoring(review, synthetic_root, qtbot, monkeypatch):
    """Scoring only fills the table: napari's close button on the review dock stops it
    (the rows done so far stay, Score works again if the dock is docked anew)."""
    import threading

    from napari_iaa.widgets._common.workers import wait_for_workers
    from napari_iaa.widgets.dataset import jobs

    real, release, calls = jobs.score_id, threading.Event(), []

    def held(*args):  # the first case scores at once, the others wait for the test
        if calls:
            release.wait(30)
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(jobs, "score_id", held)
    monkeypatch.setattr(jobs, "BATCH_SECONDS", 0.0)
    viewer, widget, panel, ds, finished = _panel_on(review, synthetic_root)
    worker = panel.compute()
    qtbot.waitUntil(lambda: panel.progress.value() >= 1, timeout=30000)
    viewer.window.remove_dock_widget(widget)  # napari's close button on the dock
    release.set()
    assert worker.abort_requested, "the scoring worker was told to stop"
    assert wait_for_workers(30)
    qtbot.wait(100)
    assert finished == [False] and not panel.busy and panel.rescore_btn.isEnabled()
    scored = np.isfinite(panel.model.frame()["IAA"]).sum()
    assert 1 <= scored < len(ds.ids), "stopped before the last case, the rows done stay"
