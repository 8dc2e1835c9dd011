"""Predictions on a volume: the 2D models slice by slice, aggregated per volume.

The models are trained on 2D images (dermoscopy, CT slices); a volume ``(z, y, x)`` (or
``(z, y, x, 3)``) is cut along its first axis and its slices go through the predictors'
batched ``iter_many`` (the next batch prepared while the current one runs). The results
are put together as follows.

MHR map
    Every slice through the MHR model; the raw and calibrated maps are stacked into
    ``(z, y, x)`` maps of the volume's shape (the empirical MHR and the reliability/ECE
    are computed on the 3D maps, over all voxels).
Predicted IAA of the volume
    The IAA model runs on the *lesion slices*: those where an annotator marked a voxel
    or where the calibrated predicted MHR reaches 0.5 (the predicted majority lesion).
    The volume's IAA is the mean of their per-slice predictions weighted by the
    *predicted lesion area* of each slice, ``w_z = sum of the calibrated MHR over slice
    z`` (the expected area an annotator marks there): slices where the lesion is large
    count more, as they do in a volumetric Dice. Without an MHR model the weights are the
    empirical MHR's sums (the mean area the annotators marked) and the lesion slices are
    the marked ones. When no slice is a lesion slice (nothing marked, nothing predicted)
    the IAA model runs on every slice and the volume's IAA is their plain mean; when the
    weights sum to 0 it is the plain mean over the lesion slices. Slices whose prediction
    failed (NaN) are left out.
Predicted quality of a 3D mask
    The quality model (image + mask -> predicted Dice) runs on every slice where the mask
    has foreground; the mask's quality is the mean of those predictions weighted by the
    mask's area on each slice. (A volume's Dice is its per-slice Dice weighted by
    ``|M_z| + |G_z|``; the unknown reference area ``|G_z|`` is taken as ``|M_z|``.) An empty
    mask has nothing to score: NaN.

Intensities: a volume that is not ``uint8`` (CT in Hounsfield units, MR) is scaled to
[0, 1] with the volume's own minimum and maximum before it is sliced, so that every slice
shares one intensity scale (a 2D image is scaled per image, as before); non-finite voxels
count as 0.

:func:`volume_steps` is a generator that yields ``(done, total, what)`` after every batch
(so a GUI worker can show "slices done / total" and stop between batches) and returns the
:class:`~napari_iaa.predict.result.CasePrediction`; :func:`run_steps` drives it with the
``progress`` / ``should_stop`` callbacks of the batch code.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

import numpy as np

from napari_iaa.data import Case
from napari_iaa.predict.models import ModelSet
from napari_iaa.predict.result import CasePrediction, empirical_values, fill_reliability

__all__ = [
    "LESION_THRESHOLD",
    "Step",
    "VolumeSlices",
    "aggregate_iaa",
    "aggregate_quality",
    "iaa_slices",
    "run_steps",
    "volume_quality",
    "volume_steps",
]

#: ``(slices done, slices in all, what is being predicted)``
Step = tuple[int, int, str]
#: a slice with a calibrated predicted MHR at least this high holds a predicted lesion
LESION_THRESHOLD = 0.5


class VolumeSlices(Sequence[np.ndarray]):
    """The slices of a volume along its first axis, on one intensity scale (lazy).

    ``uint8`` and boolean volumes, and volumes already within [0, 1], are sliced as they
    are; any other is scaled to [0, 1] with the volume's minimum and maximum (non-finite
    voxels count as 0), one slice at a time as it is asked for.
    """

    def __init__(self, volume: np.ndarray) -> None:
        self.volume = np.asarray(volume)
        self.scale: tuple[float, float] | None = None
        v = self.volume
        if v.dtype in (np.uint8, np.bool_) or v.size == 0:
            return
        if np.issubdtype(v.dtype, np.floating) and not np.isfinite(v).all():
            finite = np.isfinite(v)
            lo = min(float(v.min(initial=np.inf, where=finite)), 0.0)
            hi = max(float(v.max(initial=-np.inf, where=finite)), 0.0)
        else:
            lo, hi = float(v.min()), float(v.max())
        if not (lo >= 0.0 and hi <= 1.0):
            self.scale = (lo, hi)

    def __len__(self) -> int:
        return int(self.volume.shape[0])

    def __getitem__(self, z: int) -> np.ndarray:  # type: ignore[override]
        s = self.volume[z]
        if self.scale is None:
            return s
        lo, hi = self.scale
        out = np.nan_to_num(s.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        if hi <= lo:
            return np.zeros_like(out)
        out -= np.float32(lo)
        out /= np.float32(hi - lo)
        return np.clip(out, 0.0, 1.0, out=out)


def iaa_slices(n_slices: int, marked: np.ndarray, mhr_calibrated: np.ndarray | None,
               mhr_empirical: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The slices the IAA model runs on and their weights (see the module's notes).

    Parameters
    ----------
    n_slices
        Number of slices.
    marked
        ``(z,)`` booleans: an annotator marked a voxel of the slice.
    mhr_calibrated, mhr_empirical
        The ``(z, y, x)`` calibrated predicted and empirical MHR maps (either may be None).

    Returns
    -------
    slices : ndarray of int
        Slice indices, ascending.
    weights : ndarray of float
        One weight per slice in ``slices`` (all ones when no slice holds a lesion).
    """
    marked = np.asarray(marked, bool)
    lesion = marked.copy()
    area = np.zeros(n_slices)
    if mhr_calibrated is not None:
        flat = np.asarray(mhr_calibrated).reshape(n_slices, -1)
        area = flat.sum(1, dtype=np.float64)
        lesion |= flat.max(1, initial=0.0) >= LESION_THRESHOLD
    elif mhr_empirical is not None:
        area = np.asarray(mhr_empirical).reshape(n_slices, -1).sum(1, dtype=np.float64)
    if not lesion.any():
        return np.arange(n_slices), np.ones(n_slices)
    idx = np.flatnonzero(lesion)
    return idx, area[idx]


