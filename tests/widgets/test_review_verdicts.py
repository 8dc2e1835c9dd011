"""Verdicts in the review dock: written to the store, kept across restarts, shortcuts,
another window's verdicts on refresh, a read-only store, the table's review columns."""

from __future__ import annotations

import pandas as pd
import pytest

from napari_iaa.review import VERDICT_COLUMNS, ReviewStore

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def private_settings(tmp_path, monkeypatch):
    """The reviewer's name is kept in a settings file of the test's own."""
    from qtpy.QtCore import QSettings

    from napari_iaa.widgets.review import verdict_box

    path = str(tmp_path / "settings.ini")
    monkeypatch.setattr(verdict_box, "reviewer_settings",
                        lambda: QSettings(path, QSettings.IniFormat))


def _dock(make_napari_viewer, qtbot, root):
    from napari_iaa.data import open_dataset
    from napari_iaa.widgets import ReviewWidget

    viewer = make_napari_viewer()
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Review")
    widget.unsaved_policy = "discard"
    ds = open_dataset(root)
    with qtbot.waitSignal(widget.verdicts.table_refreshed, timeout=10000):
        assert widget.set_dataset(ds, source=str(root))  # the store opens in a worker
    assert widget.verdicts.store is not None
    return viewer, widget, ds


def _settle(widget, qtbot):
    qtbot.waitUntil(lambda: not widget.verdicts.busy, timeout=10000)


def _row(widget, case_id):
    df = widget.dataset_panel.model.frame().set_index("case_id")
    return df.loc[case_id]


def test_verdict_goes_to_the_store_and_survives_a_restart(make_napari_viewer, qtbot,
                                                           synthetic_copy):
    viewer, widget, ds = _dock(make_napari_viewer, qtbot, synthetic_copy)
    box = widget.verdict_box
    assert box.buttons["accepted"].isEnabled()
    assert "in the data set's folder" in box.store_label.text()
    box.set_reviewer("alice")
    assert widget.reviewer == "alice"
    cid = widget.case_id
    box.comment_edit.setText("clean borders")
    box.buttons["accepted"].click()
    _settle(widget, qtbot)
    with ReviewStore.open(synthetic_copy, read_only=True) as other:
        v = other.verdict(cid)
    assert (v.status, v.reviewer, v.comment) == ("accepted", "alice", "clean borders")
    assert v.updated and v.updated.endswith("Z")
    assert "accepted" in box.status_label.text() and "alice" in box.status_label.text()
    assert _row(widget, cid)["status"] == "accepted"
    # the comment alone (Enter) keeps the status
    box.comment_edit.setText("clean borders, r3 a bit wide")
    box.comment_edit.returnPressed.emit()
    _settle(widget, qtbot)
    assert widget.verdicts.store.verdict(cid).comment == "clean borders, r3 a bit wide"
    assert widget.verdicts.store.verdict(cid).status == "accepted"
    viewer.close()

    viewer2, widget2, _ = _dock(make_napari_viewer, qtbot, synthetic_copy)
    assert widget2.reviewer == "alice"  # kept for the next session
    assert widget2.case_id == cid
    qtbot.waitUntil(lambda: "accepted" in widget2.verdict_box.status_label.text(), timeout=5000)
    assert widget2.verdict_box.comment_edit.text() == "clean borders, r3 a bit wide"
    assert _row(widget2, cid)["reviewer"] == "alice"
    # reset to unreviewed
    widget2.verdict_box.buttons["unreviewed"].click()
    _settle(widget2, qtbot)
    assert widget2.verdicts.store.verdict(cid).status == "unreviewed"
    assert len([h for h in widget2.verdicts.store.history(cid) if h.kind == "verdict"]) == 3


def test_another_windows_verdicts_show_after_refresh(make_napari_viewer, qtbot, synthetic_copy):
    viewer, widget, ds = _dock(make_napari_viewer, qtbot, synthetic_copy)
    target = ds.ids[2]
    with ReviewStore.open(synthetic_copy, reviewer="bob") as second:
        second.set_verdict(target, "reannotate", comment="r2 missed the spiculation")
    assert _row(widget, target)["status"] == "unreviewed"  # not before a refresh
    panel = widget.dataset_panel
    with qtbot.waitSignal(widget.verdicts.table_refreshed, timeout=10000):
        panel.review_controls.refresh_btn.click()
    row = _row(widget, target)
    assert (row["status"], row["reviewer"], row["comment"]) == (
        "reannotate", "bob", "r2 missed the spiculation")
    panel.set_status_filter("reannotate")
    assert panel.visible_ids() == [target]
    panel.set_status_filter("unreviewed")
    assert target not in panel.visible_ids() and len(panel.visible_ids()) == len(ds) - 1
    panel.set_status_filter(None)
    assert len(panel.visible_ids()) == len(ds)


