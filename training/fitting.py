"""``fit(config)``: read the data, split by group, train with the Trainer, evaluate, save.

Outputs in ``config.out``: ``<name>.safetensors`` + ``<name>.json`` (the best epoch's
model, its card holding the split and the held-out metrics), ``<name>.metrics.json``,
``<name>_reliability.png`` (mhr/calibrate) and ``<name>_state/`` (resumable state).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from napari_iaa.errors import CheckpointError, ConfigError
from training import ddp
from training.config import FitConfig
from training.datasets import CaseCache, MHRTorchDataset, build_cache
from training.engine import Callback, EpochSampler, Trainer
from training.evaluate import _clean, mhr_metrics, predict_mhr, write_metrics
from training.tasks import TASKS, MHRTask, _plot, select_split

__all__ = ["fit", "FitResult", "calibrate", "task_for_card"]

log = logging.getLogger("training")


@dataclass
class FitResult:
    """What a fit produced.

    Attributes
    ----------
    checkpoint_path : Path or None
        The best model's card (``<name>.json``); None if no epoch finished.
    metrics : dict
        Held-out metrics (empty when cancelled before the end).
    cancelled : bool
    history : list of dict
        Per-epoch metrics.
    images_per_second : float
        Training throughput of the loop.
    """

    checkpoint_path: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    images_per_second: float = 0.0
    seconds: float = 0.0


def _stage_progress(progress, offset: float, span: float):
    """Map a sub-stage's (done, total) onto a 0..1000 scale of the whole fit."""
    if progress is None:
        return None

    def cb(done: int, total: int) -> None:
        progress(int(1000 * (offset + span * done / max(1, total))), 1000)

    return cb


class _StepProgress(Callback):
    def __init__(self, fn):
        self.fn = fn

    def on_step(self, trainer, epoch, step, loss):
        self.fn(trainer.global_step, trainer.total_steps)


def task_for_card(card, cache: CaseCache, data: str | Path = ""):
    """A task object able to evaluate a checkpoint with this card."""
    cfg = (card.extra or {}).get("config")
    task_name = card.task
    try:
        config = FitConfig.from_dict({**cfg, "task": task_name, "models": []}) if cfg else None
    except (ConfigError, TypeError):
        config = None
    if config is None:
        config = FitConfig(task=task_name, data=str(data), backbone=card.backbone, size=int(card.input_size[0]))
    config = replace(config, size=int(card.input_size[0]))
    task = TASKS[task_name](config, cache)
    task.mean, task.std = tuple(card.mean), tuple(card.std)
    return task


def fit(
    config: FitConfig,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    callbacks: Sequence[Callback] = (),
) -> FitResult:
    """Train one model (or fit a calibrator) as ``config`` says.

    Parameters
    ----------
    config : FitConfig
    progress : callable, optional
        ``progress(done, total)`` over the whole fit (reading the data, training steps,
        evaluation) on a 0..1000 scale; called from the calling thread.
    should_stop : callable, optional
        Polled while reading data and before every training step. When it returns
        true the fit ends at once; the last good checkpoint (the previous epoch's state
        and best model) is left untouched and returned.
    callbacks : sequence of Callback
        Extra Trainer callbacks (``on_step`` gets epoch, step, loss; ``on_epoch_end`` gets
        the validation metrics). They run in the calling thread and must be thread-safe.

    Returns
    -------
    FitResult
    """
    threads_before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(int(config.threads))
    try:
        return _fit(config, progress, should_stop, callbacks)
    finally:  # process-wide: give the caller (a viewer, a notebook) its setting back
        if config.threads:
            torch.set_num_threads(threads_before)


