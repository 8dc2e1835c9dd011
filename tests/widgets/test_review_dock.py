"""The review dock: samples, live agreement under painting, undo, saving, case switching."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from napari_iaa.agreement import pairwise_dice

pytestmark = pytest.mark.gui


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _recomputed(widget) -> np.ndarray:
    """Dice matrix recomputed from the Labels layers' data (not from the tracker)."""
    layers = widget.annotator_layers()
    stack = np.stack([np.asarray(layers[mid].data) != 0 for mid in widget.live.ids])
    return np.asarray(pairwise_dice(stack, empty=widget.panel.empty_rule), dtype=float)


def _open(widget, root, case_id=None):
    from napari_iaa.data import open_dataset

    ds = open_dataset(root)
    assert widget.set_dataset(ds, source=str(root), case_id=case_id)
    assert widget.live is not None
    return ds


def _lesion_center(layer) -> tuple[int, int]:
    ys, xs = np.nonzero(np.asarray(layer.data))
    return int(ys.mean()), int(xs.mean())


# ----------------------------------------------------------------------------- samples
@pytest.mark.parametrize("key", ["synthetic", "lidc"])
def test_sample_opens_case_layers_and_dock(make_napari_viewer, qtbot, key):
    from napari_iaa.data import sample_data_path
    from napari_iaa.errors import DatasetError
    from napari_iaa.widgets.review.layers import tag_of

    try:
        sample_data_path(key)
    except DatasetError:
        pytest.skip(f"sample data {key!r} not built")
    viewer = make_napari_viewer()
    viewer.open_sample("napari-iaa", key)
    docks = viewer.window.dock_widgets
    assert "Review (napari-iaa)" in docks
    widget = docks["Review (napari-iaa)"]
    qtbot.waitUntil(lambda: widget.live is not None, timeout=10000)
    roles = [tag_of(lay)["role"] for lay in viewer.layers if tag_of(lay)]
    assert roles.count("image") == 1 and roles.count("mhr") == 1
    assert roles.count("annotator") == len(widget.live.ids) >= 2
    assert not widget.our_layers("majority")[0].visible
    assert not widget.our_layers("staple")[0].visible
    # one colour per annotator
    colors = {
        tuple(np.round(lay.colormap.map(1), 3)) for lay in widget.our_layers("annotator")
    }
    assert len(colors) == len(widget.live.ids)
    np.testing.assert_allclose(widget.matrix(), _recomputed(widget))
    np.testing.assert_allclose(widget.panel.matrix_values(), widget.matrix())
    assert widget.dataset is not None and widget.case_id in widget.dataset.ids


def test_reader_opens_dataset_in_dock(make_napari_viewer, qtbot, synthetic_root):
    from napari_iaa._reader import get_reader

    assert get_reader(str(synthetic_root)) is not None
    viewer = make_napari_viewer()
    viewer.open(str(synthetic_root), plugin="napari-iaa")
    widget = viewer.window.dock_widgets["Review (napari-iaa)"]
    qtbot.waitUntil(lambda: widget.live is not None, timeout=10000)
    assert widget.case_id == widget.dataset.ids[0]
    assert widget.case_combo.count() == len(widget.dataset.ids)


# ----------------------------------------------------------------------------- live
def test_paint_fill_polygon_update_matrix_live(review, synthetic_root):
    viewer, widget = review
    _open(widget, synthetic_root)
    m0 = widget.matrix()
    mid = widget.live.ids[0]
    layer = widget.annotator_layers()[mid]
    cy, cx = _lesion_center(layer)
    layer.brush_size = 9
    layer.paint((2, 2), 1)  # a blob far from the lesion
    m1 = widget.matrix()
    assert not np.allclose(m0, m1)
    np.testing.assert_allclose(m1, _recomputed(widget))
    np.testing.assert_allclose(widget.panel.matrix_values(), m1)
    # erase inside the lesion
    layer.paint((cy, cx), 0)
    np.testing.assert_allclose(widget.matrix(), _recomputed(widget))
    # polygon in another annotator's layer
    other = widget.annotator_layers()[widget.live.ids[1]]
    other.paint_polygon(np.array([[60, 60], [60, 90], [90, 90], [90, 60]]), 1)
    np.testing.assert_allclose(widget.matrix(), _recomputed(widget))
    # flood fill of the background with the label (everything becomes foreground)
    other.fill((0, 95), 1)
    np.testing.assert_allclose(widget.matrix(), _recomputed(widget))
    assert widget.live.n_paint_events >= 4
    assert widget.live.n_resyncs == 0  # painting never fell back to a full recompute
    # the MHR layer follows the edits
    mhr = widget.our_layers("mhr")[0]
    np.testing.assert_allclose(mhr.data, widget.live.mhr())
    stack = np.stack([np.asarray(lay.data) != 0 for lay in widget.annotator_layers().values()])
    np.testing.assert_allclose(mhr.data, stack.mean(axis=0), atol=1e-6)
    # the IAA label shows the live value
    assert f"{widget.iaa():.3f}" in widget.panel.iaa_label.text()


