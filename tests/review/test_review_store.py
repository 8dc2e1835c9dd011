"""ReviewStore: verdicts, notes, edit versions, adjudication and the append-only history."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from review_helpers import raw_rows

from napari_iaa.errors import DatasetError, IAAError, ReviewStoreError
from napari_iaa.review import (
    SCHEMA_VERSION,
    STATUSES,
    ReviewStore,
    Verdict,
    default_reviewer,
    store_location,
)


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return d


def test_verdict_round_trip_across_reopen(root):
    with ReviewStore.open(root, reviewer="ana") as store:
        v = store.set_verdict("ISIC_1", "accepted", comment="clean border")
        store.set_verdict("LIDC-1/nodule-0/slice-3", "reannotate", reviewer="bo")
        assert v == store.verdict("ISIC_1")
        path = store.path
    assert path == root / ".napari-iaa" / "review.sqlite"
    with ReviewStore.open(root) as again:
        got = again.verdict("ISIC_1")
        assert (got.status, got.reviewer, got.comment) == ("accepted", "ana", "clean border")
        assert again.verdict("LIDC-1/nodule-0/slice-3").reviewer == "bo"
        assert again.verdict("never") == Verdict("never")  # unreviewed, nobody, no time
        assert [v.case_id for v in again.verdicts()] == ["ISIC_1", "LIDC-1/nodule-0/slice-3"]
        listed = again.verdicts(["x", "ISIC_1"])
        assert [(v.case_id, v.status) for v in listed] == [("x", "unreviewed"), ("ISIC_1", "accepted")]
        assert again.counts(["ISIC_1", "x", "y"]) == {
            "unreviewed": 2, "accepted": 1, "reannotate": 0, "excluded": 0}
        assert list(again.counts()) == list(STATUSES)


def test_updated_is_iso8601_utc_and_comment_kept_or_cleared(root):
    with ReviewStore.open(root, reviewer="ana") as store:
        first = store.set_verdict("c1", "accepted", comment="ok")
        when = datetime.fromisoformat(first.updated)
        assert when.utcoffset().total_seconds() == 0 and first.updated.endswith("Z")
        assert store.set_verdict("c1", "excluded").comment == "ok"  # None keeps it
        assert store.set_verdict("c1", "excluded", comment="").comment is None
        frame = store.verdicts_frame(["c1", "c2"])
        assert list(frame.columns) == ["case_id", "status", "reviewer", "comment", "updated"]
        assert frame["status"].tolist() == ["excluded", "unreviewed"]


def test_unknown_status_and_method_are_clear_errors(root):
    with ReviewStore.open(root) as store:
        with pytest.raises(ReviewStoreError, match="unknown review status 'done'.*accepted"):
            store.set_verdict("c1", "done")
        assert issubclass(ReviewStoreError, IAAError)
        with pytest.raises(ReviewStoreError, match="adjudication method"):
            store.set_adjudicated("c1", "vote", root / "x.png")
        with pytest.raises(DatasetError):
            store.set_verdict("../escape", "accepted")
        assert store.history() == []  # nothing half-written


def test_history_is_append_only_and_written_with_every_change(root):
    with ReviewStore.open(root, reviewer="ana") as store:
        store.set_verdict("c1", "accepted")
        store.set_verdict("c1", "reannotate", reviewer="bo", comment="r2 missed a part")
        store.set_mask_note("c1", "A2", "missed the spiculation")
        store.add_edit_version("c1", "A2", root / "edits" / "A2_edited.png")
        store.set_adjudicated("c1", "majority", root / "adj" / "c1.png")
        store.set_verdict("c2", "excluded")
        hist = store.history()
        assert [h.kind for h in hist] == [
            "verdict", "verdict", "mask_note", "edit", "adjudicated", "verdict"]
        assert [h.id for h in hist] == sorted(h.id for h in hist)
        assert hist[0].old is None and hist[0].new["status"] == "accepted"
        assert hist[1].old["status"] == "accepted" and hist[1].new["status"] == "reannotate"
        assert hist[1].reviewer == "bo" and hist[0].reviewer == "ana"
        assert [h.kind for h in store.history("c2")] == ["verdict"]
        path = store.path
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE history SET reviewer = 'eve'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM history")
    conn.close()
    assert len(raw_rows(path, "SELECT * FROM history")) == 6


def test_mask_notes(root):
    with ReviewStore.open(root, reviewer="ana") as store:
        note = store.set_mask_note("c1", "r2", "r2 missed the spiculation")
        assert store.mask_notes("c1") == {"r2": note}
        assert store.verdict("c1").status == "unreviewed"  # a note is not a verdict
        assert store.set_mask_note("c1", "r2", "") is None
        assert store.mask_notes("c1") == {}
        assert [h.kind for h in store.history("c1")] == ["mask_note", "mask_note"]


def test_edit_versions_current_and_relative_paths(root, tmp_path):
    with ReviewStore.open(root, reviewer="ana") as store:
        first = store.add_edit_version("c1", "A1", root / "masks" / "A1_edited-ana-1.png")
        second = store.add_edit_version("c1", "A1", root / "masks" / "A1_edited-ana-2.png")
        other = store.add_edit_version("c1", "A2", tmp_path / "outside" / "A2.png", reviewer="bo")
        assert first.file == "masks/A1_edited-ana-1.png"  # relative to the data-set root
        assert first.path == root / "masks" / "A1_edited-ana-1.png"
        assert other.file == (tmp_path / "outside" / "A2.png").resolve().as_posix()
        assert store.current_edit("c1", "A1") == second
        assert [e.is_current for e in store.edit_versions("c1", "A1")] == [False, True]
        assert set(store.current_edits("c1")) == {"A1", "A2"}
        back = store.set_current_edit("c1", "A1", first.id)
        assert back.id == first.id and back.is_current
        assert store.current_edit("c1", "A1").id == first.id
        assert store.set_current_edit("c1", "A1", None) is None  # the original again
        assert store.current_edit("c1", "A1") is None
        with pytest.raises(ReviewStoreError, match="no edit version"):
            store.set_current_edit("c1", "A1", other.id)  # a version of another mask
        assert store.current_edit("c1", "A2") == other
    with ReviewStore.open(root) as again:
        assert [e.id for e in again.edit_versions("c1")] == [first.id, second.id, other.id]
        assert again.edit_versions("c1", "A1")[0].reviewer == "ana"


def test_data_set_opened_by_a_relative_path_records_files_that_resolve_anywhere(
        root, tmp_path, monkeypatch):
    """The dock opened as ``data`` saves edits at ``data/masks/...``: recorded relative to
    the data set, they resolve from any working folder (not ``data/data/...``)."""
    monkeypatch.chdir(root.parent)
    rel_root = Path(root.name)
    with ReviewStore.open(rel_root, reviewer="ana") as store:
        edit = store.add_edit_version("c1", "A1", rel_root / "masks" / "A1_edited-ana-1.png")
        final = store.set_adjudicated("c1", "staple", rel_root / ".napari-iaa" / "adj" / "c1.png")
        assert edit.file == "masks/A1_edited-ana-1.png"
        assert final.file == ".napari-iaa/adj/c1.png"
    monkeypatch.chdir(tmp_path.parent)
    with ReviewStore.open(root, read_only=True) as again:
        assert again.current_edit("c1", "A1").path == root / "masks" / "A1_edited-ana-1.png"
        assert again.adjudicated("c1").path == root / ".napari-iaa" / "adj" / "c1.png"


def test_adjudicated_replaced_and_remembered(root):
    with ReviewStore.open(root, reviewer="ana") as store:
        assert store.adjudicated("c1") is None
        store.set_adjudicated("c1", "staple", root / ".napari-iaa" / "adj" / "c1.png")
        a = store.set_adjudicated("c1", "annotator:A03", root / "masks" / "c1_A03.png")
        assert (a.method, a.file) == ("annotator:A03", "masks/c1_A03.png")
        for method in ("majority", "edited", "layer:consensus (1)"):
            store.set_adjudicated("c2", method, root / "x.png")
    with ReviewStore.open(root) as again:
        got = again.adjudicated("c1")
        assert got.method == "annotator:A03" and got.path == root / "masks" / "c1_A03.png"
        old = [h.old for h in again.history("c1") if h.kind == "adjudicated"]
        assert old[0] is None and old[1]["method"] == "staple"


def test_read_only_store_reads_but_refuses_writes(root):
    with ReviewStore.open(root) as store:
        store.set_verdict("c1", "accepted")
    with ReviewStore.open(root, read_only=True) as ro:
        assert ro.read_only and ro.verdict("c1").status == "accepted"
        with pytest.raises(ReviewStoreError, match="read-only"):
            ro.set_verdict("c1", "excluded")
    with ReviewStore.open(root) as store:
        assert store.verdict("c1").status == "accepted"


def test_read_only_without_a_store_creates_nothing(tmp_path):
    root = tmp_path / "fresh"
    root.mkdir()
    with ReviewStore.open(root, read_only=True) as ro:
        assert ro.verdicts() == [] and ro.counts(["a"])["unreviewed"] == 1
    assert not store_location(root)[0].exists()


def test_schema_version_and_pragmas(root):
    with ReviewStore.open(root) as store:
        store.set_verdict("c1", "accepted")
        path = store.path
    assert raw_rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert raw_rows(path, "PRAGMA journal_mode") == [("wal",)]


def test_default_reviewer_is_the_os_user(root, monkeypatch):
    assert default_reviewer()
    with ReviewStore.open(root) as store:
        assert store.set_verdict("c1", "accepted").reviewer == default_reviewer()
    import getpass

    def no_user():
        raise OSError("no login name")

    monkeypatch.setattr(getpass, "getuser", no_user)
    monkeypatch.setenv("USER", "from-env")
    assert default_reviewer() == "from-env"


def test_review_room_imports_no_gui_or_torch():
    code = (
        "import sys, napari_iaa.review; "
        "print(','.join(m for m in ('torch', 'qtpy', 'PyQt5', 'napari', 'timm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
