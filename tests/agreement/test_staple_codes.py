"""STAPLE on the code histogram equals SimpleITK's ``STAPLEImageFilter`` (to rounding).

``staple()`` runs ITK's EM on the annotator-set code histogram for up to 16 masks; the
filter itself stays the reference (``engine="simpleitk"``). Rounding: ITK adds its sums
pixel by pixel, the histogram code by code, so values agree to ~1e-8, not bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_iaa.agreement import _kernels, staple
from napari_iaa.agreement._staple import code_lookup

_PATHS = [True, False] if _kernels.AVAILABLE else [False]


def _raters(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> list[np.ndarray]:
    """A blob and ``n`` raters who each miss or add a different share of pixels."""
    truth = rng.random(shape) < rng.uniform(0.05, 0.5)
    out = []
    for _ in range(n):
        m = truth.copy()
        m ^= rng.random(shape) < rng.uniform(0.0, 0.3)
        out.append(m)
    return out


def _assert_same(a, b) -> None:
    np.testing.assert_allclose(a.sensitivity, b.sensitivity, rtol=0, atol=1e-7)
    np.testing.assert_allclose(a.specificity, b.specificity, rtol=0, atol=1e-7)
    np.testing.assert_allclose(a.probability, b.probability, rtol=0, atol=1e-6)
    assert a.probability.dtype == b.probability.dtype == np.float32
    assert np.array_equal(a.consensus, b.consensus)


@pytest.mark.parametrize("compiled", _PATHS)
def test_histogram_staple_equals_simpleitk_on_random_raters(monkeypatch, compiled):
    monkeypatch.setattr(_kernels, "AVAILABLE", compiled)
    rng = np.random.default_rng(7)
    for _ in range(40):
        n = int(rng.integers(2, 10))
        shape = tuple(int(s) for s in rng.integers(3, 70, size=int(rng.integers(2, 4))))
        masks = _raters(rng, n, shape)
        _assert_same(staple(masks), staple(masks, engine="simpleitk"))


@pytest.mark.parametrize("compiled", _PATHS)
def test_histogram_staple_follows_the_filters_options(monkeypatch, compiled):
    """The iteration limit stops at the same step; the confidence weight scales the prior
    as ITK's does; 0/255 uint8 masks and integer labels read as nonzero = marked."""
    monkeypatch.setattr(_kernels, "AVAILABLE", compiled)
    rng = np.random.default_rng(3)
    masks = _raters(rng, 5, (60, 80))
    for it in (1, 2, 3, 5):
        _assert_same(staple(masks, max_iterations=it),
                     staple(masks, max_iterations=it, engine="simpleitk"))
    for cw in (0.5, 1.7):
        _assert_same(staple(masks, confidence_weight=cw),
                     staple(masks, confidence_weight=cw, engine="simpleitk"))
    u8 = [m.astype(np.uint8) * 255 for m in masks]
    labels = [m.astype(np.int32) * 3 for m in masks]
    ref = staple(masks, engine="simpleitk")
    _assert_same(staple(u8), ref)
    _assert_same(staple(labels), ref)
    assert not np.array_equal(staple(masks, max_iterations=1).probability,
                              staple(masks).probability)


def test_histogram_staple_on_a_large_case_with_many_masks():
    """16 masks (the histogram's most) on a picture big enough for the parallel histogram;
    17 masks take SimpleITK's filter."""
    rng = np.random.default_rng(11)
    masks = _raters(rng, 16, (1100, 1000))
    _assert_same(staple(masks), staple(masks, engine="simpleitk"))
    seventeen = _raters(rng, 17, (20, 30))
    _assert_same(staple(seventeen), staple(seventeen, engine="simpleitk"))


@pytest.mark.parametrize("compiled", _PATHS)
def test_code_lookup_reads_every_mask_at_every_pixel(monkeypatch, compiled):
    monkeypatch.setattr(_kernels, "AVAILABLE", compiled)
    rng = np.random.default_rng(5)
    masks = [rng.random((37, 9001)) < 0.4 for _ in range(11)]  # not a multiple of a block
    masks[3] = masks[3].astype(np.uint8) * 200
    table = rng.random(1 << 11).astype(np.float32)
    code = sum((np.asarray(m) != 0).astype(np.int64) << i for i, m in enumerate(masks))
    assert np.array_equal(code_lookup(masks, table), table[code])


def test_staple_rejects_an_unknown_engine_and_no_iterations():
    from napari_iaa.errors import ConfigError

    masks = [np.eye(3, dtype=bool), np.ones((3, 3), bool)]
    with pytest.raises(ConfigError, match="engine"):
        staple(masks, engine="itk")
    with pytest.raises(ConfigError, match="max_iterations"):
        staple(masks, max_iterations=0)