def test_shortcuts_are_napari_actions_and_act(make_napari_viewer, qtbot, synthetic_copy):
    from napari.components import ViewerModel
    from napari.utils.action_manager import action_manager

    viewer, widget, ds = _dock(make_napari_viewer, qtbot, synthetic_copy)
    viewer_actions = action_manager._get_provider_actions(ViewerModel)  # the preferences' list
    expected = {"napari-iaa:accept_case": "A", "napari-iaa:reannotate_case": "R",
                "napari-iaa:exclude_case": "Shift+X", "napari-iaa:next_case": "N",
                "napari-iaa:previous_case": "Shift+N"}
    for name, key in expected.items():
        assert name in viewer_actions
        assert key in [str(k) for k in action_manager._shortcuts[name]]
    # pressed on the canvas with an annotator's Labels layer selected: ours win
    assert type(viewer.layers.selection.active).__name__ == "Labels"
    press = viewer.window._qt_viewer._key_map_handler.press_key
    first = widget.case_id
    assert press("A")
    _settle(widget, qtbot)
    assert widget.verdicts.store.verdict(first).status == "accepted"
    assert press("N")
    assert widget.case_id == ds.ids[1]
    assert press("R")
    _settle(widget, qtbot)
    assert widget.verdicts.store.verdict(ds.ids[1]).status == "reannotate"
    assert press("Shift+N")
    assert widget.case_id == first
    assert press("Shift+X")
    _settle(widget, qtbot)
    assert widget.verdicts.store.verdict(first).status == "excluded"
    assert _row(widget, first)["status"] == "excluded"


def test_a_corrupt_store_goes_read_only_without_a_crash(make_napari_viewer, qtbot,
                                                         synthetic_copy):
    store_dir = synthetic_copy / ".napari-iaa"
    store_dir.mkdir()
    (store_dir / "review.sqlite").write_bytes(b"this is not a database" * 100)
    viewer, widget, ds = _dock(make_napari_viewer, qtbot, synthetic_copy)
    box = widget.verdict_box
    assert widget.verdicts.store.read_only and widget.verdicts.store.problem
    assert "read-only" in box.store_label.text()
    assert not any(b.isEnabled() for b in box.buttons.values())
    assert not box.comment_edit.isEnabled()
    assert "read-only" in box.buttons["accepted"].toolTip()
    # the shortcut cannot write either, and nothing breaks
    assert widget.verdicts.set_verdict("accepted") is False
    viewer.window._qt_viewer._key_map_handler.press_key("A")
    assert not widget.verdicts.busy
    assert (store_dir / "review.sqlite").read_bytes() == b"this is not a database" * 100
    assert widget.step_case(+1) and widget.case_id == ds.ids[1]  # the review goes on


def test_progress_line_counts_and_export_columns(make_napari_viewer, qtbot, synthetic_copy,
                                                  tmp_path):
    viewer, widget, ds = _dock(make_napari_viewer, qtbot, synthetic_copy)
    panel = widget.dataset_panel
    with ReviewStore.open(synthetic_copy, reviewer="carol") as store:
        store.set_verdict(ds.ids[0], "accepted")
        store.set_verdict(ds.ids[1], "accepted", comment="fine")
        store.set_verdict(ds.ids[3], "excluded", comment="blurred")
        expected = store.verdicts_frame(ds.ids)
    with qtbot.waitSignal(widget.verdicts.table_refreshed, timeout=10000):
        panel.review_controls.refresh_btn.click()
    panel.set_threshold(1.0)  # every scored case is flagged
    n_flagged = panel.model.n_flagged
    text = panel.review_controls.progress_label.text()
    assert text == f"reviewed 3 of {len(ds)}, flagged {n_flagged}, accepted 2"
    panel.set_status_filter("reviewed")
    assert panel.visible_ids() == [ds.ids[0], ds.ids[1], ds.ids[3]]
    panel.set_status_filter(None)
    table = pd.read_csv(panel.export_table(tmp_path / "table.csv"), keep_default_na=False)
    assert set(VERDICT_COLUMNS) <= set(table.columns)
    got = table.set_index("case_id").loc[list(ds.ids), VERDICT_COLUMNS[1:]]
    want = expected.set_index("case_id").loc[list(ds.ids)].fillna("")
    pd.testing.assert_frame_equal(got.astype(str), want.astype(str), check_names=False)
