"""AgreementTracker agrees exactly with the from-scratch counts after any edit sequence."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_iaa.agreement import AgreementTracker, pairwise_counts, pairwise_dice, pairwise_iou
from napari_iaa.errors import ConfigError, ShapeMismatchError


class MaskedAtom(NamedTuple):
    """Same fields as napari >= 0.8's ``_MaskedPaintAtom``."""

    slice_key: tuple
    mask: np.ndarray | None
    old_values: np.ndarray
    new_value: int


def check(tracker, masks):
    counts, inter = pairwise_counts(masks)
    np.testing.assert_array_equal(tracker.intersections, inter)
    np.testing.assert_array_equal(tracker.counts, counts)
    for rule in ("zero", "one", "ignore"):
        np.testing.assert_array_equal(tracker.dice_matrix(rule), pairwise_dice(masks, rule))
        np.testing.assert_array_equal(tracker.iou_matrix(rule), pairwise_iou(masks, rule))


def disk(shape, cy, cx, r):
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


STYLES = [
    "tuple",
    "flat",
    "flat_dups",
    "region",
    "region_read",
    "masked_atom",
    "setitem_atom",
    "stroke",
]


@st.composite
def edit(draw, shape, n):
    kind = draw(st.sampled_from(["paint", "erase", "fill", "block", "stroke"]))
    style = "stroke" if kind == "stroke" else draw(st.sampled_from(STYLES[:-1]))
    return dict(
        kind=kind,
        style=style,
        mask=draw(st.integers(0, n - 1)),
        cy=draw(st.integers(0, shape[0] - 1)),
        cx=draw(st.integers(0, shape[1] - 1)),
        cy2=draw(st.integers(0, shape[0] - 1)),
        cx2=draw(st.integers(0, shape[1] - 1)),
        r=draw(st.integers(0, 4)),
        value=draw(st.sampled_from([1, 2, 5])),
    )


@st.composite
def scenario(draw):
    n = draw(st.integers(1, 5))
    shape = (draw(st.integers(2, 14)), draw(st.integers(2, 14)))
    seed = draw(st.integers(0, 2**32 - 1))
    edits = draw(st.lists(edit(shape, n), min_size=1, max_size=12))
    return n, shape, seed, edits


def apply_edit(tracker, masks, e):
    arr = masks[e["mask"]]
    mid = str(e["mask"])
    shape = arr.shape
    if e["kind"] == "paint":
        sel, value = disk(shape, e["cy"], e["cx"], e["r"]), e["value"]
    elif e["kind"] == "erase":
        sel, value = disk(shape, e["cy"], e["cx"], e["r"]), 0
    elif e["kind"] == "fill":  # bucket fill of every pixel holding the clicked value
        sel, value = arr == arr[e["cy"], e["cx"]], e["value"] * (e["r"] % 2)
    else:  # polygon-like block
        y0, y1 = sorted((e["cy"], e["cy2"]))
        x0, x1 = sorted((e["cx"], e["cx2"]))
        sel = np.zeros(shape, bool)
        sel[y0 : y1 + 1, x0 : x1 + 1] = True
        value = e["value"] if e["r"] % 3 else 0
    style = e["style"]
    if style == "stroke":
        # napari paints every dab of a stroke, then emits one event with all atoms
        atoms = []
        for k in range(3):
            dab = disk(shape, e["cy"] + k, e["cx"] - k, e["r"])
            ys, xs = np.nonzero(dab)
            if ys.size == 0:
                continue
            box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
            m = dab[box]
            val = e["value"] if k != 1 else 0
            if k == 2:  # whole-box atom (napari drops the mask when every pixel changed)
                atoms.append(MaskedAtom(box, None, arr[box].copy(), val))
                arr[box] = val
            else:
                region = arr[box]
                atoms.append(MaskedAtom(box, m.copy(), region[m].copy(), val))
                region[m] = val
        tracker.update_from_history(mid, atoms)
        return
    idx = np.nonzero(sel)
    old = arr[idx].copy()
    if style in ("tuple", "flat", "flat_dups", "setitem_atom"):
        arr[idx] = value
        if style == "tuple":
            tracker.update(mid, idx, value, old)
        elif style == "setitem_atom":
            tracker.update_from_history(mid, [(idx, old, value)])
        else:
            flat = np.ravel_multi_index(idx, shape)
            if style == "flat_dups" and flat.size:
                flat = np.concatenate([flat, flat[::2]])
                old = np.concatenate([old, old[::2]])
            tracker.update(mid, flat, np.full(flat.size, value), old)
        return
    if idx[0].size == 0:
        return
    box = (slice(idx[0].min(), idx[0].max() + 1), slice(idx[1].min(), idx[1].max() + 1))
    old_box = arr[box].copy()
    m = sel[box]
    arr[box][m] = value
    if style == "region":
        tracker.update_region(mid, box, old_box, np.where(m, value, old_box))
    elif style == "region_read":
        tracker.update_region(mid, box, old_box)
    else:
        tracker.update_from_history(mid, [MaskedAtom(box, m, old_box[m], value)])


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_tracker_matches_scratch_after_any_edits(sc):
    n, shape, seed, edits = sc
    rng = np.random.default_rng(seed)
    dtypes = [np.uint8, np.int32, np.int64, np.uint16]
    masks = [
        (rng.random(shape) < rng.random()).astype(dtypes[i % 4]) * (i % 3 + 1) for i in range(n)
    ]
    tracker = AgreementTracker({str(i): m for i, m in enumerate(masks)})
    check(tracker, masks)
    for e in edits:
        apply_edit(tracker, masks, e)
        check(tracker, masks)
    before = tracker.intersections
    tracker.recompute()
    np.testing.assert_array_equal(tracker.intersections, before)


