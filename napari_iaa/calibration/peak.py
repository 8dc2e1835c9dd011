"""Case-level then pixel-level isotonic calibration (``peak_isotonic``).

The pixel-wise isotonic map of TwinTrack (:class:`IsotonicCalibrator`) maps a
probability to the mean MHR of all pixels with that probability, pooled over every case.
On data where readers disagree on *whether* a lesion is on an image at all (the end
slices of an LIDC nodule: a quarter of the slices have IAA 0), a pooled map cannot tell a
faint lesion that every reader marked from a clear one that half of them marked, and the
CURVAS thresholded Dice, which scores each case's region above each threshold, suffers.

This calibrator adds one case-level step before it: a second isotonic regression, fitted
on the same calibration cases, from a case's *peak* probability to the peak of its MHR
(the largest fraction of readers who agree on any pixel). Each case's map is scaled so
its peak becomes that expected peak, then the pixel-wise isotonic map (fitted on the
scaled calibration maps) is applied. Both steps are monotone isotonic regressions
(scikit-learn), fitted only on held-out calibration cases; within a case the order of
the pixels never changes.

A "case" is one 2D plane: the peak is taken over the last two axes, so a stack of
slices (N, H, W), or a volume predicted slice by slice, is scaled plane by plane, as it
was fitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_iaa.calibration.calibrators import CALIBRATORS, IsotonicCalibrator

__all__ = ["PeakIsotonicCalibrator", "plane_peaks"]

_TINY = 1e-6


def plane_peaks(p: np.ndarray) -> np.ndarray:
    """The maximum of every 2D plane (over the last two axes); a 2D map gives a scalar array."""
    if p.ndim < 2:
        raise ValueError(f"a map needs at least 2 dimensions, got shape {p.shape}")
    return p.max(axis=(-2, -1))


class PeakIsotonicCalibrator:
    """Isotonic peak rescaling per 2D plane, then the pixel-wise isotonic map.

    Parameters
    ----------
    max_samples : int or None
        Pixels used for the pixel-wise fit (as :class:`IsotonicCalibrator`).
    seed : int
        Seed of that subsampling.
    """

    kind = "peak_isotonic"

    def __init__(self, max_samples: int | None = 2_000_000, seed: int = 0) -> None:
        self.peak = IsotonicCalibrator(max_samples=None)
        self.pixel = IsotonicCalibrator(max_samples=max_samples, seed=seed)
        self.n_cases_: int = 0

    def fit(self, p: Any, target: Any) -> PeakIsotonicCalibrator:
        """Fit on a stack of predicted maps and their MHR maps, both (N, H, W).

        Raises
        ------
        ValueError
            If the shapes differ, a map is not at least 2D, or there are fewer than two planes.
        """
        pf = np.asarray(p, dtype=np.float32)
        tf = np.asarray(target, dtype=np.float32)
        if pf.shape != tf.shape:
            raise ValueError(f"p has shape {pf.shape} but target has shape {tf.shape}")
        peaks_p, peaks_t = np.atleast_1d(plane_peaks(pf)), np.atleast_1d(plane_peaks(tf))
        if peaks_p.size < 2:
            raise ValueError("peak_isotonic needs at least two calibration planes (cases)")
        self.peak.fit(peaks_p, peaks_t)
        self.pixel.fit(self.rescale(pf), tf)
        self.n_cases_ = int(peaks_p.size)
        return self

    def scales(self, p: Any) -> np.ndarray:
        """Per 2D plane of ``p``, the factor that takes its peak to the fitted MHR peak (float32)."""
        peaks = plane_peaks(np.asarray(p, dtype=np.float32)).astype(np.float64)
        want = self.peak.transform(peaks).astype(np.float64)
        return np.where(peaks > _TINY, want / np.maximum(peaks, _TINY), 1.0).astype(np.float32)

    def rescale(self, p: Any) -> np.ndarray:
        """Each plane of ``p`` scaled so that its peak is the fitted expected MHR peak (float32)."""
        arr = np.asarray(p, dtype=np.float32)
        out = arr * self.scales(arr)[..., None, None]
        return np.clip(out, 0.0, 1.0, out=out)

    def transform(self, p: Any) -> np.ndarray:
        """Calibrated probabilities, same shape as ``p`` (float32)."""
        return self.pixel.transform(self.rescale(p))

    __call__ = transform

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description: both isotonic maps."""
        return {"kind": self.kind, "peak": self.peak.to_dict(), "pixel": self.pixel.to_dict(),
                "n_cases": self.n_cases_}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PeakIsotonicCalibrator:
        """Rebuild from :meth:`to_dict` output."""
        obj = cls()
        obj.peak = IsotonicCalibrator.from_dict(d["peak"])
        obj.pixel = IsotonicCalibrator.from_dict(d["pixel"])
        obj.n_cases_ = int(d.get("n_cases", 0))
        return obj


CALIBRATORS[PeakIsotonicCalibrator.kind] = PeakIsotonicCalibrator.from_dict
