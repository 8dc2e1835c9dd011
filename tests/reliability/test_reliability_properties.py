"""Property tests that tests/agreement does not already hold.

Already covered there: Dice/IoU/pairwise/IAA against a reference, exact counts, the
tracker against scratch counts after synthetic atoms. Added here: the relations between
the metrics (IoU <= Dice, Dice = 2J / (1 + J), symmetry, bounds), IAA's invariance under
reordering and re-encoding of the masks and its agreement with the CLI's ``score_case``,
and the tracker fed with the *real* paint events of napari Labels layers (undo, data
replacement and mask removal included).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_iaa.agreement import (
    EMPTY_RULES,
    AgreementTracker,
    dice,
    iaa,
    iou,
    pairwise_dice,
    pairwise_iou,
    summarize,
)
from napari_iaa.data import Case


@st.composite
def mask_stacks(draw, min_n=2, max_n=6):
    n = draw(st.integers(min_n, max_n))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    density = draw(st.sampled_from([0.0, 0.05, 0.5, 0.95, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    stack = rng.random((n, h, w)) < density
    if draw(st.booleans()):  # make some masks identical or empty on purpose
        stack[draw(st.integers(0, n - 1))] = stack[0]
        stack[draw(st.integers(0, n - 1))] = False
    return stack


empties = st.sampled_from(EMPTY_RULES)


@settings(max_examples=150, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 10), st.integers(1, 10))), st.data(), empties)
def test_iou_never_exceeds_dice_and_they_determine_each_other(a, data, empty):
    b = data.draw(arrays(bool, a.shape))
    d, j = dice(a, b, empty=empty), iou(a, b, empty=empty)
    if not a.any() and not b.any():
        expected = {"one": 1.0, "zero": 0.0}.get(empty, math.nan)
        assert (math.isnan(d) and math.isnan(j)) if empty == "ignore" else d == j == expected
        return
    assert 0.0 <= j <= d <= 1.0
    assert d == pytest.approx(2 * j / (1 + j), abs=1e-12)
    assert dice(b, a, empty=empty) == d and iou(b, a, empty=empty) == j


@settings(max_examples=120, deadline=None)
@given(mask_stacks(), empties)
def test_pairwise_matrices_symmetric_bounded_and_consistent(stack, empty):
    d = np.asarray(pairwise_dice(stack, empty=empty), float)
    j = np.asarray(pairwise_iou(stack, empty=empty), float)
    np.testing.assert_array_equal(d, d.T)
    np.testing.assert_array_equal(j, j.T)
    finite = np.isfinite(d)
    np.testing.assert_array_equal(finite, np.isfinite(j))
    assert np.all((j[finite] <= d[finite] + 1e-15) & (d[finite] <= 1) & (j[finite] >= 0))
    nonempty = stack.reshape(len(stack), -1).any(1)
    np.testing.assert_array_equal(np.diag(d)[nonempty], 1.0)


@settings(max_examples=120, deadline=None)
@given(mask_stacks(), empties, st.randoms(use_true_random=False))
def test_iaa_permutation_invariant_and_between_pair_extremes(stack, empty, rnd):
    value = iaa(stack, empty=empty)
    order = list(range(len(stack)))
    rnd.shuffle(order)
    again = iaa(stack[order], empty=empty)
    if math.isnan(value):
        assert math.isnan(again)
        return
    assert again == pytest.approx(value, abs=1e-12)
    d = np.asarray(pairwise_dice(stack, empty=empty), float)
    pairs = d[np.triu_indices(len(stack), 1)]
    pairs = pairs[np.isfinite(pairs)]
    assert pairs.min() - 1e-12 <= value <= pairs.max() + 1e-12
    # the same with the masks as a dict keyed by arbitrary ids, in another order
    ids = [f"m{rnd.randrange(10**6)}_{k}" for k in range(len(stack))]
    as_dict = {ids[k]: stack[k] for k in order}
    assert iaa(as_dict, empty=empty) == pytest.approx(value, abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(mask_stacks(), empties, st.integers(1, 3))
def test_iaa_invariant_under_mask_encoding_and_matches_cli_row(stack, empty, enc):
    """Foreground = nonzero: 0/1, 0/255 and label images score like the bool masks, and
    the CLI's ``score_case`` row equals ``iaa`` / ``summarize``."""
    from napari_iaa.scoring import score_case

    encoded = {
        1: stack.astype(np.uint8),
        2: stack.astype(np.uint8) * 255,
        3: stack * (np.arange(stack[0].size).reshape(stack[0].shape) % 5 + 1).astype(np.uint16),
    }[enc]
    value = iaa(stack, empty=empty)
    got = iaa(encoded, empty=empty)
    assert (math.isnan(value) and math.isnan(got)) or got == pytest.approx(value, abs=1e-12)
    ids = [f"A{k}" for k in range(len(stack))]
    case = Case(case_id="c", image=np.zeros(stack.shape[1:], np.uint8),
                masks=dict(zip(ids, stack, strict=True)), raters={i: i for i in ids})
    row = score_case(case, empty=empty)
    stats = summarize(case, empty=empty)
    for v in (row["iaa"], stats.iaa):
        assert (math.isnan(value) and math.isnan(v)) or v == pytest.approx(value, abs=1e-12)


