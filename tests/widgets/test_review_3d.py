"""The review dock on volumes: scaled layers, live agreement under 2D-slice and 3D editing
(real napari Labels events), surface distances in the matrix, the slice profile, saving
NIfTI edits and the unit of review."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_iaa.agreement import pairwise_dice, pairwise_surface_distances, slice_profile

pytestmark = pytest.mark.gui

SPACING = (2.5, 0.7, 0.7)


def _volume_case(i: int = 1, shape=(8, 32, 32), spacing=SPACING):
    """A synthetic lesion volume with 4 readers, in memory."""
    from napari_iaa.data import Case
    from napari_iaa.data.synthetic3d import render_volume_case

    v = render_volume_case(i, seed=0, shape=shape, spacing=spacing, n_annotators=4)
    return Case(case_id=v.case_id, image=v.image, masks=dict(v.masks), spacing=spacing)


def _stack(widget) -> np.ndarray:
    layers = widget.annotator_layers()
    return np.stack([np.asarray(layers[mid].data) != 0 for mid in widget.live.ids])


def _assert_exact(widget) -> None:
    """Tracker, panel, mirrors and MHR equal what the layers' data give from scratch."""
    stack = _stack(widget)
    np.testing.assert_allclose(widget.matrix(), pairwise_dice(stack, empty=widget.panel.empty_rule))
    np.testing.assert_allclose(widget.panel.matrix_values(), widget.matrix())
    for k, mid in enumerate(widget.live.ids):
        np.testing.assert_array_equal(widget.live.mirrors[mid], stack[k])
    np.testing.assert_allclose(widget.our_layers("mhr")[0].data, stack.mean(0), atol=1e-6)


@pytest.fixture
def volume_review(review):
    viewer, widget = review
    case = _volume_case()
    assert widget.show_case(case)
    assert widget.live is not None
    return viewer, widget, case


# ----------------------------------------------------------------------------- layers
def test_volume_layers_carry_the_spacing_as_scale(volume_review, synthetic_root):
    viewer, widget, case = volume_review
    for role in ("image", "annotator", "mhr", "majority", "staple"):
        layers = widget.our_layers(role)
        assert layers, role
        for lay in layers:
            np.testing.assert_allclose(lay.scale, SPACING, err_msg=role)
            assert lay.ndim == 3
    assert widget.live.ids == case.mask_ids
    _assert_exact(widget)
    assert widget.profile.isVisibleTo(widget)
    got = widget.current_case()
    assert got.spacing == SPACING and got.is_volume
    # a 2D case afterwards: unit scale, no profile (the layers are reused)
    from napari_iaa.data import open_dataset

    ds = open_dataset(synthetic_root)
    assert widget.show_case(ds.load(ds.ids[0]))
    for lay in widget.our_layers():
        assert tuple(lay.scale) == (1.0, 1.0)
    assert not widget.profile.isVisibleTo(widget)


def test_large_volume_opens_in_worker(review, qtbot, monkeypatch):
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    viewer, widget = review
    widget.async_open_min_pixels = 0
    case = _volume_case(2)
    with qtbot.waitSignal(widget.case_opened, timeout=20000):
        assert widget.show_case(case)
    np.testing.assert_allclose(widget.our_layers("image")[0].scale, SPACING)
    _assert_exact(widget)


@pytest.mark.parametrize("key", ["synthetic3d", "lidc_nodules"])
def test_volume_samples_open_in_the_dock(make_napari_viewer, qtbot, key):
    from napari_iaa.data import open_dataset, sample_data_path
    from napari_iaa.errors import DatasetError

    try:
        path = sample_data_path(key)
    except DatasetError:
        pytest.skip(f"sample data {key!r} not built")
    viewer = make_napari_viewer()
    viewer.open_sample("napari-iaa", key)
    widget = viewer.window.dock_widgets["Review (napari-iaa)"]
    qtbot.waitUntil(lambda: widget.live is not None, timeout=20000)
    case = open_dataset(path).load(widget.case_id)
    for lay in widget.our_layers():
        assert lay.ndim == 3
        np.testing.assert_allclose(lay.scale, case.voxel_spacing)
    _assert_exact(widget)
    assert widget.profile.isVisibleTo(widget)
    qtbot.waitUntil(lambda: widget.profile.profile is not None, timeout=10000)
    assert widget.current_case().spacing == pytest.approx(case.spacing)


