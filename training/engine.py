"""One training loop for every task, with callbacks, cancellation, checkpoints and resume.

The :class:`Trainer` knows nothing about the tasks: a task gives it a model, a data
loader, a ``step_fn(model, batch) -> loss`` and a ``validate_fn(model) -> metrics``.

Files it writes (rank 0 only), all atomically (``napari_iaa.data.atomic_write_json``;
folders under a temporary name, then ``os.replace``):

- ``state_dir/epoch-NNNN/`` with ``model.safetensors`` (+ whatever ``save_model_fn``
  writes), ``optimizer.safetensors`` (optimizer tensors), ``state.json`` (epoch, step,
  best metric, optimizer scalars and param groups). The folder is complete before
  ``state_dir/latest.json`` is switched to it, so an interruption at any moment leaves the
  previous epoch's state intact and loadable. No pickles anywhere.
- the best model through ``save_best_fn(model, metrics)``.

Cancellation: ``should_stop()`` is polled before every step; when it returns true the loop
ends at once, without writing a partial epoch, so the last good checkpoint stays.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from napari_iaa.data import atomic_write_json
from training import ddp
from training.callbacks import (
    Callback,
    HistoryCallback,
    ProgressCallback,
    QueueCallback,
    TrainerResult,
)
from training.state import latest_state_dir, load_optimizer_state, save_optimizer_state

__all__ = [
    "Callback",
    "ProgressCallback",
    "QueueCallback",
    "HistoryCallback",
    "Trainer",
    "TrainerResult",
    "latest_state_dir",
    "EpochSampler",
]


def _default_save_model(model: torch.nn.Module, stem: Path) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(stem) + ".safetensors")


class EpochSampler(torch.utils.data.Sampler):
    """Shuffles ``range(n)`` with a permutation that depends only on ``(seed, epoch)``.

    Unlike a DataLoader generator, a resumed run gets the same order as an uninterrupted
    one. Call :meth:`set_epoch` (the Trainer does) before every epoch.
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True):
        self.n = int(n)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


