"""The review dock and its store (issue 13): one opening of the store, used by every
panel; a store that cannot be used offers a new one; notes on masks; the table's CSV with
the command line's column names."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from napari_iaa.review import ReviewStore

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def private_settings(tmp_path, monkeypatch):
    """The reviewer's name is kept in a settings file of the test's own."""
    from qtpy.QtCore import QSettings

    from napari_iaa.widgets.review import verdict_box

    path = str(tmp_path / "settings.ini")
    monkeypatch.setattr(verdict_box, "reviewer_settings",
                        lambda: QSettings(path, QSettings.IniFormat))


@pytest.fixture
def counted_opens(monkeypatch):
    """Every ReviewStore made (any connection to a store), and a dock opening held until
    the test sets ``counted_opens.release``: the panels act while the store is opening."""
    import threading

    from napari_iaa.widgets.review import verdicts

    made = _Made()
    real_init = ReviewStore.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(self)

    real_open = verdicts._open_store

    def slow_open(root, reviewer):
        made.release.wait(30)
        return real_open(root, reviewer)

    monkeypatch.setattr(ReviewStore, "__init__", init)
    monkeypatch.setattr(verdicts, "_open_store", slow_open)
    made.release = threading.Event()
    yield made
    made.release.set()  # a test that failed early leaves no opening waiting


class _Made(list):
    """The stores made, and the event that lets the dock's store open."""

    release: object


def test_a_fresh_data_set_gets_one_store_and_never_goes_read_only(review, synthetic_copy, qtbot,
                                                                counted_opens):
    """Edits saved, a version loaded and a final mask chosen while the dock's store is
    still being created: all wait for it; nothing opens a second connection."""
    from napari_iaa.data import open_dataset

    viewer, widget = review
    assert not (synthetic_copy / ".napari-iaa").exists()
    assert widget.set_dataset(open_dataset(synthetic_copy), source=str(synthetic_copy))
    assert widget.verdicts.opening and widget.verdicts.store is None
    case_id, mid = widget.case_id, widget.live.ids[0]
    layer = widget.annotator_layers()[mid]
    layer.brush_size = 9
    layer.paint((10, 10), 1)
    (saved,) = widget.save_edits()
    adj = widget.adjudication_panel
    adj.select("majority")
    assert adj.save()  # waits for the store
    assert widget.notes_panel.status_label.text() == "the review store is opening…"
    counted_opens.release.set()
    qtbot.waitUntil(lambda: adj.last_saved is not None, timeout=15_000)
    store = widget.verdicts.store
    assert len(counted_opens) == 1 and counted_opens[0] is store  # the one opening
    assert not store.read_only and store.problem is None
    assert "read-only" not in widget.verdict_box.store_label.text()
    assert store.current_edit(case_id, mid).path == saved
    assert store.adjudicated(case_id).method == "majority"
    assert widget.verdict_box.buttons["accepted"].isEnabled()


def test_fresh_data_sets_opened_one_after_another_stay_writable(review, synthetic_root, tmp_path,
                                                                qtbot):
    """The dock on several fresh copies in a row (each store created while the panels
    refresh): never read-only."""
    import shutil

    from napari_iaa.data import open_dataset

    viewer, widget = review
    for k in range(4):
        root = tmp_path / f"copy{k}"
        shutil.copytree(synthetic_root, root, ignore=shutil.ignore_patterns(".napari-iaa"))
        assert widget.set_dataset(open_dataset(root), source=str(root))
        widget.step_case(+1)  # the panels read while the store is being created
        qtbot.waitUntil(lambda: widget.verdicts.store is not None, timeout=10_000)
        assert not widget.verdicts.store.read_only, widget.verdicts.store.problem
        assert widget.verdicts.store.path == root / ".napari-iaa" / "review.sqlite"


def test_a_case_shown_before_the_store_opened_comes_back_with_its_edits(
        review, synthetic_copy, qtbot, counted_opens):
    from napari_iaa.data import open_dataset, read_mask, save_edited_mask

    ds = open_dataset(synthetic_copy)
    case = ds[ds.ids[0]]
    mid = sorted(case.masks)[0]
    edited = ~np.asarray(case.masks[mid], dtype=bool)
    path = save_edited_mask(edited, case.mask_paths[mid], mid, reviewer="earlier")
    with ReviewStore.open(synthetic_copy) as store:
        store.add_edit_version(ds.ids[0], mid, path)
    viewer, widget = review
    assert widget.set_dataset(ds, source=str(synthetic_copy))
    assert widget.loaded_edits == {}  # shown before the store was open: the originals
    counted_opens.release.set()
    qtbot.waitUntil(lambda: widget.loaded_edits.get(mid) == path, timeout=15_000)
    shown = np.asarray(widget.annotator_layers()[mid].data) != 0
    np.testing.assert_array_equal(shown, read_mask(path) != 0)
    assert widget.edits_panel.status_label.text() == f"{mid} shows {path.name}"


