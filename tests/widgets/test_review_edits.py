"""The review's outcome in the dock: edits that come back, their history, the adjudicated
mask and the consensus export (issue 13). Originals stay byte-identical throughout."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from napari_iaa.agreement import pairwise_dice


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _tree(root: Path) -> dict[Path, str]:
    """Every file of the data set outside the hidden store folder, with its hash."""
    return {p: _sha(p) for p in root.rglob("*")
            if p.is_file() and ".napari-iaa" not in p.parts and "_edited-" not in p.name}


def _open(widget, root, qtbot, case_id=None):
    from napari_iaa.data import open_dataset

    ds = open_dataset(root)
    assert widget.set_dataset(ds, source=str(root), case_id=case_id)
    assert widget.live is not None
    # the dock's worker opens (and on first use creates) the store; the panels read it once
    # it is open (writes made earlier wait for it: see the volume test)
    qtbot.waitUntil(lambda: widget.verdicts.store is not None, timeout=10_000)
    return ds


def _recomputed(widget) -> np.ndarray:
    layers = widget.annotator_layers()
    stack = np.stack([np.asarray(layers[mid].data) != 0 for mid in widget.live.ids])
    return np.asarray(pairwise_dice(stack, empty=widget.panel.empty_rule), dtype=float)


def _paint_and_save(widget, mid, where=(5, 5)):
    layer = widget.annotator_layers()[mid]
    layer.brush_size = 11
    layer.paint(where, 1)
    written = widget.save_edits()
    assert len(written) == 1
    return written[0], np.asarray(layer.data) != 0


@pytest.fixture
def edits_dock(review, synthetic_copy, monkeypatch, qtbot):
    from napari_iaa.widgets.review.history import EditsPanel

    viewer, widget = review
    widget.verdict_box.reviewer_edit.setText("rev.a")  # as a reviewer types it
    originals = _tree(synthetic_copy)
    _open(widget, synthetic_copy, qtbot)
    panel = EditsPanel(widget)
    yield viewer, widget, panel, synthetic_copy
    assert _tree(synthetic_copy) == originals  # originals byte-identical throughout


def test_saved_edit_named_and_recorded_then_loaded_on_reopen(edits_dock, make_napari_viewer, qtbot):
    from napari_iaa.review import ReviewStore
    from napari_iaa.widgets import ReviewWidget
    from napari_iaa.widgets.review.edits import dock_store

    viewer, widget, panel, root = edits_dock
    case_id, mid = widget.case_id, widget.live.ids[0]
    annotator = widget._mask_info[mid]["annotator"]
    path, edited = _paint_and_save(widget, mid)
    assert path.name.startswith(Path(widget._mask_info[mid]["mask_path"]).stem
                                + f"_edited-{annotator}-by-rev.a-")
    current = dock_store(widget).current_edit(case_id, mid)
    assert current is not None and current.path == path and current.reviewer == "rev.a"
    assert widget.loaded_edits == {mid: path}

    # another case, then back: the edit is loaded, and the matrix reflects it
    widget.open_case(widget.dataset.ids[1])
    assert widget.loaded_edits == {}
    widget.open_case(case_id)
    np.testing.assert_array_equal(np.asarray(widget.annotator_layers()[mid].data) != 0, edited)
    np.testing.assert_allclose(widget.matrix(), _recomputed(widget), equal_nan=True)
    assert widget.unsaved_mask_ids() == []

    # a new dock (a restarted napari) on the same data set
    viewer2 = make_napari_viewer()
    dock2 = ReviewWidget(viewer2)
    dock2.unsaved_policy = "discard"
    _open(dock2, root, qtbot, case_id=case_id)
    np.testing.assert_array_equal(np.asarray(dock2.annotator_layers()[mid].data) != 0, edited)
    assert dock2.loaded_edits == {mid: path}
    np.testing.assert_allclose(dock2.matrix(), _recomputed(dock2), equal_nan=True)
    with ReviewStore.open(root, read_only=True) as s:  # and from a script
        assert s.current_edit(case_id, mid).path == path


def test_toggle_shows_originals(edits_dock):
    from napari_iaa.data import read_mask

    viewer, widget, panel, root = edits_dock
    mid = widget.live.ids[0]
    original = Path(widget._mask_info[mid]["mask_path"])
    _, edited = _paint_and_save(widget, mid)
    panel.originals_check.setChecked(True)
    shown = np.asarray(widget.annotator_layers()[mid].data) != 0
    np.testing.assert_array_equal(shown, read_mask(original, shape=shown.shape))
    assert not np.array_equal(shown, edited)
    assert widget.loaded_edits == {}
    np.testing.assert_allclose(widget.matrix(), _recomputed(widget), equal_nan=True)
    panel.originals_check.setChecked(False)
    np.testing.assert_array_equal(np.asarray(widget.annotator_layers()[mid].data) != 0, edited)


def test_missing_edit_file_falls_back_to_original(edits_dock, qtbot):
    from napari_iaa.data import read_mask

    viewer, widget, panel, root = edits_dock
    case_id, mid = widget.case_id, widget.live.ids[0]
    path, _ = _paint_and_save(widget, mid)
    path.unlink()
    widget.open_case(widget.dataset.ids[1])
    widget.open_case(case_id)
    shown = np.asarray(widget.annotator_layers()[mid].data) != 0
    original = Path(widget._mask_info[mid]["mask_path"])
    np.testing.assert_array_equal(shown, read_mask(original, shape=shown.shape))
    assert widget.loaded_edits == {}


def test_history_lists_versions_and_loads_older(edits_dock, qtbot):
    from napari_iaa.widgets.review.edits import dock_store

    viewer, widget, panel, root = edits_dock
    case_id, mid = widget.case_id, widget.live.ids[0]
    first, mask1 = _paint_and_save(widget, mid, (5, 5))
    second, mask2 = _paint_and_save(widget, mid, (80, 80))
    assert first != second and not np.array_equal(mask1, mask2)
    panel.mask_combo.setCurrentText(mid)
    panel.refresh()
    rows = panel.rows()
    assert [r[0] for r in rows][0] == "original" and len(rows) == 3
    assert [r[1] for r in rows[1:]] == ["rev.a", "rev.a"]
    assert [r[3] for r in rows] == ["", "", "yes"]
    v1 = panel._rows[1][0]
    panel.table.selectRow(1)
    assert panel.load_selected()
    layer = widget.annotator_layers()[mid]
    np.testing.assert_array_equal(np.asarray(layer.data) != 0, mask1)
    qtbot.waitUntil(lambda: not widget.live.resync_pending, timeout=5000)
    np.testing.assert_allclose(widget.matrix(), _recomputed(widget), equal_nan=True)
    assert dock_store(widget).current_edit(case_id, mid).id == v1
    assert [r[3] for r in panel.rows()] == ["", "yes", ""]
    assert widget.unsaved_mask_ids() == []
    # reopening loads the version made current
    widget.open_case(widget.dataset.ids[1])
    widget.open_case(case_id)
    np.testing.assert_array_equal(np.asarray(widget.annotator_layers()[mid].data) != 0, mask1)
    # back to the original
    panel.mask_combo.setCurrentText(mid)
    assert panel.load_version(None)
    assert dock_store(widget).current_edit(case_id, mid) is None
    assert panel.rows()[0][3] == "yes"


# ----------------------------------------------------------------------------- adjudication
@pytest.mark.parametrize("key", ["majority", "staple", "mask:0", "layer"])
def test_adjudicated_mask_saved_and_recorded(edits_dock, qtbot, key):
    from napari_iaa.data import read_mask
    from napari_iaa.review import ReviewStore, consensus_mask
    from napari_iaa.widgets.review.adjudication import AdjudicationPanel

    viewer, widget, panel, root = edits_dock
    case_id, mids = widget.case_id, widget.live.ids
    adj = AdjudicationPanel(widget)
    masks = {m: a.copy() for m, a in widget.live.masks().items()}
    if key == "mask:0":
        key, method, want = f"mask:{mids[0]}", f"annotator:{mids[0]}", masks[mids[0]]
        _paint_and_save(widget, mids[1])  # another mask's edit: not this one
    elif key == "layer":
        want = np.zeros_like(masks[mids[0]])
        want[10:30, 20:50] = True
        viewer.add_labels(want.astype(np.uint8), name="my final")
        key, method = "layer:my final", "layer:my final"
    else:
        method, want = key, consensus_mask(masks, key)
    adj.select(key)
    assert adj.save()
    qtbot.waitUntil(lambda: adj.last_saved is not None, timeout=10_000)
    path = adj.last_saved
    assert path.is_file() and path.suffix == ".png"
    assert path.name.startswith(f"{case_id}_adjudicated-by-rev.a-")
    assert ".napari-iaa" in path.parts  # hidden: readers never take it for an annotator
    np.testing.assert_array_equal(read_mask(path, shape=want.shape), want)
    with ReviewStore.open(root, read_only=True) as s:
        chosen = s.adjudicated(case_id)
    assert chosen.method == method and chosen.path == path and chosen.reviewer == "rev.a"
    assert method in adj.status_label.text()
    from napari_iaa.data import open_dataset

    assert open_dataset(root).entry(case_id).mask_ids == widget.dataset.entry(case_id).mask_ids


def test_adjudicated_edited_mask(edits_dock, qtbot):
    from napari_iaa.widgets.review.adjudication import AdjudicationPanel
    from napari_iaa.widgets.review.edits import dock_store

    viewer, widget, panel, root = edits_dock
    mid = widget.live.ids[0]
    _paint_and_save(widget, mid)
    adj = AdjudicationPanel(widget)
    assert "(edited)" in adj.source_combo.itemText(adj.source_combo.findData(f"mask:{mid}"))
    adj.select(f"mask:{mid}")
    assert adj.save()
    qtbot.waitUntil(lambda: adj.last_saved is not None, timeout=10_000)
    assert dock_store(widget).adjudicated(widget.case_id).method == "edited"


# ----------------------------------------------------------------------------- export
def test_export_from_dock_writes_files_and_csv(edits_dock, qtbot, tmp_path):
    import csv

    from napari_iaa.widgets.review.export_panel import ConsensusExportPanel

    viewer, widget, panel, root = edits_dock
    exp = ConsensusExportPanel(widget)
    exp.method_combo.setCurrentText("staple")
    exp.out_edit.setText(str(tmp_path / "out"))
    seen = []
    exp._relay.message.connect(lambda p: seen.append((p.done, p.total)))
    assert exp.start()
    qtbot.waitUntil(lambda: exp.result is not None and not exp.running(), timeout=60_000)
    n = len(widget.dataset.ids)
    assert exp.result.n_written == n and not exp.result.stopped
    rows = list(csv.DictReader((tmp_path / "out" / "consensus.csv").read_text().splitlines()))
    assert [r["case_id"] for r in rows] == widget.dataset.ids
    assert all((tmp_path / "out" / r["file"]).is_file() for r in rows)
    assert {r["method"] for r in rows} == {"staple"}
    assert seen and seen[-1] == (n, n)
    assert "written" in exp.status_label.text()


def test_export_from_dock_can_be_cancelled(edits_dock, qtbot, tmp_path, monkeypatch):
    import csv
    import threading

    import napari_iaa.review.consensus_export as ce
    from napari_iaa.widgets.review.export_panel import ConsensusExportPanel

    viewer, widget, panel, root = edits_dock
    exp = ConsensusExportPanel(widget)
    exp.out_edit.setText(str(tmp_path / "out"))
    gate, first = threading.Event(), threading.Event()
    real = ce._export_one

    def slow(entry, ctx, result):  # the first case waits until Cancel was pressed
        real(entry, ctx, result)
        first.set()
        gate.wait(10)

    monkeypatch.setattr(ce, "_export_one", slow)
    assert exp.start()
    qtbot.waitUntil(first.is_set, timeout=10_000)
    exp.cancel()
    gate.set()
    qtbot.waitUntil(lambda: exp.result is not None and not exp.running(), timeout=30_000)
    assert exp.result.stopped and exp.result.n_written == 1
    rows = list(csv.DictReader((tmp_path / "out" / "consensus.csv").read_text().splitlines()))
    assert len(rows) == 1
    assert "cancelled" in exp.status_label.text()


def test_export_default_folder_is_hidden_in_the_data_set(edits_dock, qtbot):
    from napari_iaa.widgets.review.export_panel import ConsensusExportPanel

    viewer, widget, panel, root = edits_dock
    exp = ConsensusExportPanel(widget)
    assert exp.out_dir() == root / ".napari-iaa" / "consensus-majority"
    exp.only_combo.setCurrentText("flagged")
    assert exp.start()
    qtbot.waitUntil(lambda: exp.result is not None and not exp.running(), timeout=60_000)
    assert (exp.out_dir() / "consensus.csv").is_file()


def test_reviewed_export_writes_the_adjudicated_mask(edits_dock, qtbot, tmp_path):
    from napari_iaa.data import read_mask
    from napari_iaa.widgets.review.adjudication import AdjudicationPanel
    from napari_iaa.widgets.review.export_panel import ConsensusExportPanel

    viewer, widget, panel, root = edits_dock
    case_id, mid = widget.case_id, widget.live.ids[0]
    adj = AdjudicationPanel(widget)
    adj.select(f"mask:{mid}")
    assert adj.save()
    qtbot.waitUntil(lambda: adj.last_saved is not None, timeout=10_000)
    exp = ConsensusExportPanel(widget)
    exp.method_combo.setCurrentText("reviewed")
    exp.out_edit.setText(str(tmp_path / "out"))
    assert exp.start()
    qtbot.waitUntil(lambda: exp.result is not None and not exp.running(), timeout=60_000)
    assert exp.result.n_written == 1
    assert len(exp.result.missing) == len(widget.dataset.ids) - 1
    row = next(r for r in exp.result.rows if r["file"])
    assert row["case_id"] == case_id and row["method"] == f"reviewed:annotator:{mid}"
    got = read_mask(tmp_path / "out" / row["file"])
    np.testing.assert_array_equal(got, widget.live.masks()[mid])


def test_opening_cases_creates_no_store(review, synthetic_copy, qtbot):
    viewer, widget = review
    _open(widget, synthetic_copy, qtbot)
    widget.open_case(widget.dataset.ids[1])
    if getattr(widget, "verdicts", None) is None:  # the verdicts' store opens one on purpose
        assert not (synthetic_copy / ".napari-iaa" / "review.sqlite").exists()
    assert widget.loaded_edits == {}


def test_volume_edit_comes_back_and_final_mask_is_nifti(review, tmp_path, qtbot, monkeypatch):
    from napari_iaa.data import open_dataset, read_volume, volume_header
    from napari_iaa.data.synthetic3d import generate_synthetic_volumes
    from napari_iaa.widgets.review.adjudication import AdjudicationPanel

    monkeypatch.setattr("napari_iaa.widgets.review.edits.dock_reviewer", lambda dock: "rv")
    root = generate_synthetic_volumes(tmp_path / "vol", n=2, shape=(8, 32, 32),
                                      spacing=(2.5, 0.7, 0.7))
    originals = _tree(Path(root))
    viewer, widget = review
    assert widget.set_dataset(open_dataset(root), source=str(root))
    case_id, mid = widget.case_id, widget.live.ids[0]
    layer = widget.annotator_layers()[mid]
    layer.n_edit_dimensions = 3
    layer.brush_size = 7
    layer.paint((2, 5, 5), 1)
    edited = np.asarray(layer.data) != 0
    (new,) = widget.save_edits()  # saved at once; recorded when the dock's store is open
    assert new.name.endswith(".nii.gz") and "-by-rv-" in new.name
    qtbot.waitUntil(lambda: widget.verdicts.store is not None
                    and widget.verdicts.store.current_edit(case_id, mid) is not None,
                    timeout=10_000)
    assert widget.verdicts.store.current_edit(case_id, mid).path == new
    widget.open_case(widget.dataset.ids[1])
    widget.open_case(case_id)
    np.testing.assert_array_equal(np.asarray(widget.annotator_layers()[mid].data) != 0, edited)
    np.testing.assert_allclose(widget.matrix(), _recomputed(widget), equal_nan=True)
    adj = AdjudicationPanel(widget)
    adj.select("majority")
    assert adj.save()
    qtbot.waitUntil(lambda: adj.last_saved is not None, timeout=20_000)
    out = adj.last_saved
    assert out.name.endswith(".nii.gz")
    image = widget.dataset.entry(case_id).image_path
    np.testing.assert_allclose(volume_header(out).spacing, volume_header(image).spacing)
    assert read_volume(out).array.shape == edited.shape
    assert _tree(Path(root)) == originals