# ----------------------------------------------------------------------------- trainer
class Trainer:
    """The training loop shared by every task.

    Parameters
    ----------
    model : torch.nn.Module
        The network (not yet wrapped; DDP wrapping happens here when distributed).
    optimizer : torch.optim.Optimizer
    train_loader : Iterable
        Yields batches (dicts of tensors, tuples or tensors).
    step_fn : callable
        ``step_fn(model, batch) -> loss`` (a scalar tensor); ``batch`` is already on the
        device.
    validate_fn : callable, optional
        ``validate_fn(model) -> dict`` of metrics on rank 0 (the plain module, eval mode).
    epochs : int
    device : torch.device
    callbacks : sequence of Callback
    should_stop : callable, optional
        Polled before every step.
    state_dir : Path, optional
        Where the resumable per-epoch state goes (rank 0 only). None: nothing written.
    save_model_fn : callable, optional
        ``save_model_fn(model, stem)`` writes the model as ``stem.safetensors`` (+ card).
    save_best_fn : callable, optional
        ``save_best_fn(model, metrics)`` when ``monitor`` improves.
    monitor, mode : str
        Metric chosen for "best" and whether lower (``"min"``) or higher is better.
    amp : bool, optional
        Mixed precision; default: only on CUDA.
    channels_last : bool, optional
        Default: only on CUDA.
    lr_schedule : {"cosine", "constant"}
    warmup_steps : int
    grad_clip : float, optional
    dist_info : ddp.DistInfo, optional
    sampler : optional
        A sampler with ``set_epoch`` (DistributedSampler).
    on_epoch : callable, optional
        ``on_epoch(epoch)`` before each epoch (e.g. ``dataset.set_epoch``).
    batch_size_fn : callable, optional
        Number of images in a batch (for images/s); default: first dimension.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        train_loader: Iterable,
        step_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
        validate_fn: Callable[[torch.nn.Module], dict[str, float]] | None = None,
        *,
        epochs: int = 1,
        device: torch.device | str = "cpu",
        callbacks: Sequence[Callback] = (),
        should_stop: Callable[[], bool] | None = None,
        state_dir: Path | None = None,
        save_model_fn: Callable[[torch.nn.Module, Path], None] | None = None,
        save_best_fn: Callable[[torch.nn.Module, dict[str, float]], None] | None = None,
        monitor: str = "val_loss",
        mode: str = "min",
        amp: bool | None = None,
        channels_last: bool | None = None,
        lr_schedule: str = "cosine",
        warmup_steps: int = 0,
        grad_clip: float | None = None,
        dist_info: ddp.DistInfo | None = None,
        sampler: Any = None,
        on_epoch: Callable[[int], None] | None = None,
        batch_size_fn: Callable[[Any], int] | None = None,
    ):
        self.device = torch.device(device)
        self.dist = dist_info or ddp.DistInfo()
        cuda = self.device.type == "cuda"
        self.amp = cuda if amp is None else (amp and cuda)
        self.channels_last = cuda if channels_last is None else (channels_last and cuda)
        self.raw_model = model.to(self.device)
        if self.channels_last:
            self.raw_model = self.raw_model.to(memory_format=torch.channels_last)
        self.model = ddp.wrap_model(self.raw_model, self.dist, self.device)
        self.optimizer = optimizer
        self.train_loader = train_loader
        self.step_fn = step_fn
        self.validate_fn = validate_fn
        self.epochs = int(epochs)
        self.callbacks = list(callbacks)
        self.should_stop = should_stop or (lambda: False)
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.save_model_fn = save_model_fn or _default_save_model
        self.save_best_fn = save_best_fn
        self.monitor = monitor
        self.mode = mode
        self.lr_schedule = lr_schedule
        self.warmup_steps = int(warmup_steps)
        self.grad_clip = grad_clip
        self.sampler = sampler
        self.on_epoch = on_epoch
        self.batch_size_fn = batch_size_fn
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        try:
            self.steps_per_epoch = len(train_loader)  # type: ignore[arg-type]
        except TypeError:
            self.steps_per_epoch = 0
        self.total_steps = self.steps_per_epoch * self.epochs
        self.global_step = 0
        self.start_epoch = 0
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.history: list[dict[str, float]] = []
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None

    # ------------------------------------------------------------------ schedule
    def _set_lr(self) -> None:
        s = self.global_step
        if self.warmup_steps and s < self.warmup_steps:
            f = (s + 1) / self.warmup_steps
        elif self.lr_schedule == "cosine" and self.total_steps > self.warmup_steps:
            t = (s - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
            f = 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
            f = 0.02 + 0.98 * f
        else:
            f = 1.0
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * f

    def _to_device(self, batch: Any) -> Any:
        if torch.is_tensor(batch):
            t = batch.to(self.device, non_blocking=True)
            if self.channels_last and t.dim() == 4 and t.is_floating_point():
                t = t.contiguous(memory_format=torch.channels_last)
            return t
        if isinstance(batch, dict):
            return {k: self._to_device(v) for k, v in batch.items()}
        if isinstance(batch, list | tuple):
            return type(batch)(self._to_device(v) for v in batch)
        return batch

    def _batch_size(self, batch: Any) -> int:
        if self.batch_size_fn is not None:
            return int(self.batch_size_fn(batch))
        if isinstance(batch, dict):
            batch = next(iter(batch.values()))
        if isinstance(batch, list | tuple):
            batch = batch[0]
        return int(batch.shape[0]) if torch.is_tensor(batch) else 1

    def _improved(self, value: float) -> bool:
        if value is None or not math.isfinite(value):
            return self.best_metric is None
        if self.best_metric is None:
            return True
        return value < self.best_metric if self.mode == "min" else value > self.best_metric

    # ------------------------------------------------------------------ state
    def save_state(self, epoch: int) -> Path | None:
        """Write the resumable state of a finished ``epoch`` (rank 0); returns its folder."""
        if self.state_dir is None or not self.dist.is_main:
            return None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch:04d}"
        final = self.state_dir / name
        tmp = self.state_dir / f".{name}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        self.save_model_fn(self.raw_model, tmp / "model")
        opt_meta = save_optimizer_state(self.optimizer, tmp / "optimizer")
        save_file({"torch_rng": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
        state = {
            "epoch": epoch,
            "global_step": self.global_step,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "base_lrs": self.base_lrs,
            "optimizer": opt_meta,
        }
        atomic_write_json(tmp / "state.json", state)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        atomic_write_json(self.state_dir / "latest.json", {"dir": name, "epoch": epoch}, indent=None)
        for old in self.state_dir.glob("epoch-*"):
            if old.name != name and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        return final

    def load_state(self, folder: Path | None = None) -> bool:
        """Resume from ``folder`` (default: the latest state in ``state_dir``)."""
        if folder is None:
            if self.state_dir is None:
                return False
            folder = latest_state_dir(self.state_dir)
            if folder is None:
                return False
        folder = Path(folder)
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        weights = load_file(str(folder / "model.safetensors"))
        self.raw_model.load_state_dict(weights, strict=True)
        load_optimizer_state(self.optimizer, folder / "optimizer", state["optimizer"])
        rng = folder / "rng.safetensors"
        if rng.is_file():
            torch.set_rng_state(load_file(str(rng))["torch_rng"])
        self.start_epoch = int(state["epoch"]) + 1
        self.global_step = int(state["global_step"])
        self.best_metric = state.get("best_metric")
        self.best_epoch = state.get("best_epoch")
        self.history = list(state.get("history") or [])
        self.base_lrs = list(state.get("base_lrs") or self.base_lrs)
        return True

    # ------------------------------------------------------------------ loop
    def _emit(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def fit(self) -> TrainerResult:
        """Run the remaining epochs; returns a :class:`TrainerResult`."""
        t0 = time.perf_counter()
        n_images = 0
        train_seconds = 0.0
        cancelled = False
        self._emit("on_fit_start")
        epoch = self.start_epoch - 1
        for epoch in range(self.start_epoch, self.epochs):
            if self.sampler is not None and hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(epoch)
            if self.on_epoch is not None:
                self.on_epoch(epoch)
            self._emit("on_epoch_start", epoch)
            te = time.perf_counter()
            mean_loss, images, cancelled = self._train_epoch(epoch)
            n_images += images
            train_seconds += time.perf_counter() - te
            cancelled = ddp.broadcast_flag(self.dist, cancelled) if self.dist.enabled else cancelled
            if cancelled:
                epoch -= 1
                break
            self._end_epoch(epoch, mean_loss)
        result = TrainerResult(
            epochs_done=epoch + 1,
            global_step=self.global_step,
            best_metric=self.best_metric,
            best_epoch=self.best_epoch,
            cancelled=cancelled,
            history=list(self.history),
            seconds=time.perf_counter() - t0,
            images_per_second=n_images / train_seconds if train_seconds > 0 else 0.0,
        )
        self._emit("on_fit_end", result)
        return result

    def _train_epoch(self, epoch: int) -> tuple[float, int, bool]:
        """One pass over the loader: (mean loss, images seen, cancelled)."""
        self.model.train()
        running, count, n_images = 0.0, 0, 0
        for step, batch in enumerate(self.train_loader):
            if self.should_stop():
                return running / max(1, count), n_images, True
            batch = self._to_device(batch)
            value = self._train_step(batch)
            running += value
            count += 1
            n_images += self._batch_size(batch)
            self.global_step += 1
            self._emit("on_step", epoch, step, value)
        return running / max(1, count), n_images, False

    def _train_step(self, batch: Any) -> float:
        """Forward, backward (scaled under AMP), clip and optimizer step; the loss."""
        self._set_lr()
        if self.amp:
            with torch.autocast(self.device.type, dtype=torch.float16):
                loss = self.step_fn(self.model, batch)
        else:
            loss = self.step_fn(self.model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if self.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if self.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
        return float(loss.detach())

    def _end_epoch(self, epoch: int, train_loss: float) -> None:
        """Validate, keep the best model and the resumable state (rank 0), tell callbacks."""
        metrics: dict[str, float] = {"train_loss": train_loss}
        if self.dist.is_main and self.validate_fn is not None:
            self.raw_model.eval()
            with torch.no_grad():
                metrics.update(self.validate_fn(self.raw_model))
        metrics["epoch"] = epoch
        value = metrics.get(self.monitor, metrics["train_loss"])
        if self.dist.is_main:
            if self._improved(value):
                self.best_metric = float(value) if value is not None else None
                self.best_epoch = epoch
                if self.save_best_fn is not None:
                    self.save_best_fn(self.raw_model, dict(metrics))
            self.history.append({k: float(v) for k, v in metrics.items() if isinstance(v, int | float)})
            self.save_state(epoch)
        ddp.barrier(self.dist)
        self._emit("on_epoch_end", epoch, metrics)
