"""The ``calibrate`` task: post-hoc calibration of trained MHR models (TwinTrack).

The models in ``config.models`` (one, or several averaged as an ensemble) predict on the
``calib`` split their card recorded; TwinTrack's isotonic calibrator, the peak + isotonic
one (:class:`napari_iaa.calibration.PeakIsotonicCalibrator`) and a temperature baseline
are fitted from the mean probability to the empirical MHR, and all are compared with the
uncalibrated model on the ``test`` split, with the pooled metrics and the CURVAS
challenge's (``"curvas"`` in each, :func:`training.metrics.curvas_metrics`). The card gets
``config.calibrator`` (isotonic unless asked).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_iaa.data import atomic_write_json, json_safe
from napari_iaa.errors import CheckpointError, ConfigError
from training.config import FitConfig
from training.datasets import CaseCache, MHRTorchDataset, build_cache
from training.inference import predict_mhr
from training.metrics import mhr_metrics, mhr_summary, plot_reliability_curves
from training.results import FitResult, stage_progress
from training.tasks.base import select_split

__all__ = ["calibrate"]


def calibrate(
    config: FitConfig,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FitResult:
    """Fit the calibrators on an MHR model's calibration split; the card gets ``config.calibrator``.

    Parameters
    ----------
    config : FitConfig
        ``config.models``: the trained mhr checkpoints (several: an ensemble).
    progress, should_stop : callable, optional
        As for :func:`training.fit`.

    Returns
    -------
    FitResult
        Its checkpoint is a new ``<out>/<name>`` (a copy of the model, or an
        ``mhr_ensemble``, with the isotonic calibrator in its card).
    """
    from napari_iaa.calibration import (
        IsotonicCalibrator,
        PeakIsotonicCalibrator,
        TemperatureCalibrator,
    )
    from napari_iaa.models.device import pick_device

    t0 = time.perf_counter()
    device = pick_device(config.device)
    models, cards = _load_members(config, device)
    stop = should_stop or (lambda: False)
    try:
        cache = build_cache(config.data, int(cards[0].input_size[0]), layout=config.layout,
                            empty=config.empty_pair, max_cases=config.max_cases,
                            workers=max(2, config.workers), cache_dir=config.cache_dir,
                            progress=stage_progress(progress, 0.0, 0.4), should_stop=stop)
    except InterruptedError:
        return FitResult(None, cancelled=True)
    cal_idx, test_idx = _calibration_split(config, cache, cards[0])

    def preds(idx: list[int]) -> tuple[np.ndarray, np.ndarray | None]:
        base = cards[0]
        ds = MHRTorchDataset(cache, idx, base.mean, base.std, None, 0, int(base.n_levels or 2))
        return predict_mhr(models, ds, device)

    p_cal, _ = preds(cal_idx)
    if stop():
        return FitResult(None, cancelled=True)
    mhr_cal = np.stack([cache.masks[i].mean(0) for i in cal_idx]).astype(np.float32)
    fitted = {"isotonic": IsotonicCalibrator().fit(p_cal, mhr_cal)}
    try:
        fitted["peak_isotonic"] = PeakIsotonicCalibrator().fit(p_cal, mhr_cal)
    except ValueError as exc:  # e.g. one calibration case: nothing to learn a peak map from
        if config.calibrator == "peak_isotonic":
            raise ConfigError(f"{config.models[0]}: cannot fit the peak_isotonic calibrator on "
                              f"{len(cal_idx)} calibration case(s): {exc}") from exc
    fitted["temperature"] = TemperatureCalibrator().fit(p_cal, mhr_cal)
    if progress is not None:
        progress(700, 1000)
    metrics = _compare_on_test(config, cache, test_idx, preds, fitted, single=len(models) == 1)
    metrics = json_safe({"split": "test", "n_cases": len(test_idx),
                         "n_calibration_cases": len(cal_idx),
                         "members": [str(p) for p in config.models], **metrics,
                         "shipped": config.calibrator,
                         "temperature_value": fitted["temperature"].to_dict()})
    path = _save_calibrated(config, models, cards, fitted[config.calibrator], metrics)
    if progress is not None:
        progress(1000, 1000)
    return FitResult(path, metrics=metrics, seconds=time.perf_counter() - t0)


def _load_members(config: FitConfig, device: Any) -> tuple[list[Any], list[Any]]:
    """The mhr models to calibrate and their cards (one input size for all)."""
    from napari_iaa.models.checkpoint import load_checkpoint

    loaded = [load_checkpoint(p, device=device) for p in config.models]
    cards = [c for _, c in loaded]
    if any(c.task != "mhr" for c in cards):
        raise CheckpointError(f"{config.models}: calibrate needs mhr checkpoints, "
                              f"got tasks {[c.task for c in cards]}")
    if any(tuple(c.input_size) != tuple(cards[0].input_size) for c in cards):
        raise CheckpointError(f"{config.models}: ensemble members must share the input size")
    return [m for m, _ in loaded], cards


def _calibration_split(config: FitConfig, cache: CaseCache, card: Any) -> tuple[list[int], list[int]]:
    """The calib and test cases the first member's card recorded."""
    cal_idx = select_split(cache, card.split, "calib")
    test_idx = select_split(cache, card.split, "test")
    if not cal_idx or not test_idx:
        raise ConfigError(
            f"{config.models[0]}: its card records no calib/test groups found in {config.data}; "
            "train the mhr model on this data set first (it carves out the calibration split)")
    return cal_idx, test_idx