def test_tracker_references_caller_arrays_and_reports_iaa():
    a = np.zeros((10, 10), np.int32)
    b = np.zeros((10, 10), np.int32)
    a[2:6, 2:6] = 1
    b[2:6, 2:6] = 3
    t = AgreementTracker({"x": a, "y": b}, raters={"x": "R1", "y": "R1"})
    assert t.iaa() == 1.0
    assert np.isnan(t.iaa(same_rater_pairs=False))
    idx = np.nonzero(np.ones((2, 2), bool))
    idx = (idx[0] + 2, idx[1] + 2)
    old = b[idx].copy()
    b[idx] = 0
    t.update("y", idx, 0, old)
    assert t.counts.tolist() == [16, 12]
    assert t.iaa() == pytest.approx(2 * 12 / 28)
    assert t.mask_ids == ["x", "y"]


def test_set_mask_replace_add_remove():
    rng = np.random.default_rng(1)
    masks = {k: rng.random((6, 7)) < 0.5 for k in "abc"}
    t = AgreementTracker(masks)
    new = rng.random((6, 7)) < 0.3
    t.set_mask("b", new)
    masks["b"] = new
    check(t, list(masks.values()))
    d = rng.integers(0, 3, (6, 7))
    t.set_mask("d", d)
    masks["d"] = d
    check(t, list(masks.values()))
    t.remove_mask("a")
    del masks["a"]
    check(t, list(masks.values()))
    assert t.mask_ids == ["b", "c", "d"]
    with pytest.raises(ShapeMismatchError, match="'e'"):
        t.set_mask("e", np.zeros((3, 3)))


def test_update_requires_old_values_and_known_ids():
    t = AgreementTracker([np.zeros((3, 3), bool), np.ones((3, 3), bool)])
    with pytest.raises(ConfigError, match="old values"):
        t.update("0", (np.array([0]), np.array([0])), 1)
    with pytest.raises(ConfigError, match="unknown mask id"):
        t.update("zz", [0], 1, [0])
    with pytest.raises(ConfigError, match="conflicting"):
        t.update("0", [4, 4], [1, 0], [0, 1])
    with pytest.raises(ConfigError, match="axes"):
        t.update("0", (np.array([0]),), 1, [0])