def test_undo_redo_and_data_assignment_resync(review, synthetic_root, qtbot):
    viewer, widget = review
    _open(widget, synthetic_root)
    layer = widget.annotator_layers()[widget.live.ids[0]]
    m0 = widget.matrix()
    layer.brush_size = 15
    layer.paint(_lesion_center(layer), 0)
    m1 = widget.matrix()
    assert not np.allclose(m0, m1)
    layer.undo()
    qtbot.waitUntil(lambda: np.allclose(widget.matrix(), m0), timeout=5000)
    np.testing.assert_allclose(widget.panel.matrix_values(), m0)
    layer.redo()
    qtbot.waitUntil(lambda: np.allclose(widget.matrix(), m1), timeout=5000)
    # replacing the data wholesale
    layer.data = np.zeros_like(np.asarray(layer.data))
    qtbot.waitUntil(lambda: np.allclose(widget.matrix(), _recomputed(widget)), timeout=5000)
    assert np.all(widget.matrix()[0, 1:] == 0)


def test_current_case_reflects_edits(review, synthetic_root):
    viewer, widget = review
    ds = _open(widget, synthetic_root)
    mid = widget.live.ids[0]
    widget.annotator_layers()[mid].paint((4, 4), 1)
    case = widget.current_case()
    assert case.case_id == ds.ids[0]
    assert case.mask_ids == widget.live.ids
    assert case.masks[mid][4, 4]
    np.testing.assert_array_equal(case.image, ds.load(ds.ids[0]).image)
    assert case.meta == ds.entry(ds.ids[0]).meta


def test_empty_pair_rule_selector(review, synthetic_root):
    viewer, widget = review
    _open(widget, synthetic_root)
    for lay in list(widget.annotator_layers().values())[:2]:
        lay.data = np.zeros_like(np.asarray(lay.data))
    widget.live.resync()
    widget.panel.set_empty_rule("zero")
    assert widget.matrix()[0, 1] == 0
    widget.panel.set_empty_rule("one")
    assert widget.matrix()[0, 1] == 1
    np.testing.assert_allclose(widget.panel.matrix_values(), widget.matrix())
    widget.panel.set_empty_rule("ignore")
    assert np.isnan(widget.matrix()[0, 1])


# ----------------------------------------------------------------------------- saving
def test_save_writes_new_file_and_keeps_original(review, synthetic_copy):
    from napari_iaa.data import read_mask

    viewer, widget = review
    _open(widget, synthetic_copy)
    mid = widget.live.ids[0]
    original = Path(widget._mask_info[mid]["mask_path"])
    before = _sha(original)
    all_files = {p: _sha(p) for p in (synthetic_copy / "masks").iterdir()}
    layer = widget.annotator_layers()[mid]
    layer.brush_size = 11
    layer.paint((5, 5), 1)
    assert widget.unsaved_mask_ids() == [mid]
    assert widget.save_btn.isEnabled()
    written = widget.save_edits()
    assert len(written) == 1
    new = written[0]
    assert new.parent == original.parent and new != original
    annotator = widget._mask_info[mid]["annotator"]
    assert annotator in new.name and "edited" in new.name
    assert _sha(original) == before
    assert {p: _sha(p) for p in all_files} == all_files  # nothing else touched
    np.testing.assert_array_equal(read_mask(new), np.asarray(layer.data) != 0)
    assert widget.unsaved_mask_ids() == []