def aggregate_iaa(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean of per-slice IAA (NaN left out; plain mean when the weights sum to 0)."""
    v = np.asarray(values, np.float64)
    w = np.asarray(weights, np.float64)
    ok = np.isfinite(v)
    if not ok.any():
        return float("nan")
    v, w = v[ok], w[ok]
    total = float(w.sum())
    if total > 0.0:
        return float((w * v).sum() / total)
    return float(v.mean())


def aggregate_quality(values: np.ndarray, areas: np.ndarray) -> float:
    """A 3D mask's quality: per-slice quality weighted by the mask's area (NaN: empty)."""
    v = np.asarray(values, np.float64)
    a = np.asarray(areas, np.float64)
    ok = np.isfinite(v) & (a > 0)
    if not ok.any():
        return float("nan")
    return float((a[ok] * v[ok]).sum() / a[ok].sum())


def _mhr_steps(models: ModelSet, slices: VolumeSlices, out: CasePrediction, bs: int,
               count: list[int], total: list[int]) -> Generator[Step, None, None]:
    nz = len(slices)
    raw = cal = None
    z = 0
    for preds in models.mhr.iter_many(slices, batch_size=bs):  # type: ignore[union-attr]
        for p in preds:
            if raw is None:
                raw = np.zeros((nz, *p.raw.shape), np.float32)
                cal = np.zeros((nz, *p.calibrated.shape), np.float32)
            raw[z], cal[z] = p.raw, p.calibrated  # type: ignore[index]
            z += 1
        count[0] += len(preds)
        yield count[0], total[0], "MHR"
    out.mhr_raw, out.mhr_calibrated = raw, cal


def _iaa_steps(models: ModelSet, slices: VolumeSlices, out: CasePrediction, marked: np.ndarray,
               guess: int, bs: int, count: list[int], total: list[int]
               ) -> Generator[Step, None, None]:
    nz = len(slices)
    idx, weights = iaa_slices(nz, marked, out.mhr_calibrated, out.mhr_empirical)
    total[0] += len(idx) - guess  # the lesion slices are known once the MHR map is
    values = np.full(nz, np.nan)
    z = 0
    for preds in models.iaa.iter_many((slices[int(i)] for i in idx),  # type: ignore[union-attr]
                                      batch_size=bs):
        for p in preds:
            values[idx[z]] = p.iaa
            z += 1
        count[0] += len(preds)
        yield count[0], total[0], "IAA"
    out.slice_iaa = values
    out.slice_weights = np.zeros(nz)
    out.slice_weights[idx] = weights
    out.predicted_iaa = aggregate_iaa(values[idx], weights)


def _quality_steps(models: ModelSet, slices: VolumeSlices, masks: dict[str, np.ndarray],
                   areas: dict[str, np.ndarray], out: CasePrediction, bs: int,
                   count: list[int], total: list[int]) -> Generator[Step, None, None]:
    todo = [(mid, int(z)) for mid, a in areas.items() for z in np.flatnonzero(a)]
    per_slice = {mid: np.full(len(a), np.nan) for mid, a in areas.items()}
    pairs: Iterator[tuple[Any, Any]] = ((slices[z], masks[mid][z]) for mid, z in todo)
    k = 0
    for vals in models.quality.iter_many(pairs, batch_size=bs):  # type: ignore[union-attr]
        for v in vals:
            mid, z = todo[k]
            per_slice[mid][z] = v
            k += 1
        count[0] += len(vals)
        yield count[0], total[0], "quality"
    out.slice_quality = per_slice
    out.quality = {mid: aggregate_quality(per_slice[mid], areas[mid]) for mid in areas}


def volume_quality(predictor: Any, image: np.ndarray, masks: dict[str, np.ndarray],
                   batch_size: int = 8) -> dict[str, float]:
    """Predicted quality of 3D masks on a volume, aggregated per mask (module's notes).

    Parameters
    ----------
    predictor
        A :class:`~napari_iaa.models.QualityPredictor`.
    image
        The ``(z, y, x)`` volume.
    masks
        Mask name -> ``(z, y, x)`` mask (labels > 0 count as foreground).

    Returns
    -------
    dict
        Mask name -> area-weighted predicted Dice (NaN for an empty mask).
    """
    slices = VolumeSlices(image)
    nz = len(slices)
    bmasks = {k: np.asarray(m) > 0 for k, m in masks.items()}
    areas = {k: m.reshape(nz, -1).sum(1) for k, m in bmasks.items()}
    out = CasePrediction(case_id="", mask_ids=list(bmasks))
    for _step in _quality_steps(ModelSet(quality=predictor), slices, bmasks, areas, out,
                                max(1, int(batch_size)), [0], [0]):
        pass
    return out.quality


def volume_steps(case: Case, models: ModelSet, empty: str = "zero", n_bins: int = 10,
                 with_ece: bool = True, batch_size: int = 8
                 ) -> Generator[Step, None, CasePrediction]:
    """Predict a volume case slice by slice, yielding ``(done, total, what)`` per batch.

    Parameters
    ----------
    case
        A volume (``case.is_volume``); its masks boolean ``(z, y, x)`` arrays.
    models
        The predictors (any slot may be empty).
    empty
        The empty-pair rule of the empirical IAA.
    n_bins, with_ece
        The reliability curves and multi-rater ECE on the 3D maps (``with_ece``).
    batch_size
        Slices per forward pass.

    Returns
    -------
    CasePrediction
        Returned by the generator (``StopIteration.value``; ``yield from`` gives it). A
        caller that stops iterating stops between batches and gets nothing.
    """
    out = CasePrediction(case_id=str(case.case_id), mask_ids=list(case.mask_ids),
                         raters=dict(case.raters or {}), spacing=case.spacing)
    models.stamp(out)
    out.empirical_iaa, out.loo_dice, out.mhr_empirical = empirical_values(case, empty)
    slices = VolumeSlices(case.image)
    nz, bs = len(slices), max(1, int(batch_size))
    masks = {mid: np.asarray(case.masks[mid], bool) for mid in case.mask_ids}
    areas = {mid: m.reshape(nz, -1).sum(1) for mid, m in masks.items()}
    marked = np.zeros(nz, bool)
    for a in areas.values():
        marked |= a > 0
    guess = (int(marked.sum()) or nz) if models.iaa is not None else 0
    n_quality = sum(int((a > 0).sum()) for a in areas.values()) if models.quality else 0
    count, total = [0], [(nz if models.mhr is not None else 0) + guess + n_quality]
    if models.mhr is not None:
        yield from _mhr_steps(models, slices, out, bs, count, total)
    if models.iaa is not None:
        yield from _iaa_steps(models, slices, out, marked, guess, bs, count, total)
    if models.quality is not None and masks:
        yield from _quality_steps(models, slices, masks, areas, out, bs, count, total)
    if with_ece:
        fill_reliability(out, [masks[m] for m in out.mask_ids], n_bins)
    return out


def run_steps(steps: Generator[Step, None, CasePrediction],
              progress: Callable[[int, int], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> CasePrediction | None:
    """Drive :func:`volume_steps`: ``progress(done, total)`` after every batch.

    Returns the prediction, or None when ``should_stop()`` became true between batches
    (the run ends there).
    """
    try:
        while True:
            done, total, _what = next(steps)
            if progress is not None:
                progress(done, total)
            if should_stop is not None and should_stop():
                steps.close()
                return None
    except StopIteration as stop:
        return stop.value