# ----------------------------------------------------------------------------- live
@st.composite
def _ops(draw):
    shape = (8, 32, 32)
    return draw(st.lists(st.tuples(
        st.sampled_from(["paint", "erase", "fill", "stroke"]),
        st.sampled_from([2, 3]),  # n_edit_dimensions: the slice shown, or the volume
        st.integers(0, 3),  # annotator
        st.tuples(*(st.integers(0, s - 1) for s in shape)),
        st.integers(1, 7),  # brush size
    ), min_size=1, max_size=8))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=_ops())
def test_editing_a_volume_keeps_the_matrix_exact(review, ops):
    """Brush, eraser, bucket fill and strokes in a 2D slice and in 3D of real napari
    Labels layers: every paint event updates the counts from the changed voxels only and
    the matrix equals a recomputation (no full resync)."""
    viewer, widget = review
    assert widget.show_case(_volume_case())
    layers = [widget.annotator_layers()[mid] for mid in widget.live.ids]
    for kind, n_edit, k, pos, size in ops:
        layer = layers[k]
        layer.n_edit_dimensions = n_edit
        layer.brush_size = size
        if kind == "fill":
            layer.fill(pos, int(not layer.data[pos]))
        elif kind == "stroke":  # one mouse stroke: all its dabs in one paint event
            with layer.block_history():
                for d in range(4):
                    layer.paint((pos[0], pos[1], min(pos[2] + 2 * d, 31)), int(d != 2))
        else:
            layer.paint(pos, int(kind == "paint"))
        _assert_exact(widget)
    assert widget.live.n_resyncs == 0


def test_painting_in_the_slice_shown(volume_review):
    """With napari's default 2D editing, a dab changes the slice the viewer shows only."""
    viewer, widget, case = volume_review
    layer = widget.annotator_layers()[widget.live.ids[0]]
    before = np.asarray(layer.data).copy()
    widget.profile.go_to_slice(5)
    assert widget.profile.current_slice() == 5
    layer.brush_size = 5
    z = int(viewer.dims.current_step[0])
    layer.paint((z, 3, 3), 1)
    changed = np.nonzero(np.asarray(layer.data) != before)
    assert changed[0].size and set(changed[0].tolist()) == {5}
    _assert_exact(widget)


def test_undo_redo_and_data_assignment_resync_a_volume(volume_review, qtbot):
    viewer, widget, case = volume_review
    layer = widget.annotator_layers()[widget.live.ids[1]]
    m0 = widget.matrix()
    layer.n_edit_dimensions = 3
    layer.brush_size = 9
    layer.paint((4, 16, 16), 0)
    m1 = widget.matrix()
    assert not np.allclose(m0, m1)
    layer.undo()
    qtbot.waitUntil(lambda: np.allclose(widget.matrix(), m0), timeout=5000)
    layer.redo()
    qtbot.waitUntil(lambda: np.allclose(widget.matrix(), m1), timeout=5000)
    layer.data = np.zeros_like(np.asarray(layer.data))
    qtbot.waitUntil(lambda: widget.matrix()[1, 0] == 0, timeout=5000)
    _assert_exact(widget)


# ----------------------------------------------------------------------------- matrix
def test_matrix_switches_to_surface_distances_in_mm(volume_review, qtbot, monkeypatch):
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    viewer, widget, case = volume_review
    panel = widget.panel
    with qtbot.waitSignal(widget.reliability_updated, timeout=20000):
        panel.set_metric("hd95")  # computed on request, off the GUI thread
    ref = pairwise_surface_distances(_stack(widget), SPACING)
    np.testing.assert_allclose(panel.shown_values(), ref.hd)
    assert "HD95" in panel.matrix_box.title() and "mm" in panel.matrix_box.title()
    panel.set_metric("assd")  # already computed: shown at once
    np.testing.assert_allclose(panel.shown_values(), ref.assd)
    np.testing.assert_allclose(panel.matrix_values(), widget.matrix())  # Dice still live
    # an empty mask has no surface: its pairs read "—"
    layer = widget.annotator_layers()[widget.live.ids[2]]
    with qtbot.waitSignal(widget.reliability_updated, timeout=20000):
        layer.data = np.zeros_like(np.asarray(layer.data))
    assert np.isnan(panel.shown_values()[2, 0])
    assert panel.matrix.item(2, 0).text() == "—" and panel.matrix.item(0, 2).text() == "—"
    ref = pairwise_surface_distances(_stack(widget), SPACING)
    np.testing.assert_allclose(panel.shown_values(), ref.assd, equal_nan=True)
    panel.set_metric("dice")
    np.testing.assert_allclose(panel.shown_values(), widget.matrix())


