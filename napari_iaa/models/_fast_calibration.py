"""A model card's calibrator, and a fast evaluator of isotonic calibration for large maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_iaa._jit import njit as _njit
from napari_iaa._jit import numba
from napari_iaa.calibration import IsotonicCalibrator, calibrator_from_dict
from napari_iaa.errors import CheckpointError
from napari_iaa.models._fast_resize import up_rows, upsample_args, v_row
from napari_iaa.models.card import ModelCard

__all__ = ["PiecewiseLinearLUT", "isotonic_lut", "load_calibrator", "upsample_calibrated"]


def load_calibrator(card: ModelCard, source: str | Path = "<card>") -> Any | None:
    """The card's calibrator object, or None. Raises CheckpointError naming ``source``."""
    if card.calibrator is None:
        return None
    try:
        return calibrator_from_dict(card.calibrator)
    except ValueError as exc:
        raise CheckpointError(f"{source}: invalid calibrator in model card: {exc}") from exc



class PiecewiseLinearLUT:
    """``np.interp(p, x, y)`` for float32 maps in one compiled pass, without a search per pixel.

    [0, 1] is cut into ``cells`` equal cells. In a cell that holds no knot the function is
    one segment, whose slope, knot, value and bounds a table gives; a map is smooth, so
    the next pixels mostly lie strictly inside the same segment and need no look-up at all.
    Either way the value is np.interp's own arithmetic (float64: ``slope * (p - x[j]) +
    y[j]``, rounded to float32). Pixels in the few cells that hold a knot, and values outside
    [0, 1] or NaN, take np.interp's full rules (the last knot at or before ``p``, the
    knot's value where ``p`` is a knot, ``y[0]`` / ``y[-1]`` outside the knots). The values
    are the isotonic calibrator's ``np.interp`` ones bit for bit. Without numba it is
    ``np.interp``.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, cells: int = 1 << 14) -> None:
        self.x = np.ascontiguousarray(x, np.float64)
        self.y = np.ascontiguousarray(y, np.float64)
        if self.x.ndim != 1 or self.x.size < 2 or self.x.shape != self.y.shape:
            raise ValueError("a piecewise-linear map needs at least 2 knots and as many values")
        self.cells = int(cells)
        if self.cells < 1 or self.cells & (self.cells - 1):
            raise ValueError(f"cells must be a power of two, got {cells}")
        with np.errstate(divide="ignore", invalid="ignore"):  # np.interp's slopes
            self.slope = np.diff(self.y) / np.diff(self.x)
        # ``cells`` is a power of two, so ``p * cells`` and the cells' starts are exact
        starts = np.arange(self.cells, dtype=np.float64) / self.cells
        last = np.searchsorted(self.x, starts, side="right") - 1  # -1: before the first knot
        #: per cell, the last knot at or before its start (0 before the first): where the
        #: full rules start their search
        self.seg = np.maximum(last, 0).astype(np.int32)
        #: per cell: holds a knot (its pixels take np.interp's full rules)
        held = np.floor(self.x[(self.x >= 0.0) & (self.x < 1.0)] * self.cells).astype(np.int64)
        self.special = np.zeros(self.cells, np.bool_)
        self.special[held] = True
        # per knot-free cell, its segment's slope, knot and value; before the first knot
        # and after the last, a flat segment at y[0] / y[-1] (slope 0: the same value)
        n = self.x.size
        j = np.clip(last, 0, n - 1)
        flat = (last < 0) | (last >= n - 1)
        self.cell_slope = np.where(flat, 0.0, self.slope[np.minimum(j, n - 2)])
        self.cell_x = self.x[j]
        self.cell_y = np.where(last < 0, self.y[0], self.y[j])
        # the segment's open bounds: a pixel strictly inside them needs no look-up
        self.cell_lo = np.where(last < 0, -np.inf, self.x[j])
        self.cell_hi = np.where(last < 0, self.x[0],
                                np.where(last >= n - 1, np.inf, self.x[np.minimum(j + 1, n - 1)]))
        #: np.interp stays within the values' range, so with values in [0, 1] no clip is needed
        self.bounded = bool(self.y.min() >= 0.0 and self.y.max() <= 1.0)

    def tables(self) -> tuple[Any, ...]:
        """What the compiled kernels take (see :func:`interp_span`)."""
        return (self.x, self.y, self.slope, self.seg, self.special, self.cell_slope, self.cell_x,
                self.cell_y, self.cell_lo, self.cell_hi, np.float64(self.cells))

    def __call__(self, p: np.ndarray, scale: float | None = None) -> np.ndarray:
        """The map of ``p`` (float32, same shape).

        With ``scale``, of ``clip(p * scale, 0, 1)`` (float32), in the same pass: the
        peak calibrator's rescaling of a 2D map.
        """
        p = np.asarray(p, np.float32)
        if _lut_kernel is None or p.size == 0:
            if scale is not None:
                p = np.clip(p * np.float32(scale), 0.0, 1.0)
            return np.interp(p.astype(np.float64), self.x, self.y).astype(np.float32)
        flat = np.ascontiguousarray(p).reshape(-1)
        out = np.empty(flat.shape, np.float32)
        _lut_kernel(flat, out, *self.tables(), np.float32(1.0 if scale is None else scale))
        return out.reshape(p.shape)


if numba is not None:

    @_njit
    def interp_span(vals, out, x, y, slope, seg, special, cell_slope, cell_x, cell_y, cell_lo,
                    cell_hi, cells, scale):  # pragma: no cover - compiled
        """``out[i] = np.interp(vals[i], x, y)`` (float64 arithmetic, float32 result).

        ``scale`` != 1 first takes each value to ``clip(vals[i] * scale, 0, 1)`` in float32
        (the peak calibrator's rescaling; NaN stays NaN). The segment of the last pixel
        that took a cell's table is kept (``lo < v < hi``: no look-up); the cell index is
        unsigned, so the look-ups carry no negative-index wrap-around; np.interp's full
        rules are written out here rather than called (a call passing arrays costs
        reference counting, ~100 ns, per pixel).
        """
        rescale = scale != np.float32(1.0)
        last = x.size - 1
        x_first = x[0]
        x_last = x[last]
        top = 1.0 - 1.0 / cells  # the last cell's start
        lo = np.inf  # the kept segment: none yet
        hi = -np.inf
        s = 0.0
        xb = 0.0
        yb = 0.0
        for i in range(vals.size):
            v32 = vals[i]
            if rescale:
                v32 = v32 * scale
                v32 = np.float32(0.0) if v32 < 0.0 else (np.float32(1.0) if v32 > 1.0 else v32)
            v = np.float64(v32)
            if lo < v and v < hi:  # the kept segment
                out[i] = np.float32(s * (v - xb) + yb)
                continue
            if v >= 0.0 and v < 1.0:
                c = np.uint32(v * cells)
                if not special[c]:  # one segment in this cell: keep it
                    lo = cell_lo[c]
                    hi = cell_hi[c]
                    s = cell_slope[c]
                    xb = cell_x[c]
                    yb = cell_y[c]
                    out[i] = np.float32(s * (v - xb) + yb)
                    continue
            # np.interp's rules: the last knot at or before v, searched from the cell's
            # (which lies at or before the cell's start, so at or before v)
            if v >= x_first and v < x_last:
                j = seg[np.uint32(min(v, top) * cells)] if v >= 0.0 else 0
                while x[j + 1] <= v:
                    j += 1
                if x[j] == v:
                    r = y[j]
                else:
                    r = slope[j] * (v - x[j]) + y[j]
                    if np.isnan(r):  # np.interp: try from the other end, then a flat step
                        r = slope[j] * (v - x[j + 1]) + y[j + 1]
                        if np.isnan(r) and y[j] == y[j + 1]:
                            r = y[j]
            elif v >= x_last:
                r = y[last]
            elif v < x_first:
                r = y[0]
            else:  # NaN
                r = v
            out[i] = np.float32(r)

    _lut_kernel = interp_span  # :meth:`PiecewiseLinearLUT.__call__` over a flat map

    @_njit
    def _up_lut_kernel(src, y0, wy0, wy1, x0, wx0, wx1, raw, cal, x, y, slope, seg, special,
                       cell_slope, cell_x, cell_y, cell_lo, cell_hi,
                       cells):  # pragma: no cover - compiled
        """:func:`upsample_map`'s rows, each calibrated while it is still in cache."""
        width = raw.shape[1]
        ha = np.empty(width, np.float32)
        hb = np.empty(width, np.float32)
        held = np.full(2, -1, np.int64)
        for oy in range(raw.shape[0]):
            up_rows(src, y0, x0, wx0, wx1, oy, ha, hb, held)
            v_row(wy0[oy], ha, wy1[oy], hb, raw[oy])
            interp_span(raw[oy], cal[oy], x, y, slope, seg, special, cell_slope, cell_x,
                        cell_y, cell_lo, cell_hi, cells, np.float32(1.0))

else:  # pragma: no cover
    _lut_kernel = None
    _up_lut_kernel = None


def upsample_calibrated(small: np.ndarray, shape: tuple[int, int], lut: PiecewiseLinearLUT
                        ) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`upsample_map` and ``lut`` of its result in one pass: ``(raw, calibrated)``.

    Each enlarged row is calibrated while it is still in cache, so the raw map is never
    read back from memory; the values are those of ``lut(upsample_map(small, shape))``
    bit for bit. None where :func:`upsample_map` gives None.
    """
    args = upsample_args(small, shape) if _up_lut_kernel is not None else None
    if args is None:
        return None
    raw = np.empty(shape, np.float32)
    cal = np.empty(shape, np.float32)
    _up_lut_kernel(*args, raw, cal, *lut.tables())
    return raw, cal


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