# ----------------------------------------------------------------------------- tracker
@st.composite
def edit_sequences(draw):
    n = draw(st.integers(2, 4))
    h, w = draw(st.integers(4, 16)), draw(st.integers(4, 16))
    seed = draw(st.integers(0, 2**32 - 1))
    ops = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["paint", "erase", "fill", "polygon", "undo", "replace", "stroke"]),
                st.integers(0, n - 1),
                st.integers(0, h - 1),
                st.integers(0, w - 1),
                st.integers(1, 5),
                st.integers(0, 3),
            ),
            min_size=1,
            max_size=10,
        )
    )
    return n, (h, w), seed, ops


def _check(tracker, layers, ids):
    stack = np.stack([np.asarray(layers[m].data) != 0 for m in ids])
    for rule in EMPTY_RULES:
        np.testing.assert_array_equal(tracker.dice_matrix(rule), pairwise_dice(stack, rule))
        np.testing.assert_array_equal(tracker.iou_matrix(rule), pairwise_iou(stack, rule))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edit_sequences())
def test_tracker_follows_real_napari_paint_events(seq):
    """napari Labels layers (no viewer) are edited at random; each ``paint`` event's value
    goes straight into ``update_from_history``; undo and ``layer.data = ...`` (no paint
    event) go through ``recompute`` / ``set_mask``. The tracker equals the recomputed
    matrices after every step."""
    labels_mod = pytest.importorskip("napari.layers")
    n, shape, seed, ops = seq
    rng = np.random.default_rng(seed)
    ids = [f"A{k}" for k in range(n)]
    layers = {m: labels_mod.Labels((rng.random(shape) < 0.4).astype(np.uint8), name=m) for m in ids}
    tracker = AgreementTracker({m: layers[m].data for m in ids})
    for m in ids:
        layers[m].events.paint.connect(
            lambda event, m=m: tracker.update_from_history(m, event.value)
        )
    _check(tracker, layers, ids)
    for op, k, y, x, size, value in ops:
        lay = layers[ids[k]]
        lay.brush_size = size
        if op == "paint":
            lay.paint((y, x), value or 1)
        elif op == "erase":
            lay.paint((y, x), 0)
        elif op == "fill":
            lay.fill((y, x), value)
        elif op == "polygon":
            pts = np.array([[y, x], [min(y + size, shape[0] - 1), x], [y, min(x + size, shape[1] - 1)]])
            lay.paint_polygon(pts, value or 2)
        elif op == "stroke":  # a mouse drag: several dabs, one event at the end
            with lay.block_history():
                for dy in range(3):
                    lay.paint((min(y + dy, shape[0] - 1), x), value)
        elif op == "undo":
            lay.undo()  # no paint event: the documented fallback is a recompute
            tracker.recompute()
        else:  # data replaced wholesale (``layer.data = ...``): no paint event either
            new = (rng.random(shape) < 0.5).astype(np.uint8) * (value + 1)
            lay.data = new
            tracker.set_mask(ids[k], lay.data)
        _check(tracker, layers, ids)
    # removing a mask leaves the others' matrix intact
    tracker.remove_mask(ids[-1])
    _check(tracker, layers, ids[:-1])