def test_distances_in_voxels_without_spacing(review, qtbot, monkeypatch):
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    viewer, widget = review
    case = _volume_case()
    case.spacing = None
    assert widget.show_case(case)
    assert tuple(widget.our_layers("image")[0].scale) == (1.0, 1.0, 1.0)
    with qtbot.waitSignal(widget.reliability_updated, timeout=20000):
        widget.panel.set_metric("hd95")
    assert "voxels" in widget.panel.matrix_box.title()
    np.testing.assert_allclose(widget.panel.shown_values(),
                               pairwise_surface_distances(_stack(widget)).hd)


# ----------------------------------------------------------------------------- profile
def test_slice_profile_follows_edits_and_moves_the_viewer(volume_review, qtbot, monkeypatch):
    from napari_iaa.widgets.review import profile_panel

    viewer, widget, case = volume_review
    prof = widget.profile
    counted: list[list[int]] = []
    real = profile_panel.measure_slices
    monkeypatch.setattr(profile_panel, "measure_slices",
                        lambda masks, slices: counted.append(list(slices)) or real(masks, slices))
    ref = slice_profile(_stack(widget), empty=widget.panel.empty_rule)
    np.testing.assert_allclose(prof.profile.iaa, ref.iaa)
    np.testing.assert_array_equal(prof.plot.n_marked, ref.n_marked)
    assert prof.plot.n_slices == case.shape[0]
    # edits: recomputed after the debounce
    layer = widget.annotator_layers()[widget.live.ids[0]]
    layer.n_edit_dimensions = 2
    layer.brush_size = 11
    with qtbot.waitSignal(prof.updated, timeout=5000):
        layer.paint((0, 16, 16), 1)
    ref = slice_profile(_stack(widget), empty=widget.panel.empty_rule)
    np.testing.assert_allclose(prof.profile.iaa, ref.iaa)
    np.testing.assert_array_equal(prof.profile.n_marked, ref.n_marked)
    assert prof.profile.n_marked[0] >= 1
    assert counted == [[0]]  # only the slice the dab touched was counted again
    # going to the worst slice moves the slider (world coordinates: z x 2.5 mm)
    worst = ref.worst_slice()
    assert prof.worst_btn.isEnabled()
    prof.go_to_worst()
    assert prof.current_slice() == worst
    assert viewer.dims.point[0] == pytest.approx(worst * SPACING[0])
    assert prof.plot.current == worst
    # a click on the plot goes to the slice under the mouse
    from qtpy.QtCore import QPoint, Qt

    prof.plot.resize(300, 90)
    target = (worst + 3) % case.shape[0]
    r = prof.plot._plot_rect()
    x = int(r.left() + (target + 0.5) * r.width() / prof.plot.n_slices)
    qtbot.mouseClick(prof.plot, Qt.LeftButton, pos=QPoint(x, 40))
    assert prof.current_slice() == target


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.tuples(st.integers(1, 7), st.integers(1, 6), st.integers(1, 6)),
       st.integers(0, 2**32 - 1), st.sampled_from(["zero", "one", "ignore"]))
def test_slice_counts_give_the_slice_profile(n, shape, seed, empty):
    """Per-slice counts, recounted only on touched slices, equal slice_profile exactly."""
    from napari_iaa.widgets.review.slice_counts import SliceCounts, measure_slices

    rng = np.random.default_rng(seed)
    masks = [rng.random(shape) < rng.random() * 0.6 for _ in range(n)]
    counts = SliceCounts.of(masks)
    ref = slice_profile(masks, empty=empty)
    got = counts.profile(empty)
    np.testing.assert_array_equal(got.n_marked, ref.n_marked)
    np.testing.assert_array_equal(got.iaa, ref.iaa)  # same arithmetic, bit for bit
    z = int(rng.integers(shape[0]))
    masks[0][z] = ~masks[0][z]
    counts.apply(*measure_slices(masks, [z]))
    np.testing.assert_array_equal(counts.profile(empty).iaa, slice_profile(masks, empty=empty).iaa)


def test_large_volume_profile_in_worker(volume_review, qtbot, monkeypatch):
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    viewer, widget, case = volume_review
    widget.slow_sync_max_pixels = 0
    layer = widget.annotator_layers()[widget.live.ids[3]]
    layer.n_edit_dimensions = 3
    with qtbot.waitSignal(widget.profile.updated, timeout=20000):
        layer.fill((4, 16, 16), 0)
    ref = slice_profile(_stack(widget), empty=widget.panel.empty_rule)
    np.testing.assert_array_equal(widget.profile.profile.n_marked, ref.n_marked)
    np.testing.assert_allclose(widget.profile.profile.iaa, ref.iaa)


