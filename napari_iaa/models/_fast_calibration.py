"""A model card's calibrator, and a fast evaluator of isotonic calibration for large maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_iaa._jit import njit as _njit
from napari_iaa._jit import numba
from napari_iaa.calibration import IsotonicCalibrator, calibrator_from_dict
from napari_iaa.errors import CheckpointError
from napari_iaa.models.card import ModelCard

__all__ = ["PiecewiseLinearLUT", "isotonic_lut", "load_calibrator"]


def load_calibrator(card: ModelCard, source: str | Path = "<card>") -> Any | None:
    """The card's calibrator object, or None. Raises CheckpointError naming ``source``."""
    if card.calibrator is None:
        return None
    try:
        return calibrator_from_dict(card.calibrator)
    except ValueError as exc:
        raise CheckpointError(f"{source}: invalid calibrator in model card: {exc}") from exc



class PiecewiseLinearLUT:
    """``np.interp(p, x, y)`` for float32 ``p``, without a search per pixel.

    [0, 1] is cut into ``cells`` equal cells; in a cell without a knot the function is
    one straight line (value at the cell's start + fraction x rise over the cell), so a
    pixel costs two table look-ups. Pixels in the few cells that hold a knot fall back to
    ``np.interp``, and so does any ``p`` outside [0, 1] (or NaN). Same values as the
    isotonic calibrator up to float32 rounding (~1e-7).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, cells: int = 1 << 16) -> None:
        self.x = np.asarray(x, np.float64)
        self.y = np.asarray(y, np.float64)
        self.cells = int(cells)
        edges = np.arange(self.cells + 2, dtype=np.float64) / self.cells
        fe = np.interp(edges, self.x, self.y)  # one spare cell so that p == 1 needs no clamp
        self.start = fe[:-1].astype(np.float32)
        self.rise = np.diff(fe).astype(np.float32)
        over = (self.start + self.rise) > 1.0  # float32 rounding at the top
        self.rise[over] = np.float32(1.0) - self.start[over]
        #: every output is start + (fraction < 1) x rise, so these bounds make it stay in
        #: [0, 1] and a clip unnecessary
        self.bounded = bool(
            self.y.min() >= 0.0 and self.y.max() <= 1.0 and (self.start >= 0).all()
            and (self.rise >= 0).all() and ((self.start + self.rise) <= 1.0).all()
        )
        knot_cells = np.floor(self.x * self.cells).astype(np.int64)
        knot = np.zeros(self.cells + 1, bool)  # +-1 cell guards against rounding at edges
        inside = (knot_cells >= -1) & (knot_cells <= self.cells + 1)
        for d in (-1, 0, 1):
            knot[np.clip(knot_cells[inside] + d, 0, self.cells)] = True
        self.knot = knot

    def __call__(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, np.float32)
        if p.size and _lut_kernel is not None:  # one compiled pass (range check included)
            flat = np.ascontiguousarray(p).reshape(-1)
            out = np.empty(flat.shape, np.float32)
            slow = np.empty(flat.size, np.intp)  # pages only touched for knot-cell pixels
            k = _lut_kernel(flat, np.float32(self.cells), self.start, self.rise, self.knot, out,
                            slow)
            if k >= 0:
                if k:
                    idx = slow[:k]
                    out[idx] = np.interp(flat[idx].astype(np.float64), self.x, self.y)
                return out.reshape(p.shape)
        if p.size == 0 or not (p.min() >= 0.0 and p.max() <= 1.0):  # also catches NaN
            return np.interp(p.astype(np.float64), self.x, self.y).astype(np.float32)
        flat = np.ascontiguousarray(p).reshape(-1)
        out = np.empty(flat.shape, np.float32)
        step = 1 << 14  # chunks: the temporaries stay in cache and are not page-faulted anew
        for i in range(0, flat.size, step):
            pc = flat[i:i + step]
            q = pc * np.float32(self.cells)  # exact: cells is a power of two
            cf = np.floor(q)
            q -= cf  # fraction of the cell
            c = cf.astype(np.intp)
            oc = out[i:i + step]
            np.take(self.rise, c, out=oc)
            oc *= q
            oc += np.take(self.start, c)
            slow = np.take(self.knot, c)
            if slow.any():
                oc[slow] = np.interp(pc[slow].astype(np.float64), self.x, self.y)
        return out.reshape(p.shape)


if numba is not None:

    @_njit
    def _lut_kernel(flat, cells, start, rise, knot, out, slow):  # pragma: no cover - compiled
        """The table look-up of :meth:`PiecewiseLinearLUT.__call__` in one pass.

        The same float32 operations in the same order as the numpy version (``q = p *
        cells``, ``q -= floor(q)``, ``rise[c] * q + start[c]`` rounded after each step),
        so the results are identical; pixels in knot cells are listed in ``slow``
        (their count is returned) and left to ``np.interp``. Returns -1 at the first value
        outside [0, 1] or NaN (the caller then takes ``np.interp`` for all).
        """
        n_slow = 0
        for i in range(flat.size):
            v = flat[i]
            if not (v >= 0.0 and v <= 1.0):
                return -1
            q = v * cells
            cf = np.floor(q)
            c = np.intp(cf)
            if knot[c]:
                slow[n_slow] = i
                n_slow += 1
            else:
                out[i] = rise[c] * (q - cf) + start[c]
        return n_slow

else:  # pragma: no cover
    _lut_kernel = None


_LUTS: dict[int, tuple[Any, PiecewiseLinearLUT]] = {}


def isotonic_lut(calibrator: object) -> PiecewiseLinearLUT | None:
    """A fast evaluator of a fitted isotonic calibrator (cached per thresholds), else None."""
    if not isinstance(calibrator, IsotonicCalibrator):
        return None
    x, y = calibrator.x_, calibrator.y_
    if x is None or y is None or np.size(x) < 2:
        return None
    hit = _LUTS.get(id(calibrator))
    if hit is not None and hit[0][0] is x and hit[0][1] is y:
        return hit[1]
    if len(_LUTS) > 32:
        _LUTS.clear()
    lut = PiecewiseLinearLUT(x, y)
    _LUTS[id(calibrator)] = ((x, y), lut)
    return lut