def test_leaving_case_with_unsaved_edits_follows_policy(review, synthetic_copy):
    viewer, widget = review
    ds = _open(widget, synthetic_copy)
    first, second = ds.ids[0], ds.ids[1]
    layer = widget.annotator_layers()[widget.live.ids[0]]
    layer.paint((3, 3), 1)
    widget.unsaved_policy = "cancel"
    assert not widget.open_case(second)
    assert widget.case_id == first
    n_before = len(list((synthetic_copy / "masks").iterdir()))
    widget.unsaved_policy = "save"
    assert widget.open_case(second)
    assert widget.case_id == second
    assert len(list((synthetic_copy / "masks").iterdir())) == n_before + 1


def test_switching_case_replaces_only_our_layers(review, synthetic_root):
    viewer, widget = review
    ds = _open(widget, synthetic_root)
    user = viewer.add_points(np.array([[10.0, 10.0]]), name="my points")
    n_ours = len(widget.our_layers())
    assert widget.step_case(+1)
    assert widget.case_id == ds.ids[1]
    assert "my points" in [lay.name for lay in viewer.layers]
    assert user in viewer.layers
    names = [lay.name for lay in viewer.layers]
    assert ds.ids[0] not in names and ds.ids[1] in names
    assert len(viewer.layers) == len(widget.our_layers()) + 1
    assert n_ours >= 5
    assert widget.case_combo.currentText() == ds.ids[1]


def test_walking_cases_keeps_each_annotators_colour_without_resetting_it(review, synthetic_root):
    """A reused Labels layer keeps its colours when they are already right (setting them
    again made napari redraw the layer and its contours a second time); a colour the
    reviewer changed is put back to the annotator's on the next case."""
    from napari_iaa.widgets._common.colormaps import annotator_color

    viewer, widget = review
    ds = _open(widget, synthetic_root)
    first = widget.our_layers("annotator")
    sets: list[str] = []
    for lay in first:
        lay.events.colormap.connect(lambda e, n=lay.name: sets.append(n))
    assert widget.step_case(+1) and widget.case_id == ds.ids[1]
    layers = widget.our_layers("annotator")
    reused = [lay for lay in layers if any(lay is f for f in first)]
    assert len(reused) >= 2
    assert sets == []  # none of the reused layers had its colours set again
    for lay in layers:
        i = lay.metadata["napari_iaa"]["index"]
        assert np.allclose(lay.colormap.map(1), _rgba(annotator_color(i)), atol=1e-3)
    mine = reused[0]
    mine.colormap = {0: "transparent", None: "#123456"}
    sets.clear()
    assert widget.step_case(-1) and widget.case_id == ds.ids[0]
    assert mine in widget.our_layers("annotator")
    assert sets == [mine.name]
    i = mine.metadata["napari_iaa"]["index"]
    assert np.allclose(mine.colormap.map(1), _rgba(annotator_color(i)), atol=1e-3)


def test_walking_cases_names_each_layer_after_its_mask(review, synthetic_root):
    """Reused layers take the new case's mask ids as names even when an id moves to
    another layer (napari keeps names unique and used to leave ``A03 [1]``)."""
    viewer, widget = review
    ds = _open(widget, synthetic_root)
    for cid in [*ds.ids[1:], *reversed(ds.ids[:-1])]:
        assert widget.open_case(cid) and widget.case_id == cid
        ids = list(ds.load(cid).mask_ids)
        names = [lay.name for lay in widget.our_layers("annotator")]
        assert sorted(names) == sorted(ids), (cid, names)
        for lay in widget.our_layers("annotator"):
            assert lay.name == lay.metadata["napari_iaa"]["mask_id"]
    assert not [lay.name for lay in viewer.layers if "previous case" in lay.name]


def _rgba(color: str) -> np.ndarray:
    from napari.utils.colormaps.standardize_color import transform_color

    return transform_color(color)[0]