#: the reliability plot's label of each fitted calibrator
_LABELS = {"isotonic": "isotonic (TwinTrack)", "peak_isotonic": "peak + isotonic",
           "temperature": "temperature"}


def _compare_on_test(config: FitConfig, cache: CaseCache, test_idx: list[int], preds: Callable,
                     fitted: dict[str, Any], single: bool) -> dict[str, Any]:
    """Metrics of the uncalibrated map and of each fitted calibrator's on the test split (+ PNG)."""
    p_test, lp_test = preds(test_idx)
    masks = [cache.masks[i] for i in test_idx]
    raters = [cache.raters[i] for i in test_idx]
    shapes = [cache.shapes[i] for i in test_idx] if cache.shapes else None
    blocks = {"uncalibrated": mhr_metrics(p_test, masks, raters, lp_test if single else None, shapes=shapes)}
    for kind, cal in fitted.items():
        blocks[kind] = mhr_metrics(cal.transform(p_test), masks, raters, None, shapes=shapes)
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    plot_reliability_curves({_LABELS.get(k, k): b["reliability"] for k, b in blocks.items()},
                            out / f"{config.name}_reliability.png", config.name)
    return {"summary": mhr_summary(blocks), **blocks}


def _save_calibrated(config: FitConfig, models: list[Any], cards: list[Any], calibrator: Any,
                     metrics: dict[str, Any]) -> Path:
    """Write the calibrated checkpoint (model or ensemble + calibrator) and its metrics."""
    from napari_iaa.models.checkpoint import save_checkpoint
    from napari_iaa.models.networks import MHREnsemble

    card = copy.deepcopy(cards[0])
    if len(models) == 1:
        model = models[0]
    else:
        model = MHREnsemble(models)
        card.architecture = "mhr_ensemble"
        card.options = {"members": [{"backbone": c.backbone, "n_levels": int(c.n_levels or 2),
                                     **c.options} for c in cards]}
    card.name = config.name
    card.calibrator = calibrator.to_dict()
    card.weights = None
    card.weights_sha256 = None
    how = ("isotonic regression from mean probability to empirical MHR (TwinTrack)"
           if calibrator.kind == "isotonic" else
           "each image's map scaled so its peak is the expected peak MHR (isotonic regression "
           "of peak MHR on peak probability), then isotonic regression from probability to "
           "empirical MHR (TwinTrack's map)")
    card.extra = {**(card.extra or {}), "calibrated_from": [str(p) for p in config.models],
                  "calibration": how}
    card.metrics = {**(card.metrics or {}), "calibration_test": metrics}
    out = config.out_dir
    save_checkpoint(model, card, out / config.name)
    atomic_write_json(out / f"{config.name}.metrics.json", metrics)
    return out / f"{config.name}.json"