def _fit(
    config: FitConfig,
    progress: Callable[[int, int], None] | None,
    should_stop: Callable[[], bool] | None,
    callbacks: Sequence[Callback],
) -> FitResult:
    t0 = time.perf_counter()
    from napari_iaa.models.checkpoint import save_checkpoint
    from napari_iaa.models.device import pick_device
    from napari_iaa.models.networks import build_model

    device = pick_device(config.device)
    if config.task == "calibrate":
        return calibrate(config, progress=progress, should_stop=should_stop)
    dist = ddp.setup(device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    stop = should_stop or (lambda: False)
    out = config.out_dir
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)

    task_cls = TASKS[config.task]
    try:
        cache = build_cache(config.data, task_cls.cache_size(config.size), layout=config.layout,
                            empty=config.empty_pair, max_cases=config.max_cases,
                            workers=max(2, config.workers), cache_dir=config.cache_dir,
                            progress=_stage_progress(progress, 0.0, 0.1), should_stop=stop)
    except InterruptedError:
        return FitResult(None, cancelled=True)
    task = task_cls(config, cache)
    split = task.make_split()
    if len(split["train"]) == 0:
        raise ConfigError(f"{config.data}: no training cases left after the split")
    card = task.make_card(split)
    card.extra["train_median"] = getattr(task, "train_median", None)
    card.extra["device"] = str(device)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    model = build_model(card)
    train_ds = task.train_dataset(split["train"])
    if dist.enabled:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(train_ds, num_replicas=dist.world_size, rank=dist.rank,
                                     shuffle=True, seed=config.seed)
    else:
        sampler = EpochSampler(len(train_ds), seed=config.seed)
    loader = DataLoader(train_ds, batch_size=config.batch_size, sampler=sampler,
                        num_workers=config.workers, drop_last=len(train_ds) > config.batch_size,
                        persistent_workers=False, pin_memory=device.type == "cuda")
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    val_idx = split.get("val") or []
    ckpt = out / f"{config.name}"

    def validate(m):
        return task.validate(m, val_idx, device) if val_idx else {}

    def save_best(m, metrics):
        card.metrics = {"val": _clean(metrics)}
        save_checkpoint(m, card, ckpt)

    def save_state_model(m, stem):
        save_checkpoint(m, copy.deepcopy(card), stem)

    cbs: list[Callback] = list(callbacks)
    if progress is not None:
        cbs.append(_StepProgress(_stage_progress(progress, 0.1, 0.85)))
    trainer = Trainer(
        model, opt, loader, task.step, validate if val_idx else None,
        epochs=config.epochs, device=device, callbacks=cbs, should_stop=stop,
        state_dir=config.state_dir, save_model_fn=save_state_model, save_best_fn=save_best,
        monitor=task.monitor if val_idx else "train_loss", mode=task.mode,
        warmup_steps=min(100, max(1, len(loader) // 2)), dist_info=dist, sampler=sampler,
        on_epoch=train_ds.set_epoch, grad_clip=5.0,
    )
    if config.resume:
        resumed = trainer.load_state()
        log.info("resume: %s", f"from epoch {trainer.start_epoch}" if resumed else "no saved state, starting fresh")
    res = trainer.fit()
    best_path = ckpt.with_name(ckpt.name + ".json")
    result = FitResult(best_path if best_path.is_file() else None, cancelled=res.cancelled,
                       history=res.history, images_per_second=res.images_per_second)
    if res.cancelled or not dist.is_main or result.checkpoint_path is None:
        ddp.teardown(dist)
        result.seconds = time.perf_counter() - t0
        return result
    # held-out evaluation of the best epoch's weights
    from napari_iaa.models.checkpoint import load_checkpoint

    best_model, best_card = load_checkpoint(best_path, device=device)
    test_idx = split.get("test") or val_idx
    metrics = task.evaluate(best_model, best_card, cache, test_idx, device,
                            out_png=out / f"{config.name}_reliability.png" if config.task == "mhr" else None)
    if progress is not None:
        progress(1000, 1000)
    metrics = _clean({"split": "test" if split.get("test") else "val", "n_cases": len(test_idx), **metrics,
                      "training": {"epochs": res.epochs_done, "best_epoch": res.best_epoch,
                                   "images_per_second": res.images_per_second, "seconds": res.seconds,
                                   "device": str(device)}})
    best_card.metrics = {**best_card.metrics, "test": metrics}
    save_checkpoint(best_model, best_card, ckpt)
    write_metrics(out / f"{config.name}.metrics.json", metrics)
    ddp.teardown(dist)
    result.metrics = metrics
    result.seconds = time.perf_counter() - t0
    return result


# ----------------------------------------------------------------------------- calibrate
def calibrate(
    config: FitConfig,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FitResult:
    """Fit isotonic (TwinTrack) and temperature calibrators on an MHR model's calibration split.

    The models in ``config.models`` (one, or several averaged as an ensemble) predict on
    the ``calib`` split their card recorded; the isotonic calibrator (saved) and the
    temperature baseline are fitted from the mean probability to the empirical MHR, and
    both are compared with the uncalibrated model on the ``test`` split. The result is a
    new checkpoint ``<out>/<name>`` (a copy of the model, or an ``mhr_ensemble``, with the
    calibrator in its card).
    """
    from napari_iaa.calibration import IsotonicCalibrator, TemperatureCalibrator
    from napari_iaa.models.checkpoint import load_checkpoint, save_checkpoint
    from napari_iaa.models.device import pick_device
    from napari_iaa.models.networks import MHREnsemble

    t0 = time.perf_counter()
    device = pick_device(config.device)
    loaded = [load_checkpoint(p, device=device) for p in config.models]
    cards = [c for _, c in loaded]
    if any(c.task != "mhr" for c in cards):
        raise CheckpointError(f"{config.models}: calibrate needs mhr checkpoints, got tasks {[c.task for c in cards]}")
    base = cards[0]
    if any(tuple(c.input_size) != tuple(base.input_size) for c in cards):
        raise CheckpointError(f"{config.models}: ensemble members must share the input size")
    stop = should_stop or (lambda: False)
    try:
        cache = build_cache(config.data, int(base.input_size[0]), layout=config.layout,
                            empty=config.empty_pair, max_cases=config.max_cases,
                            workers=max(2, config.workers), cache_dir=config.cache_dir,
                            progress=_stage_progress(progress, 0.0, 0.4), should_stop=stop)
    except InterruptedError:
        return FitResult(None, cancelled=True)
    cal_idx = select_split(cache, base.split, "calib")
    test_idx = select_split(cache, base.split, "test")
    if not cal_idx or not test_idx:
        raise ConfigError(
            f"{config.models[0]}: its card records no calib/test groups found in {config.data}; "
            "train the mhr model on this data set first (it carves out the calibration split)")
    models = [m for m, _ in loaded]

    def preds(idx):
        ds = MHRTorchDataset(cache, idx, base.mean, base.std, None, 0, int(base.n_levels or 2))
        return predict_mhr(models, ds, device)

    p_cal, _ = preds(cal_idx)
    if stop():
        return FitResult(None, cancelled=True)
    mhr_cal = np.stack([cache.masks[i].mean(0) for i in cal_idx]).astype(np.float32)
    iso = IsotonicCalibrator().fit(p_cal, mhr_cal)
    temp = TemperatureCalibrator().fit(p_cal, mhr_cal)
    if progress is not None:
        progress(700, 1000)
    p_test, lp_test = preds(test_idx)
    masks = [cache.masks[i] for i in test_idx]
    raters = [cache.raters[i] for i in test_idx]
    before = mhr_metrics(p_test, masks, raters, lp_test if len(models) == 1 else None)
    after = mhr_metrics(iso.transform(p_test), masks, raters, None)
    after_t = mhr_metrics(temp.transform(p_test), masks, raters, None)
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    _plot({"uncalibrated": before["reliability"], "isotonic (TwinTrack)": after["reliability"],
           "temperature": after_t["reliability"]}, out / f"{config.name}_reliability.png", config.name)
    metrics = _clean({
        "split": "test", "n_cases": len(test_idx), "n_calibration_cases": len(cal_idx),
        "members": [str(p) for p in config.models],
        "uncalibrated": before, "isotonic": after, "temperature": after_t,
        "temperature_value": temp.to_dict(),
    })
    if len(models) == 1:
        model = models[0]
        card = copy.deepcopy(base)
    else:
        model = MHREnsemble(models)
        card = copy.deepcopy(base)
        card.architecture = "mhr_ensemble"
        card.options = {"members": [{"backbone": c.backbone, "n_levels": int(c.n_levels or 2), **c.options} for c in cards]}
    card.name = config.name
    card.calibrator = iso.to_dict()
    card.weights = None
    card.weights_sha256 = None
    card.extra = {**(card.extra or {}), "calibrated_from": [str(p) for p in config.models],
                  "calibration": "isotonic regression from mean probability to empirical MHR (TwinTrack)"}
    card.metrics = {**(card.metrics or {}), "calibration_test": metrics}
    save_checkpoint(model, card, out / config.name)
    write_metrics(out / f"{config.name}.metrics.json", metrics)
    if progress is not None:
        progress(1000, 1000)
    path = out / f"{config.name}.json"
    return FitResult(path, metrics=metrics, seconds=time.perf_counter() - t0)


# keep the MHR task importable from here for the GUI
_ = MHRTask