def test_tracker_on_napari_labels_paint_events():
    """Real napari Labels (no viewer): paint/fill/polygon/data_setitem events feed the tracker."""
    labels_mod = pytest.importorskip("napari.layers")
    rng = np.random.default_rng(3)
    datas = [(rng.random((40, 50)) < 0.3).astype(np.int32) for _ in range(3)]
    layers = [labels_mod.Labels(d) for d in datas]
    t = AgreementTracker({str(i): layer.data for i, layer in enumerate(layers)})
    for i, layer in enumerate(layers):
        layer.events.paint.connect(lambda ev, mid=str(i): t.update_from_history(mid, ev.value))
    layers[0].brush_size = 9
    layers[0].paint((20, 20), 2)
    layers[1].selected_label = 0
    layers[1].paint((10, 30), 0)
    layers[2].fill((5, 5), 4)
    layers[2].paint_polygon([(1, 1), (30, 2), (25, 40)], 0)
    layers[0].data_setitem((np.array([0, 1, 2]), np.array([0, 0, 0])), 7)
    check(t, [layer.data for layer in layers])


def test_tracker_3d_masks_and_open_or_strided_slices():
    rng = np.random.default_rng(5)
    masks = [(rng.random((4, 5, 6)) < 0.4).astype(np.uint8) for _ in range(3)]
    t = AgreementTracker(masks)
    box = (slice(1, None), slice(None, None, 2))  # trailing axis omitted
    old = masks[1][box].copy()
    masks[1][box] = 3
    t.update_region("1", box, old)
    check(t, masks)
    idx = (np.array([0, 3]), np.array([4, 0]), np.array([5, 1]))
    old = masks[2][idx].copy()
    masks[2][idx] = 0
    t.update("2", idx, 0, old)
    check(t, masks)


@st.composite
def volume_edits(draw):
    """A few 3D masks and a sequence of napari Labels edits on them."""
    shape = (draw(st.integers(2, 6)), draw(st.integers(3, 12)), draw(st.integers(3, 12)))
    n = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    ops = draw(st.lists(st.tuples(
        st.sampled_from(["paint", "erase", "fill", "polygon"]),
        st.sampled_from([2, 3]),  # n_edit_dimensions: a 2D slice or the volume
        st.integers(0, n - 1),
        st.tuples(*(st.integers(0, s - 1) for s in shape)),
        st.integers(1, 5),
        st.booleans(),  # several dabs in one stroke (napari's block_history)
    ), min_size=1, max_size=10))
    return shape, n, seed, ops


@settings(max_examples=60, deadline=None)
@given(volume_edits())
def test_tracker_on_napari_3d_labels_paint_events(sc):
    """Real napari Labels of volumes: brush, eraser, bucket fill and polygons in a 2D slice
    (``n_edit_dimensions=2``) and in 3D feed the tracker; the counts equal a recount."""
    labels_mod = pytest.importorskip("napari.layers")
    shape, n, seed, ops = sc
    rng = np.random.default_rng(seed)
    layers = [labels_mod.Labels((rng.random(shape) < 0.3).astype(np.uint8)) for _ in range(n)]
    t = AgreementTracker({str(i): layer.data for i, layer in enumerate(layers)})
    for i, layer in enumerate(layers):
        layer.events.paint.connect(lambda ev, mid=str(i): t.update_from_history(mid, ev.value))
    for kind, n_edit, k, pos, size, stroke in ops:
        layer = layers[k]
        layer.n_edit_dimensions = 2 if kind == "polygon" else n_edit  # napari: polygons are 2D
        layer.brush_size = size
        value = 0 if kind == "erase" else 1
        if kind == "fill":
            layer.fill(pos, int(not layer.data[pos]))
        elif kind == "polygon":
            z, y, x = pos
            layer.paint_polygon(np.array([[z, y, 0], [z, 0, x], [z, y, x]]), value)
        elif stroke:
            with layer.block_history():
                for d in range(3):
                    layer.paint((pos[0], pos[1], min(pos[2] + d, shape[2] - 1)), value ^ (d == 1))
        else:
            layer.paint(pos, value)
        check(t, [lay.data for lay in layers])