def test_a_corrupt_store_is_read_only_and_a_new_one_is_offered(review, synthetic_copy, qtbot):
    from napari_iaa.data import open_dataset

    store_dir = synthetic_copy / ".napari-iaa"
    store_dir.mkdir()
    junk = b"this is not a database" * 100
    (store_dir / "review.sqlite").write_bytes(junk)
    viewer, widget = review
    ds = open_dataset(synthetic_copy)
    with qtbot.waitSignal(widget.verdicts.store_opened, timeout=15_000):
        assert widget.set_dataset(ds, source=str(synthetic_copy))
    box, verdicts = widget.verdict_box, widget.verdicts
    assert verdicts.store.read_only and verdicts.store.problem_kind == "corrupt"
    text = box.store_label.text()
    assert str(store_dir / "review.sqlite") in text and "corrupt" in text and "read-only" in text
    assert box.new_store_btn.isVisibleTo(box)
    assert "review.sqlite.broken-" in box.new_store_btn.toolTip()
    assert not box.buttons["accepted"].isEnabled()
    assert widget.step_case(+1)  # the review goes on, read-only
    verdicts.new_store_policy = "no"  # declined: nothing changes
    box.new_store_btn.click()
    assert verdicts.store.read_only and (store_dir / "review.sqlite").read_bytes() == junk
    verdicts.new_store_policy = "yes"
    with qtbot.waitSignal(verdicts.store_opened, timeout=15_000):
        box.new_store_btn.click()
    (kept,) = store_dir.glob("review.sqlite.broken-*")
    assert kept.read_bytes() == junk  # the old store kept as it was
    assert not verdicts.store.read_only and verdicts.store.problem is None
    assert not box.new_store_btn.isVisibleTo(box)
    box.buttons["accepted"].click()
    qtbot.waitUntil(lambda: not verdicts.busy, timeout=10_000)
    with ReviewStore.open(synthetic_copy, read_only=True) as other:
        assert other.verdict(widget.case_id).status == "accepted"


def test_notes_on_masks_are_kept_and_shown_again(review, synthetic_copy, qtbot, make_napari_viewer):
    from napari_iaa.data import open_dataset
    from napari_iaa.widgets import ReviewWidget

    viewer, widget = review
    ds = open_dataset(synthetic_copy)
    with qtbot.waitSignal(widget.verdicts.store_opened, timeout=15_000):
        widget.set_dataset(ds, source=str(synthetic_copy))
    panel = widget.notes_panel
    ids = list(widget.live.ids)
    assert list(panel.notes()) == ids and set(panel.notes().values()) == {""}
    widget.verdict_box.set_reviewer("rita")
    row = ids.index(ids[1])
    with qtbot.waitSignal(panel.note_saved, timeout=10_000):
        panel.table.item(row, 2).setText("missed the spiculation")  # as typed in the cell
    qtbot.waitUntil(lambda: not panel.busy, timeout=10_000)
    note = widget.verdicts.store.mask_notes(widget.case_id)[ids[1]]
    assert (note.note, note.reviewer) == ("missed the spiculation", "rita")
    assert panel.table.item(row, 3).text() == "rita"
    case_id = widget.case_id
    widget.step_case(+1)
    assert set(panel.notes().values()) == {""}  # the next case has none
    viewer.close()
    # a new viewer on the same folder: the note is there
    viewer2 = make_napari_viewer()
    widget2 = ReviewWidget(viewer2)
    viewer2.window.add_dock_widget(widget2, name="Review")
    with qtbot.waitSignal(widget2.verdicts.store_opened, timeout=15_000):
        widget2.set_dataset(open_dataset(synthetic_copy), source=str(synthetic_copy),
                            case_id=case_id)
    assert widget2.notes_panel.notes()[ids[1]] == "missed the spiculation"
    # clearing the cell removes it
    with qtbot.waitSignal(widget2.notes_panel.note_saved, timeout=10_000):
        widget2.notes_panel.table.item(row, 2).setText("")
    qtbot.waitUntil(lambda: not widget2.notes_panel.busy, timeout=10_000)
    assert widget2.verdicts.store.mask_notes(case_id) == {}


def test_table_csv_has_the_command_lines_column_names_and_values(review, synthetic_copy, qtbot,
                                                                 tmp_path, capsys):
    from napari_iaa.cli import main
    from napari_iaa.cli.review import EXPORT_COLUMNS
    from napari_iaa.data import open_dataset
    from napari_iaa.widgets.dataset.csv_export import csv_columns

    assert csv_columns(True) == [c for c in EXPORT_COLUMNS if c != "mask_notes"] + [
        "flagged", "flagged_by"]
    viewer, widget = review
    panel = widget.dataset_panel
    ds = open_dataset(synthetic_copy)
    with qtbot.waitSignal(panel.scoring_finished, timeout=60_000):
        widget.set_dataset(ds, source=str(synthetic_copy))
    qtbot.waitUntil(lambda: widget.verdicts.store is not None, timeout=10_000)
    widget.verdicts.set_verdict("excluded", comment="blurred", case_id=ds.ids[2])
    qtbot.waitUntil(lambda: not widget.verdicts.busy, timeout=10_000)
    panel.set_threshold(0.9)
    table = pd.read_csv(panel.export_table(tmp_path / "t.csv"), dtype=str,
                        keep_default_na=False)
    out = tmp_path / "review.csv"
    assert main(["review", str(synthetic_copy), "export", str(out), "-q"]) == 0
    cli = pd.read_csv(out, dtype=str, keep_default_na=False)
    shared = [c for c in cli.columns if c != "mask_notes"]
    assert list(table.columns[:len(shared)]) == shared  # same names, same order
    assert list(table.columns[len(shared):len(shared) + 2]) == ["flagged", "flagged_by"]
    assert not {"IAA", "min pair", "flagged by", "HD95"} & set(table.columns)
    table, cli = table.set_index("case_id"), cli.set_index("case_id")
    for col in shared[1:]:  # digit for digit what the command line writes
        assert table.loc[list(ds.ids), col].tolist() == cli.loc[list(ds.ids), col].tolist(), col
    assert table.loc[ds.ids[2], "status"] == "excluded"
    flagged = pd.read_csv(io.StringIO(
        panel.export_flagged(tmp_path / "f.csv").read_text()), dtype=str, keep_default_na=False)
    assert list(flagged.columns) == list(table.reset_index().columns)
    assert flagged["case_id"].tolist() == panel.flagged_ids()
    assert (flagged["iaa"].astype(float) < 0.9).all()
