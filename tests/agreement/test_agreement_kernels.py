"""The compiled (numba) counting kernels give exactly what the numpy path gives."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from napari_iaa.agreement import AgreementTracker, _counts, _kernels

pytestmark = pytest.mark.skipif(not _kernels.AVAILABLE, reason="numba not available")


def _reference(masks):
    return np.array([[np.count_nonzero((a != 0) & (b != 0)) for b in masks] for a in masks])


def _masks(n, size, dtype, seed):
    rng = np.random.default_rng(seed)
    base = rng.random(size) < 0.5
    out = []
    for i in range(n):
        m = base.copy()
        m[rng.random(size) < 0.1 * (i % 3)] ^= True  # mostly agreeing, some disagreement
        if dtype == "bool":
            out.append(m)
        elif dtype == "uint8":  # any nonzero byte is foreground, including 0x80 and 0xFF
            out.append((m * rng.choice(np.array([1, 2, 127, 128, 255], np.uint8), size)).astype(np.uint8))
        else:  # int8 with negative labels
            out.append((m * rng.choice(np.array([-128, -1, 1, 127], np.int8), size)).astype(np.int8))
    if n > 2:
        out[-1] = np.ones(size, out[0].dtype)  # a full mask: all-annotator words
    return out


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 15, 16])
@pytest.mark.parametrize("dtype", ["bool", "uint8", "int8"])
@pytest.mark.parametrize("size", [1, 7, 8, 4096 * 3 + 5])
def test_compiled_histogram_matches_reference(n, dtype, size):
    masks = _masks(n, size, dtype, seed=n * 31 + size)
    counts, inter = _counts.pairwise_counts(masks, threads=1)
    ref = _reference(masks)
    np.testing.assert_array_equal(inter, ref)
    np.testing.assert_array_equal(counts, np.diag(ref))


@pytest.mark.parametrize("threads", [2, 3])
def test_compiled_histogram_split_over_threads(monkeypatch, threads):
    monkeypatch.setattr(_counts, "_PARALLEL_MIN_PIXELS", 0)
    masks = _masks(12, 4096 * 5 + 3, "uint8", seed=threads)
    _, inter = _counts.pairwise_counts(masks, threads=threads)
    np.testing.assert_array_equal(inter, _reference(masks))


def test_compiled_and_numpy_paths_agree_on_2d_images(monkeypatch):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:301, :203]  # 61,103 pixels: several blocks and an odd tail
    masks = [((yy - 150) ** 2 + (xx - 100) ** 2 < (60 + 5 * i) ** 2) for i in range(15)]
    for m in masks:
        m[rng.random(m.shape) < 0.02] ^= True
    compiled = _counts.pairwise_counts(masks)
    monkeypatch.setattr(_kernels, "AVAILABLE", False)
    fallback = _counts.pairwise_counts(masks)
    np.testing.assert_array_equal(compiled[1], fallback[1])


def _random_edit(rng, masks, shape):
    """One edit as napari would report it: applied to the array, returned as a call."""
    k = int(rng.integers(len(masks)))
    kind = rng.integers(4)
    if kind == 0:  # pixel list (napari < 0.8), repeated pixels allowed
        idx = tuple(rng.integers(0, s, 40) for s in shape)
        old = masks[k][idx].copy()
        value = int(rng.integers(0, 3))
        masks[k][idx] = value
        return ("update", k, idx, value, old)
    starts = [int(rng.integers(0, s)) for s in shape]
    stops = [int(rng.integers(a + 1, s + 1)) for a, s in zip(starts, shape, strict=True)]
    steps = [int(rng.integers(1, 3)) for _ in shape]
    box = tuple(slice(a, b, st) for a, b, st in zip(starts, stops, steps, strict=True))
    if kind == 1:  # masked box, scalar value (a brush dab)
        rm = rng.random(masks[k][box].shape) < 0.6
        old = masks[k][box][rm].copy()
        view = masks[k][box]
        view[rm] = 1
        masks[k][box] = view
        return ("region", k, box, old, 1, rm)
    if kind == 2:  # whole box, new values read back from the mask
        old = masks[k][box].copy()
        masks[k][box] = rng.integers(0, 2, old.shape).astype(masks[k].dtype)
        return ("region", k, box, old, None, None)
    rm = rng.random(masks[k][box].shape) < 0.5  # masked box, array of new values
    old = masks[k][box][rm].copy()
    new = rng.integers(0, 4, int(rm.sum())).astype(masks[k].dtype)
    view = masks[k][box]
    view[rm] = new
    masks[k][box] = view
    return ("region", k, box, old, new, rm)


def _apply(tracker, call):
    if call[0] == "update":
        _, k, idx, value, old = call
        tracker.update(str(k), idx, value, old)
    else:
        _, k, box, old, new, rm = call
        tracker.update_region(str(k), box, old, new, region_mask=rm)


@pytest.mark.parametrize("shape", [(37, 53), (3, 11, 17)])
@pytest.mark.parametrize("dtype", [np.uint8, np.bool_])
def test_tracker_compiled_path_equals_numpy_path(monkeypatch, shape, dtype):
    rng = np.random.default_rng(len(shape))
    masks = [(rng.random(shape) < 0.4).astype(dtype) for _ in range(5)]
    twin = [m.copy() for m in masks]
    fast = AgreementTracker({str(i): m for i, m in enumerate(masks)})
    slow = AgreementTracker({str(i): m for i, m in enumerate(twin)})
    for _ in range(60):
        state = rng.bit_generator.state
        call = _random_edit(rng, masks, shape)
        rng.bit_generator.state = state
        twin_call = _random_edit(rng, twin, shape)
        _apply(fast, call)
        monkeypatch.setattr(_kernels, "AVAILABLE", False)
        _apply(slow, twin_call)
        monkeypatch.setattr(_kernels, "AVAILABLE", True)
        ref = _reference(masks)
        np.testing.assert_array_equal(fast.intersections, ref)
        np.testing.assert_array_equal(slow.intersections, ref)


def _ball(shape, center, r, radii_scale=(1.0, 1.0, 1.0)):
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    d = sum(((g - c) * k) ** 2 for g, c, k in zip(grids, center, radii_scale, strict=True))
    return d <= r * r


@pytest.mark.parametrize("chunk", [1, 7, 1 << 16])
@pytest.mark.parametrize("dtype", [np.uint8, np.bool_])
def test_3d_box_edits_compiled_chunked_and_numpy_agree(monkeypatch, chunk, dtype):
    """Balls, slice discs and whole-volume fills (box edits of a 3D volume) through the
    compiled box update, with its changed pixels gathered in chunks of any size, equal the
    numpy path and a recount."""
    rng = np.random.default_rng(chunk)
    shape = (9, 23, 31)
    masks = [_ball(shape, (4, 11, 15), 5 + i, (2.0, 1.0, 1.0)).astype(dtype) for i in range(4)]
    twin = [m.copy() for m in masks]
    fast = AgreementTracker({str(i): m for i, m in enumerate(masks)})
    fast.edit_chunk = chunk
    slow = AgreementTracker({str(i): m for i, m in enumerate(twin)})
    for step in range(40):
        k = int(rng.integers(4))
        kind = step % 4
        if kind == 0:  # a ball (3D brush), masked box
            c = [int(rng.integers(0, s)) for s in shape]
            sel = _ball(shape, c, int(rng.integers(1, 6)))
        elif kind == 1:  # a disc in one slice (2D brush in a 3D layer)
            sel = np.zeros(shape, bool)
            sel[int(rng.integers(shape[0]))] = _ball(
                shape[1:] + (1,), (rng.integers(shape[1]), rng.integers(shape[2]), 0), 4)[..., 0]
        elif kind == 2:  # fill of everything holding the clicked value (3D bucket)
            sel = (masks[k] != 0) == bool(rng.integers(2))
        else:  # erase a slab
            sel = np.zeros(shape, bool)
            sel[:, 5:9, :] = True
        value = 0 if kind == 3 else int(rng.integers(0, 2))
        idx = np.nonzero(sel)
        if idx[0].size == 0:
            continue
        box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx)
        rm = sel[box]
        whole = bool(rm.all())
        for arrays, tracker, compiled in ((masks, fast, True), (twin, slow, False)):
            monkeypatch.setattr(_kernels, "AVAILABLE", compiled)
            old = arrays[k][box].copy()
            view = arrays[k][box]
            view[rm] = value
            if whole:
                tracker.update_region(str(k), box, old, value)
            else:
                tracker.update_region(str(k), box, old[rm], value, region_mask=rm)
        monkeypatch.setattr(_kernels, "AVAILABLE", True)
        ref = _reference(masks)
        np.testing.assert_array_equal(fast.intersections, ref)
        np.testing.assert_array_equal(slow.intersections, _reference(twin))
        np.testing.assert_array_equal(ref, _reference(twin))


def test_numba_can_be_switched_off_by_environment():
    env = dict(os.environ, NAPARI_IAA_NUMBA="0")
    out = subprocess.run(
        [sys.executable, "-c", "from napari_iaa.agreement import _kernels; print(_kernels.AVAILABLE)"],
        env=env, capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "False"


def test_kernels_work_without_a_writable_cache(monkeypatch):
    """numba refuses ``cache=True`` when no cache folder is writable: compile per process."""
    import importlib

    import numba

    real = numba.njit

    def njit(*args, **kw):
        if kw.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return real(*args, **kw)

    monkeypatch.setattr(numba, "njit", njit)
    try:
        importlib.reload(_kernels)
        assert _kernels.AVAILABLE
        masks = _masks(3, 1000, "uint8", seed=9)
        np.testing.assert_array_equal(_counts.pairwise_counts(masks)[1], _reference(masks))
    finally:
        monkeypatch.undo()
        importlib.reload(_kernels)