# ----------------------------------------------------------------------------- saving
def test_volume_edit_saved_as_nifti_with_the_header(review, tmp_path):
    import hashlib

    from napari_iaa.data import open_dataset, read_volume, volume_header
    from napari_iaa.data.synthetic3d import generate_synthetic_volumes

    root = generate_synthetic_volumes(tmp_path / "vol", n=2, shape=(8, 32, 32), spacing=SPACING)
    viewer, widget = review
    ds = open_dataset(root)
    assert widget.set_dataset(ds, source=str(root))
    mid = widget.live.ids[0]
    original = widget._mask_info[mid]["mask_path"]
    digest = hashlib.sha256(Path(original).read_bytes()).hexdigest()
    layer = widget.annotator_layers()[mid]
    layer.n_edit_dimensions = 3
    layer.brush_size = 7
    layer.paint((2, 5, 5), 1)
    assert widget.unsaved_mask_ids() == [mid]
    (new,) = widget.save_edits()
    assert new.name.endswith(".nii.gz") and "edited" in new.name and new.parent.samefile(
        tmp_path / "vol" / widget.case_id)
    head, ref = volume_header(new), volume_header(original)
    np.testing.assert_allclose(head.spacing, ref.spacing)
    np.testing.assert_allclose(head.origin, ref.origin)
    np.testing.assert_allclose(head.direction, ref.direction)
    np.testing.assert_array_equal(np.asarray(read_volume(new).array) != 0,
                                  np.asarray(layer.data) != 0)
    assert hashlib.sha256(Path(original).read_bytes()).hexdigest() == digest
    assert widget.unsaved_mask_ids() == []


# ----------------------------------------------------------------------------- units
def test_lidc_opens_per_nodule_and_the_unit_can_be_switched(review):
    from napari_iaa.data import sample_data_path
    from napari_iaa.errors import DatasetError

    try:
        root = sample_data_path("lidc")
    except DatasetError:
        pytest.skip("LIDC sample not built")
    viewer, widget = review
    assert widget.open_dataset(root)
    assert widget.unit == "nodule" and widget.unit_combo.isVisibleTo(widget)
    assert widget.unit_combo.currentText() == "nodule"
    assert widget.case_id.count("/") == 1  # <patient>/<nodule>
    assert widget.our_layers("image")[0].ndim == 3 and widget.profile.isVisibleTo(widget)
    _assert_exact(widget)
    widget.unit_combo.setCurrentIndex(widget.unit_combo.findText("slice"))
    assert widget.unit == "slice" and widget.case_id.count("/") == 2
    assert widget.our_layers("image")[0].ndim == 2 and not widget.profile.isVisibleTo(widget)


def test_unit_combo_hidden_without_a_choice(review, synthetic_root):
    viewer, widget = review
    assert widget.open_dataset(synthetic_root)
    assert widget.unit is None and not widget.unit_combo.isVisibleTo(widget)


def test_nodule_stacked_from_slices_saves_a_nifti_beside_them(review, tmp_path):
    """A LIDC nodule (PNG slices, no spacing): its edit is one NIfTI volume in the nodule's
    folder, unit voxels; the slice files stay as they were."""
    import shutil

    from napari_iaa.data import read_volume, sample_data_path
    from napari_iaa.errors import DatasetError

    try:
        src = sample_data_path("lidc")
    except DatasetError:
        pytest.skip("LIDC sample not built")
    root = tmp_path / "lidc"
    shutil.copytree(src, root)
    before = {p: p.read_bytes() for p in root.rglob("*.png")}
    viewer, widget = review
    assert widget.open_dataset(root, unit="nodule")
    mid = widget.live.ids[0]
    layer = widget.annotator_layers()[mid]
    layer.n_edit_dimensions = 3
    layer.brush_size = 5
    layer.paint((0, 3, 3), 1)
    (new,) = widget.save_edits()
    folder = Path(widget._mask_info[mid]["mask_path"]).parent
    assert new.parent == folder and new.name.endswith(".nii.gz")
    vol = read_volume(new)
    np.testing.assert_array_equal(np.asarray(vol.array) != 0, np.asarray(layer.data) != 0)
    np.testing.assert_allclose(vol.spacing, (1.0, 1.0, 1.0))
    assert {p: p.read_bytes() for p in root.rglob("*.png")} == before
