"""Heavy edits applied in a worker (issue 16): bucket fills, undos and redos of large masks
go through ``live_queue.EditQueue``; later edits queue behind them, in order. Forced here on
small layers (``async_edit_min_work = 0``): after the queue is done, the tracker, votes,
mirrors and MHR equal a recount from the layers, whatever the interleaving."""

from __future__ import annotations

import numpy as np
import pytest

from napari_iaa.agreement import mhr_display, pairwise_dice


def _layers(viewer, n=3, shape=(60, 70)):
    out = []
    for k in range(n):
        d = np.zeros(shape, np.uint8)
        d[8 + 2 * k:40 + k, 10:45 + 3 * k] = 1
        d[20:26, 20:26] = 0  # a hole to fill
        out.append((f"A{k}", viewer.add_labels(d, name=f"A{k}")))
    return out


def _check(live, layers, mhr=None):
    stack = np.stack([np.asarray(lay.data) != 0 for _, lay in layers])
    np.testing.assert_array_equal(live.stack(), stack)
    np.testing.assert_allclose(live.tracker.dice_matrix(), pairwise_dice(stack))
    np.testing.assert_array_equal(live._votes, stack.sum(axis=0))
    if mhr is not None:
        np.testing.assert_allclose(mhr.data, mhr_display(stack.sum(axis=0), len(layers), 1)[1])


@pytest.fixture
def queued(make_napari_viewer, monkeypatch):
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    from napari_iaa.widgets.review.live import LiveAgreement

    viewer = make_napari_viewer()
    layers = _layers(viewer)
    mhr = viewer.add_image(np.zeros((60, 70), np.float32), name="mhr")
    live = LiveAgreement(layers, mhr_layer=mhr, debounce_ms=10)
    live.async_edit_min_work = 0  # every edit goes to the worker
    yield live, layers, mhr
    live.disconnect_all()


def test_fill_and_undo_in_worker_match_a_recount(queued, qtbot):
    live, layers, mhr = queued
    changes = []
    live.changed.connect(changes.append)
    lay = layers[0][1]
    lay.fill((23, 23), 1)  # the hole
    assert live.busy  # the worker has it; the GUI thread did not count it
    qtbot.waitUntil(lambda: not live.busy, timeout=10_000)
    assert changes and "A0" in live.dirty
    _check(live, layers, mhr)
    lay.fill((15, 20), 0)  # erase the whole blob
    lay.undo()
    lay.undo()  # back to the data as opened: the resync runs in the worker too
    qtbot.waitUntil(lambda: not live.resync_pending, timeout=10_000)
    _check(live, layers, mhr)
    assert live.n_resyncs >= 1


def test_edits_queue_behind_a_pending_job_in_order(queued, qtbot):
    """Paints on other layers while a fill is pending join the queue: counts stay exact."""
    live, layers, mhr = queued
    rng = np.random.default_rng(1)
    layers[1][1].fill((23, 23), 1)
    for _ in range(12):
        _, lay = layers[int(rng.integers(3))]
        lay.brush_size = int(rng.integers(2, 9))
        lay.paint((int(rng.integers(60)), int(rng.integers(70))), int(rng.integers(0, 2)))
    layers[2][1].fill((30, 30), 0)
    qtbot.waitUntil(lambda: not live.busy, timeout=10_000)
    _check(live, layers, mhr)


def test_flush_applies_queued_edits_at_once(queued):
    """Saving (and an explicit resync) applies what is queued on the calling thread."""
    live, layers, mhr = queued
    layers[0][1].fill((23, 23), 1)
    layers[1][1].fill((23, 23), 1)
    live.resync()  # flushes the queue first, then compares
    _check(live, layers)


def test_undo_back_to_baseline_clears_unsaved(queued, qtbot):
    live, layers, _ = queued
    live.baseline = {mid: np.asarray(lay.data).copy() for mid, lay in layers}
    lay = layers[2][1]
    lay.fill((23, 23), 1)
    qtbot.waitUntil(lambda: not live.busy, timeout=10_000)
    assert "A2" in live.dirty
    lay.undo()
    qtbot.waitUntil(lambda: not live.resync_pending, timeout=10_000)
    assert "A2" not in live.dirty  # equal to the baseline again: no unsaved edits
    _check(live, layers)
