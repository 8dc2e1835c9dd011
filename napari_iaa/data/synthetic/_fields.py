"""Smooth random fields and small mask helpers for the synthetic lesions."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["fill_holes", "sigmoid", "smooth_field"]


@lru_cache(maxsize=256)
def _interp_taps(n_out: int, cell: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Gaussian interpolation taps from a coarse grid (spacing ``cell`` px) to ``n_out`` px.

    Returns the indices and weights, each (7, n_out), and the coarse grid size.
    """
    n_in = int(np.ceil(n_out / cell)) + 6
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) / cell + 3.0
    base = np.floor(pos).astype(np.int64)
    idx = base[None, :] + np.arange(-3, 4)[:, None]
    w = np.exp(-0.5 * ((pos[None, :] - idx) / 0.85) ** 2)
    w /= w.sum(axis=0, keepdims=True)
    return idx, w.astype(np.float32), n_in


@lru_cache(maxsize=256)
def _linear_taps(n_out: int, factor: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos = np.clip((np.arange(n_out) + 0.5) / factor - 0.5, 0, n_in - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (pos - i0).astype(np.float32)
    return i0, i1, w1


def _upsample_linear(small: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling by gathers (cheaper than ``ndimage.zoom``)."""
    y0, y1, wy = _linear_taps(shape[0], factor, small.shape[0])
    x0, x1, wx = _linear_taps(shape[1], factor, small.shape[1])
    rows = small[y0] * (1 - wy)[:, None] + small[y1] * wy[:, None]
    return rows[:, x0] * (1 - wx)[None, :] + rows[:, x1] * wx[None, :]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions that do not touch the image border (one labelling pass)."""
    from scipy import ndimage

    lab, n = ndimage.label(~mask)
    if n == 0:
        return mask
    keep = np.zeros(n + 1, dtype=bool)
    for edge in (lab[0], lab[-1], lab[:, 0], lab[:, -1]):
        keep[edge] = True
    keep[0] = False
    return ~keep[lab]


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Zero-mean, unit-std smooth random field with features about ``cell`` pixels wide.

    Separable Gaussian interpolation of coarse white noise, done with gathers (no BLAS, so
    it stays fast on a busy machine).
    """
    cell = round(max(float(cell), 1.0), 2)
    f_down = int(cell // 4)
    if f_down >= 2:  # smooth enough to build at lower resolution, then bilinear zoom
        small = (-(-shape[0] // f_down), -(-shape[1] // f_down))
        fs = smooth_field(rng, small, cell / f_down)
        return _upsample_linear(fs, f_down, shape)
    iy, wy, ny = _interp_taps(shape[0], cell)
    ix, wx, nx = _interp_taps(shape[1], cell)
    g = rng.standard_normal((ny, nx)).astype(np.float32)
    cols = np.zeros((nx, shape[0]), np.float32)  # first pass along y, transposed
    gt = np.ascontiguousarray(g.T)
    for k in range(iy.shape[0]):
        cols += gt[:, iy[k]] * wy[k][None, :]
    f = np.zeros((shape[1], shape[0]), np.float32)  # second pass along x, row gathers
    for k in range(ix.shape[0]):
        f += cols[ix[k]] * wx[k][:, None]
    f = np.ascontiguousarray(f.T)
    s = float(f.std())
    return (f - f.mean()) / (s if s > 0 else 1.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


