"""Post-hoc calibrators from a predicted probability to the empirical MHR.

Both are JSON-safe: ``to_dict()`` gives plain numbers and :func:`calibrator_from_dict`
rebuilds them without pickle (the isotonic map is stored as its thresholds and applied
with ``np.interp``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "IsotonicCalibrator",
    "TemperatureCalibrator",
    "IdentityCalibrator",
    "calibrator_from_dict",
    "CALIBRATORS",
]

_EPS = 1e-6


def _flat_pair(p: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=np.float64).ravel()
    t = np.asarray(target, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise ValueError(f"p has {p.size} values but target has {t.size}")
    ok = np.isfinite(p) & np.isfinite(t)
    p, t = p[ok], t[ok]
    if p.size == 0:
        raise ValueError("no finite (p, target) pairs to fit a calibrator on")
    return np.clip(p, 0.0, 1.0), np.clip(t, 0.0, 1.0)


def _subsample(
    p: np.ndarray, t: np.ndarray, max_samples: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if max_samples is None or p.size <= max_samples:
        return p, t
    idx = np.random.default_rng(seed).choice(p.size, size=int(max_samples), replace=False)
    return p[idx], t[idx]


class IsotonicCalibrator:
    """Monotone map p -> E[MHR | p] (scikit-learn ``IsotonicRegression``, clipped).

    Parameters
    ----------
    max_samples : int or None
        Fit on at most this many pixels, drawn with a seeded RNG (millions of pixels are
        common); None uses all.
    seed : int
        Seed of the subsampling.
    """

    kind = "isotonic"

    def __init__(self, max_samples: int | None = 2_000_000, seed: int = 0) -> None:
        self.max_samples = max_samples
        self.seed = seed
        self.x_: np.ndarray | None = None
        self.y_: np.ndarray | None = None
        self.n_fit_: int = 0

    def fit(self, p: Any, target: Any) -> IsotonicCalibrator:
        """Fit on predicted probabilities ``p`` and soft targets (MHR) of the same shape."""
        from sklearn.isotonic import IsotonicRegression

        pf, tf = _subsample(*_flat_pair(p, target), self.max_samples, self.seed)
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        iso.fit(pf, tf)
        self.x_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
        self.y_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        self.n_fit_ = int(pf.size)
        return self

    def transform(self, p: Any) -> np.ndarray:
        """Calibrated probabilities, same shape as ``p`` (float32)."""
        if self.x_ is None or self.y_ is None:
            raise RuntimeError("IsotonicCalibrator is not fitted")
        arr = np.asarray(p, dtype=np.float64)
        if self.x_.size == 1:
            out = np.full(arr.shape, self.y_[0])
        else:
            out = np.interp(arr, self.x_, self.y_)
        return np.asarray(out, dtype=np.float32)

    __call__ = transform

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description (kind, thresholds)."""
        if self.x_ is None or self.y_ is None:
            raise RuntimeError("IsotonicCalibrator is not fitted")
        return {
            "kind": self.kind,
            "x": [float(v) for v in self.x_],
            "y": [float(v) for v in self.y_],
            "n_fit": self.n_fit_,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IsotonicCalibrator:
        """Rebuild from :meth:`to_dict` output."""
        x = np.asarray(d["x"], dtype=np.float64)
        y = np.asarray(d["y"], dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape or x.size == 0:
            raise ValueError("isotonic calibrator needs non-empty 'x' and 'y' of equal length")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))) or np.any(np.diff(x) < 0):
            raise ValueError("isotonic 'x' must be finite and sorted, 'y' finite")
        obj = cls()
        obj.x_, obj.y_ = x, np.clip(y, 0.0, 1.0)
        obj.n_fit_ = int(d.get("n_fit", 0))
        return obj


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class TemperatureCalibrator:
    """Temperature scaling: ``sigmoid(logit(p) / T)`` with T minimising BCE to the MHR.

    Parameters
    ----------
    max_samples : int or None
        Subsample size for the fit (seeded); None uses all.
    seed : int
        Seed of the subsampling.
    bounds : (float, float)
        Search interval of T (bounded scalar minimisation).
    """

    kind = "temperature"

    def __init__(
        self,
        max_samples: int | None = 2_000_000,
        seed: int = 0,
        bounds: tuple[float, float] = (0.05, 20.0),
    ) -> None:
        self.max_samples = max_samples
        self.seed = seed
        self.bounds = bounds
        self.temperature: float | None = None

    def fit(self, p: Any, target: Any) -> TemperatureCalibrator:
        """Fit T on predicted probabilities and soft targets (MHR) of the same shape."""
        from scipy.optimize import minimize_scalar

        pf, tf = _subsample(*_flat_pair(p, target), self.max_samples, self.seed)
        z = _logit(pf)

        def bce(log_t: float) -> float:
            q = np.clip(_sigmoid(z / np.exp(log_t)), _EPS, 1.0 - _EPS)
            return float(-np.mean(tf * np.log(q) + (1.0 - tf) * np.log1p(-q)))

        lo, hi = np.log(self.bounds[0]), np.log(self.bounds[1])
        res = minimize_scalar(bce, bounds=(lo, hi), method="bounded", options={"xatol": 1e-5})
        self.temperature = float(np.exp(res.x))
        return self

    def transform(self, p: Any) -> np.ndarray:
        """Calibrated probabilities, same shape as ``p`` (float32)."""
        if self.temperature is None:
            raise RuntimeError("TemperatureCalibrator is not fitted")
        arr = np.asarray(p, dtype=np.float64)
        return _sigmoid(_logit(arr) / self.temperature).astype(np.float32)

    __call__ = transform

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description (kind, temperature)."""
        if self.temperature is None:
            raise RuntimeError("TemperatureCalibrator is not fitted")
        return {"kind": self.kind, "temperature": float(self.temperature)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TemperatureCalibrator:
        """Rebuild from :meth:`to_dict` output."""
        t = float(d["temperature"])
        if not np.isfinite(t) or t <= 0:
            raise ValueError(f"temperature must be a positive number, got {t}")
        obj = cls()
        obj.temperature = t
        return obj


class IdentityCalibrator:
    """No-op calibrator (``transform`` returns p as float32)."""

    kind = "identity"

    def fit(self, p: Any, target: Any) -> IdentityCalibrator:
        """Nothing to fit."""
        return self

    def transform(self, p: Any) -> np.ndarray:
        """Return ``p`` as float32."""
        return np.asarray(p, dtype=np.float32)

    __call__ = transform

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": "identity"}``."""
        return {"kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IdentityCalibrator:
        """Rebuild."""
        return cls()


#: kind -> from_dict constructor (``peak_isotonic`` adds itself from :mod:`.peak`)
CALIBRATORS: dict[str, Callable[[dict[str, Any]], Any]] = {
    IsotonicCalibrator.kind: IsotonicCalibrator.from_dict,
    TemperatureCalibrator.kind: TemperatureCalibrator.from_dict,
    IdentityCalibrator.kind: IdentityCalibrator.from_dict,
}


def calibrator_from_dict(d: dict[str, Any]) -> Any:
    """Rebuild a calibrator from its ``to_dict()``.

    Raises
    ------
    ValueError
        If the kind is unknown or the values are invalid.
    """
    if not isinstance(d, dict) or "kind" not in d:
        raise ValueError("calibrator must be an object with a 'kind'")
    make = CALIBRATORS.get(d["kind"])
    if make is None:
        raise ValueError(f"unknown calibrator kind {d['kind']!r} (known: {sorted(CALIBRATORS)})")
    try:
        return make(d)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"invalid {d['kind']} calibrator: {exc}") from exc
