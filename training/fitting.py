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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from napari_iaa.data import atomic_write_json, json_safe
from napari_iaa.errors import ConfigError
from training import ddp
from training.advice import run_advice, temperature_advice
from training.config import FitConfig
from training.datasets import CaseCache, build_cache
from training.engine import Callback, EpochSampler, ProgressCallback, Trainer, TrainerResult
from training.results import FitResult, stage_progress
from training.tasks import TASKS, Task, calibrate

__all__ = ["FitResult", "fit"]

log = logging.getLogger("training")

Progress = Callable[[int, int], None]


@dataclass
class _Run:
    """One fit's pieces, passed between the named steps of :func:`_fit`."""

    config: FitConfig
    device: torch.device
    dist: ddp.DistInfo
    cache: CaseCache
    task: Task
    split: dict[str, list[int]]
    card: Any
    warnings: list[str]

    @property
    def stem(self) -> Path:
        """``<out>/<name>``: the best model's checkpoint without suffix."""
        return self.config.out_dir / f"{self.config.name}"


def fit(
    config: FitConfig,
    progress: Progress | None = None,
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
        if config.task == "calibrate":
            return _calibrate(config, progress, should_stop, callbacks)
        return _fit(config, progress, should_stop, callbacks)
    finally:  # process-wide: give the caller (a viewer, a notebook) its setting back
        if config.threads:
            torch.set_num_threads(threads_before)


def _warn(messages: list[str], callbacks: Sequence[Callback]) -> None:
    """Log the run's warnings and hand them to the callbacks (the dock shows them)."""
    for msg in messages:
        log.warning("warning: %s", msg)
    if messages:
        for cb in callbacks:
            cb.on_advice(list(messages))


def _calibrate(config: FitConfig, progress: Progress | None,
               should_stop: Callable[[], bool] | None, callbacks: Sequence[Callback]) -> FitResult:
    """The calibrate task, with a warning when temperature scaling ends at its bound."""
    from napari_iaa.calibration import TemperatureCalibrator

    result = calibrate(config, progress=progress, should_stop=should_stop)
    fitted = (result.metrics or {}).get("temperature_value") or {}
    if "temperature" in fitted:
        msg = temperature_advice(float(fitted["temperature"]), TemperatureCalibrator().bounds)
        if msg:
            result.warnings.append(msg)
            _warn([msg], callbacks)
    return result


def _fit(
    config: FitConfig,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    callbacks: Sequence[Callback],
) -> FitResult:
    t0 = time.perf_counter()
    stop = should_stop or (lambda: False)
    device, dist = _setup_device(config)
    try:
        run = _prepare(config, device, dist, progress, stop)
    except InterruptedError:
        return FitResult(None, cancelled=True)
    if dist.is_main:
        _warn(run.warnings, callbacks)
    res = _train(run, progress, stop, callbacks)
    best_path = run.stem.with_name(run.stem.name + ".json")
    result = FitResult(best_path if best_path.is_file() else None, cancelled=res.cancelled,
                       history=res.history, images_per_second=res.images_per_second,
                       warnings=list(run.warnings))
    if not (res.cancelled or not dist.is_main or result.checkpoint_path is None):
        result.metrics = _evaluate_best(run, res, best_path)
        if progress is not None:
            progress(1000, 1000)
    ddp.teardown(dist)
    result.seconds = time.perf_counter() - t0
    return result


def _setup_device(config: FitConfig) -> tuple[torch.device, ddp.DistInfo]:
    """The device (one GPU per process under torchrun) and the process group."""
    from napari_iaa.models.device import pick_device

    device = pick_device(config.device)
    dist = ddp.setup(device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    if dist.is_main:
        config.out_dir.mkdir(parents=True, exist_ok=True)
    return device, dist


def _prepare(config: FitConfig, device: torch.device, dist: ddp.DistInfo,
             progress: Progress | None, stop: Callable[[], bool]) -> _Run:
    """Read the data (first 10% of the progress), split it and write the run's card."""
    task_cls = TASKS[config.task]
    cache = build_cache(config.data, task_cls.cache_size(config.size), layout=config.layout,
                        empty=config.empty_pair, max_cases=config.max_cases,
                        workers=max(2, config.workers), cache_dir=config.cache_dir,
                        progress=stage_progress(progress, 0.0, 0.1), should_stop=stop)
    task = task_cls(config, cache)
    split = task.make_split()
    if len(split["train"]) == 0:
        raise ConfigError(f"{config.data}: no training cases left after the split")
    card = task.make_card(split)
    if config.task == "mhr":
        card.options = {**card.options, "decoder_width": int(config.decoder_width)}
    card.extra["train_median"] = task.train_median
    card.extra["device"] = str(device)
    sizes = {k: (len(v), len({cache.groups[i] if cache.groups[i] is not None else f"__case_{i}"
                              for i in v})) for k, v in split.items()}
    warnings = run_advice(config, sizes)
    if warnings:
        card.extra["warnings"] = warnings
    return _Run(config, device, dist, cache, task, split, card, warnings)


def _loader(run: _Run, train_ds: Any) -> tuple[DataLoader, Any]:
    """The training DataLoader and its sampler (distributed under torchrun)."""
    config = run.config
    if run.dist.enabled:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(train_ds, num_replicas=run.dist.world_size,
                                     rank=run.dist.rank, shuffle=True, seed=config.weights_seed)
    else:
        sampler = EpochSampler(len(train_ds), seed=config.weights_seed)
    loader = DataLoader(train_ds, batch_size=config.batch_size, sampler=sampler,
                        num_workers=config.workers, drop_last=len(train_ds) > config.batch_size,
                        persistent_workers=False, pin_memory=run.device.type == "cuda")
    return loader, sampler


def _train(run: _Run, progress: Progress | None, stop: Callable[[], bool],
           callbacks: Sequence[Callback]) -> TrainerResult:
    """Build the model and the Trainer (steps: 10% to 95% of the progress) and run it."""
    from napari_iaa.models.checkpoint import save_checkpoint
    from napari_iaa.models.networks import build_model

    config, task, card = run.config, run.task, run.card
    torch.manual_seed(config.weights_seed)
    np.random.seed(config.weights_seed)
    model = build_model(card)
    if config.task == "iaa" and config.iaa_weight == 0:  # diagnosis-only: IAA head untouched
        for p in model.iaa_head.parameters():  # (no gradient, and no AdamW weight decay)
            p.requires_grad_(False)
    train_ds = task.train_dataset(run.split["train"])
    loader, sampler = _loader(run, train_ds)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    val_idx = run.split.get("val") or []

    def validate(m):
        return task.validate(m, val_idx, run.device)

    def save_best(m, metrics):
        card.metrics = {"val": json_safe(metrics)}
        save_checkpoint(m, card, run.stem)

    def save_state_model(m, stem):
        save_checkpoint(m, copy.deepcopy(card), stem)

    cbs: list[Callback] = list(callbacks)
    step_progress = stage_progress(progress, 0.1, 0.85)
    if step_progress is not None:
        cbs.append(ProgressCallback(step_progress))
    trainer = Trainer(
        model, opt, loader, task.step, validate if val_idx else None,
        epochs=config.epochs, device=run.device, callbacks=cbs, should_stop=stop,
        state_dir=config.state_dir, save_model_fn=save_state_model, save_best_fn=save_best,
        monitor=(config.monitor or task.monitor) if val_idx else "train_loss",
        mode="max" if (config.monitor or "").endswith("accuracy") else task.mode,
        warmup_steps=min(100, max(1, len(loader) // 2)), dist_info=run.dist, sampler=sampler,
        on_epoch=train_ds.set_epoch, grad_clip=5.0,
    )
    if config.resume:
        resumed = trainer.load_state()
        log.info("resume: %s", f"from epoch {trainer.start_epoch}" if resumed
                 else "no saved state, starting fresh")
    return trainer.fit()


def _evaluate_best(run: _Run, res: TrainerResult, best_path: Path) -> dict[str, Any]:
    """Held-out metrics of the best epoch's weights, written into its card and a JSON file."""
    from napari_iaa.models.checkpoint import load_checkpoint, save_checkpoint

    config, out = run.config, run.config.out_dir
    best_model, best_card = load_checkpoint(best_path, device=run.device)
    test_idx = run.split.get("test") or run.split.get("val") or []
    png = out / f"{config.name}_reliability.png" if config.task == "mhr" else None
    metrics = run.task.evaluate(best_model, best_card, run.cache, test_idx, run.device,
                                out_png=png)
    metrics = json_safe({
        "split": "test" if run.split.get("test") else "val", "n_cases": len(test_idx),
        **metrics,
        "training": {"epochs": res.epochs_done, "best_epoch": res.best_epoch,
                     "images_per_second": res.images_per_second, "seconds": res.seconds,
                     "device": str(run.device)}})
    best_card.metrics = {**best_card.metrics, "test": metrics}
    save_checkpoint(best_model, best_card, run.stem)
    atomic_write_json(out / f"{config.name}.metrics.json", metrics)
    return metrics