def test_contour_and_consensus_toggles(review, synthetic_root):
    viewer, widget = review
    _open(widget, synthetic_root)
    assert all(lay.contour > 0 for lay in widget.our_layers("annotator"))
    widget.contour_check.setChecked(False)
    assert all(lay.contour == 0 for lay in widget.our_layers("annotator"))
    widget.staple_check.setChecked(True)
    assert widget.our_layers("staple")[0].visible
    from napari_iaa.agreement import staple

    stack = widget.live.stack()
    np.testing.assert_array_equal(
        np.asarray(widget.our_layers("staple")[0].data) != 0, staple(stack).consensus
    )
    # per-annotator reliability is filled in
    vals = widget.panel.per_mask_values()
    assert vals.shape == (len(widget.live.ids), 4)
    assert np.isfinite(vals[:, :2]).all()


# ----------------------------------------------------------------------------- errors
def test_bad_dataset_shows_error_instead_of_raising(review, tmp_path, error_log):
    viewer, widget = review
    bad = tmp_path / "not_a_dataset"
    bad.mkdir()
    (bad / "notes.txt").write_text("hello")
    assert widget.open_dataset(bad) is False
    assert error_log and str(bad) in error_log[-1]
    assert widget.open_dataset(tmp_path / "missing") is False
    assert len(error_log) == 2


def test_unreadable_case_shows_error(review, synthetic_copy, error_log):
    viewer, widget = review
    ds = _open(widget, synthetic_copy)
    entry = ds.entry(ds.ids[1])
    victim = next(iter(entry.mask_paths.values()))
    victim.write_bytes(b"not a png")
    n_layers = len(viewer.layers)
    assert widget.open_case(ds.ids[1]) is False
    assert error_log and victim.name in error_log[-1]
    assert widget.case_id == ds.ids[0] and len(viewer.layers) == n_layers


def test_large_case_files_are_read_in_a_worker(review, synthetic_copy, qtbot, error_log):
    """Above ``async_load_min_bytes`` a case is decoded off the GUI thread: the call
    returns at once, the case follows; a later request wins over one still reading; a
    file that cannot be read is a notification and the shown case stays."""
    import threading

    from napari_iaa.widgets.review import navigation

    viewer, widget = review
    ds = _open(widget, synthetic_copy)
    widget.async_load_min_bytes = 0
    reads: list[str] = []
    real_load = type(ds).load
    held = {ds.ids[2]: threading.Event(), ds.ids[5]: threading.Event()}  # read when released

    def load(self, case_id, *a, **k):
        reads.append(threading.current_thread().name)
        if case_id in held:
            assert held[case_id].wait(10)
        return real_load(self, case_id, *a, **k)

    type(ds).load, restore = load, real_load
    try:
        assert widget.open_case(ds.ids[1]) is True
        assert widget.case_id == ds.ids[0]  # still the shown case while its files are read
        assert "reading" in widget.info_label.text()
        qtbot.waitUntil(lambda: widget.case_id == ds.ids[1] and widget.live is not None,
                        timeout=10000)
        assert reads and reads[-1] != "MainThread"
        assert widget.case_combo.currentText() == ds.ids[1]
        widget.open_case(ds.ids[2])
        first = widget._load_worker
        widget.open_case(ds.ids[3])  # asked for while the first one is still being read
        qtbot.waitUntil(lambda: widget.case_id == ds.ids[3] and widget.live is not None,
                        timeout=10000)
        with qtbot.waitSignal(first.finished, timeout=10000):
            held[ds.ids[2]].set()  # the earlier request's case arrives last
        assert widget.case_id == ds.ids[3]  # and is dropped
        victim = next(iter(ds.entry(ds.ids[4]).mask_paths.values()))
        victim.write_bytes(b"not a png")
        assert widget.open_case(ds.ids[4]) is True
        qtbot.waitUntil(lambda: any(victim.name in m for m in error_log), timeout=10000)
        assert widget.case_id == ds.ids[3] and widget.case_combo.currentText() == ds.ids[3]
        assert "reading" not in widget.info_label.text()
        widget.unsaved_policy = "cancel"
        assert widget.open_case(ds.ids[5]) is True  # nothing unsaved: nothing asked
        reading = widget._load_worker
        layer = widget.our_layers("annotator")[0]
        layer.paint(_lesion_center(layer), 0)  # an edit while ids[5] is read
        assert widget.unsaved_mask_ids()
        with qtbot.waitSignal(reading.finished, timeout=10000):
            held[ds.ids[5]].set()
        assert widget.case_id == ds.ids[3]  # the policy kept the case with its new edit
    finally:
        type(ds).load = restore
    assert navigation._files_bytes(ds, ds.ids[0]) > 0
    assert navigation._files_bytes(ds, "no such case") == 0


def test_reliability_in_worker_for_large_images(review, synthetic_root, qtbot):
    from napari_iaa.agreement import leave_one_out_dice

    viewer, widget = review
    _open(widget, synthetic_root)
    widget.slow_sync_max_pixels = 0  # force the threaded path
    layer = widget.annotator_layers()[widget.live.ids[0]]
    layer.brush_size = 15
    with qtbot.waitSignal(widget.reliability_updated, timeout=10000):
        layer.paint((48, 48), 0)
    stack = np.stack([np.asarray(lay.data) != 0 for lay in widget.annotator_layers().values()])
    np.testing.assert_allclose(
        widget.panel.per_mask_values()[:, 1], leave_one_out_dice(stack), equal_nan=True
    )
    mv = widget.our_layers("majority")[0]
    np.testing.assert_array_equal(np.asarray(mv.data) != 0, stack.sum(0) * 2 >= len(stack))


def test_reopening_a_sample_replaces_the_previous_case(make_napari_viewer, qtbot):
    from napari_iaa.widgets.review.layers import tag_of

    viewer = make_napari_viewer()
    viewer.open_sample("napari-iaa", "synthetic")
    widget = viewer.window.dock_widgets["Review (napari-iaa)"]
    qtbot.waitUntil(lambda: widget.live is not None, timeout=10000)
    widget.unsaved_policy = "discard"
    user = viewer.add_shapes(name="notes")
    first_load = widget.load_id
    n_ours = len(widget.our_layers())
    viewer.open_sample("napari-iaa", "synthetic")
    qtbot.waitUntil(lambda: widget.load_id != first_load and widget.live is not None, timeout=10000)
    qtbot.waitUntil(lambda: len(widget.annotator_layers()) == len(widget.live.ids), timeout=5000)
    tags = [tag_of(lay) for lay in viewer.layers if tag_of(lay)]
    assert {t["load_id"] for t in tags} == {widget.load_id}
    assert len(tags) == n_ours
    assert user in viewer.layers
    np.testing.assert_allclose(widget.matrix(), _recomputed(widget))


def test_reader_opens_manifest_csv(make_napari_viewer, qtbot, tmp_path):
    from PIL import Image

    rows = ["case_id,image,annotator,mask,diagnosis"]
    for c in range(2):
        Image.fromarray(np.full((32, 32), 90 + c, np.uint8)).save(tmp_path / f"img{c}.png")
        for a in range(3):
            m = np.zeros((32, 32), np.uint8)
            m[8 : 20 + a, 8 : 20 + c] = 255
            Image.fromarray(m).save(tmp_path / f"m{c}_{a}.png")
            rows.append(f"case{c},img{c}.png,R{a},m{c}_{a}.png,{'benign' if c else 'malignant'}")
    csv = tmp_path / "manifest.csv"
    csv.write_text("\n".join(rows) + "\n")
    viewer = make_napari_viewer()
    viewer.open(str(csv), plugin="napari-iaa")
    widget = viewer.window.dock_widgets["Review (napari-iaa)"]
    qtbot.waitUntil(lambda: widget.live is not None, timeout=10000)
    assert widget.case_id == "case0" and widget.live.ids == ["R0", "R1", "R2"]
    assert widget.case_combo.count() == 2
    np.testing.assert_allclose(widget.matrix(), _recomputed(widget))
    assert widget.step_case(+1) and widget.case_id == "case1"


def test_ask_policy_uses_the_dialog_answer(review, synthetic_copy, monkeypatch):
    from qtpy.QtWidgets import QMessageBox

    viewer, widget = review
    ds = _open(widget, synthetic_copy)
    widget.unsaved_policy = "ask"
    asked = []

    def fake_question(*args, **kwargs):
        asked.append(args[2] if len(args) > 2 else "")
        return QMessageBox.Cancel if len(asked) == 1 else QMessageBox.Save

    monkeypatch.setattr(QMessageBox, "question", staticmethod(fake_question))
    edited = widget.live.ids[0]
    widget.annotator_layers()[edited].paint((3, 3), 1)
    assert not widget.step_case(+1) and widget.case_id == ds.ids[0]  # Cancel: stay
    n_before = len(list((synthetic_copy / "masks").iterdir()))
    assert widget.step_case(+1) and widget.case_id == ds.ids[1]  # Save: written, moved on
    assert len(list((synthetic_copy / "masks").iterdir())) == n_before + 1
    assert len(asked) == 2 and edited in asked[0]


# ----------------------------------------------------------------------------- large cases
def test_large_case_opens_in_worker_with_block_mhr(review, synthetic_root, qtbot, monkeypatch):
    """The asynchronous open path (worker + one layer per event-loop turn) and the
    down-sampled MHR display, forced on tiny data; the matrix stays exact."""
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    from napari_iaa.agreement import mhr_display
    from napari_iaa.data import open_dataset

    viewer, widget = review
    ds = open_dataset(synthetic_root)
    widget.async_open_min_pixels = 0
    widget.mhr_display_max_pixels = 32 * 32
    widget.slow_sync_max_pixels = 0
    case = ds.load(ds.ids[2])
    with qtbot.waitSignal(widget.case_opened, timeout=20000):
        assert widget.show_case(case) is True
        assert widget.live is None  # not bound yet: the worker prepares the case
    assert widget.case_id == case.case_id
    assert widget.live.ids == list(case.mask_ids)
    np.testing.assert_allclose(widget.matrix(), _recomputed(widget))
    np.testing.assert_allclose(widget.panel.matrix_values(), widget.matrix())
    mhr = widget.our_layers("mhr")[0]
    k = widget.live.mhr_k
    assert k > 1 and mhr.data.shape == tuple(-(-d // k) for d in case.image.shape[:2])
    np.testing.assert_allclose(mhr.scale, (k, k))
    full = widget.live.mhr()
    np.testing.assert_allclose(full, np.stack(list(widget.live.masks().values())).mean(0), atol=1e-6)
    layer = widget.annotator_layers()[widget.live.ids[0]]
    layer.brush_size = 21
    with qtbot.waitSignal(widget.reliability_updated, timeout=20000):
        layer.paint((40, 40), 1)
        layer.paint(_lesion_center(layer), 0)
    np.testing.assert_allclose(widget.matrix(), _recomputed(widget))
    assert widget.live.n_resyncs == 0
    votes = np.stack([np.asarray(lay.data) != 0 for lay in widget.annotator_layers().values()]).sum(0)
    _, expected = mhr_display(votes, len(widget.live.ids), k)
    np.testing.assert_allclose(mhr.data, expected, atol=1e-6)
    assert widget.unsaved_mask_ids() == [widget.live.ids[0]]
    # the table shows the live values cell by cell (only changed cells are redrawn)
    from napari_iaa.widgets._common import fmt_number

    m = widget.matrix()
    for i in range(m.shape[0]):
        for j in range(m.shape[0]):
            assert widget.panel.matrix.item(i, j).text() == fmt_number(m[i, j], ".2f")


def test_mhr_display_block_means_match_full_resolution():
    from napari_iaa.agreement import mhr_display, mhr_factor

    rng = np.random.default_rng(0)
    votes = rng.integers(0, 6, (23, 17)).astype(np.int16)
    assert mhr_factor(votes.shape, 23 * 17) == 1
    k = mhr_factor(votes.shape, 50)
    assert k == 3
    where, full = mhr_display(votes, 5, k)
    assert full.shape == (8, 6)
    assert np.isclose(full[-1, -1], votes[21:, 15:].mean() / 5)
    assert np.isclose(full[2, 1], votes[6:9, 3:6].mean() / 5)
    # a box update gives the same values as the whole map on the blocks it covers
    where, part = mhr_display(votes, 5, k, (slice(4, 11), slice(16, 17)))
    np.testing.assert_allclose(part, full[where])
    assert where == (slice(1, 4), slice(5, 6))


def test_large_adopted_layers_bound_in_worker(make_napari_viewer, qtbot, synthetic_root,
                                              monkeypatch):
    """Tagged layers from a reader/sample: a large case is prepared in a worker and its
    full-resolution MHR layer swapped for the down-sampled display."""
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    from napari.layers import Layer

    from napari_iaa.data import open_dataset
    from napari_iaa.widgets import ReviewWidget
    from napari_iaa.widgets.review.layers import case_layer_data

    ds = open_dataset(synthetic_root)
    case = ds.load(ds.ids[1])
    viewer = make_napari_viewer()
    for data, meta, kind in case_layer_data(case, source=str(synthetic_root)):
        viewer.add_layer(Layer.create(data, meta, kind))
    widget = ReviewWidget(viewer)
    widget.unsaved_policy = "discard"
    widget.async_open_min_pixels = 0
    widget.mhr_display_max_pixels = 32 * 32
    qtbot.waitUntil(lambda: widget.live is not None, timeout=20000)
    assert widget.live.ids == list(case.mask_ids)
    np.testing.assert_allclose(widget.matrix(), _recomputed(widget))
    mhr = widget.our_layers("mhr")[0]
    assert widget.live.mhr_k > 1 and mhr.data.shape[0] < case.image.shape[0]
    layer = widget.annotator_layers()[widget.live.ids[-1]]
    layer.brush_size = 11
    layer.paint((20, 70), 1)
    np.testing.assert_allclose(widget.matrix(), _recomputed(widget))
    assert widget.unsaved_mask_ids() == [widget.live.ids[-1]]


def test_stroke_of_many_dabs_is_one_exact_update(review, synthetic_root):
    """A mouse stroke delivers all its dabs in one paint event (napari's block_history);
    overlapping paint and erase dabs must net out exactly."""
    viewer, widget = review
    _open(widget, synthetic_root)
    mid = widget.live.ids[1]
    layer = widget.annotator_layers()[mid]
    layer.brush_size = 9
    n0 = widget.live.n_paint_events
    cy, cx = _lesion_center(layer)
    with layer.block_history():
        for k in range(6):
            layer.paint((10 + 3 * k, 10 + 4 * k), 1)  # overlapping dabs
        layer.paint((14, 16), 0)  # erase part of what this stroke painted
        layer.paint((cy, cx), 0)  # and part of the original mask
        layer.paint((cy + 2, cx + 2), 1)  # then paint some of it back
    assert widget.live.n_paint_events == n0 + 1
    np.testing.assert_allclose(widget.matrix(), _recomputed(widget))
    np.testing.assert_allclose(widget.panel.matrix_values(), widget.matrix())
    assert widget.live.n_resyncs == 0
    np.testing.assert_array_equal(widget.live.mirrors[mid], np.asarray(layer.data) != 0)
    stack = np.stack([np.asarray(lay.data) != 0 for lay in widget.annotator_layers().values()])
    np.testing.assert_allclose(widget.our_layers("mhr")[0].data, stack.mean(0), atol=1e-6)


def test_gc_freeze_once(monkeypatch):
    import gc

    from napari_iaa.widgets._common import memory as warmup

    monkeypatch.setattr(warmup, "_GC_FROZEN", False)
    monkeypatch.delenv("NAPARI_IAA_GC_FREEZE", raising=False)
    assert warmup.freeze_gc_once() is False  # opt-in: off unless asked for
    monkeypatch.setenv("NAPARI_IAA_GC_FREEZE", "0")
    assert warmup.freeze_gc_once() is False
    monkeypatch.setenv("NAPARI_IAA_GC_FREEZE", "1")
    before = gc.get_freeze_count()
    try:
        assert warmup.freeze_gc_once() is True
        assert gc.get_freeze_count() > before
        assert warmup.freeze_gc_once() is False  # once per process
    finally:
        gc.unfreeze()
