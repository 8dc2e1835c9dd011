"""The :class:`~training.engine.Trainer`'s callbacks and its result, without torch.

Kept apart from the engine so that code that only defines or passes callbacks (the
training dock's relay, a script's queue) can be imported without importing torch: the
dock is built on the GUI thread, and torch is imported in its worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: the :class:`training.engine.Trainer` calling the hooks (not imported here: the engine
#: imports torch, and this module would make an import cycle with it)
Trainer = Any

__all__ = ["Callback", "HistoryCallback", "ProgressCallback", "QueueCallback", "TrainerResult"]


class Callback:
    """Hooks called by :class:`Trainer` from the thread that runs it.

    Implementations must be cheap and thread-safe (e.g. push into a queue): the GUI runs
    the trainer in a worker thread.
    """

    def on_advice(self, messages: list[str]) -> None:
        """Warnings about the run (too few steps, splits too small), before training."""

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        pass

    def on_step(self, trainer: Trainer, epoch: int, step: int, loss: float) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def on_fit_end(self, trainer: Trainer, result: TrainerResult) -> None:
        pass


class ProgressCallback(Callback):
    """Turns steps into ``progress(done, total)`` calls (total = all steps of the fit)."""

    def __init__(self, progress: Callable[[int, int], None]):
        self.progress = progress

    def on_step(self, trainer, epoch, step, loss):
        self.progress(trainer.global_step, trainer.total_steps)


class QueueCallback(Callback):
    """Puts one event dict per hook into a ``queue.Queue`` (for a GUI to poll)."""

    def __init__(self, queue):
        self.queue = queue

    def on_advice(self, messages):
        self.queue.put({"event": "advice", "messages": list(messages)})

    def on_epoch_start(self, trainer, epoch):
        self.queue.put({"event": "epoch_start", "epoch": epoch})

    def on_step(self, trainer, epoch, step, loss):
        self.queue.put({"event": "step", "epoch": epoch, "step": step, "loss": loss,
                        "global_step": trainer.global_step, "total_steps": trainer.total_steps})

    def on_epoch_end(self, trainer, epoch, metrics):
        self.queue.put({"event": "epoch_end", "epoch": epoch, "metrics": dict(metrics)})

    def on_fit_end(self, trainer, result):
        self.queue.put({"event": "fit_end", "cancelled": result.cancelled})


class HistoryCallback(Callback):
    """Keeps the step losses and epoch metrics (guarded by a lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.losses: list[float] = []
        self.epochs: list[dict[str, float]] = []

    def on_step(self, trainer, epoch, step, loss):
        with self._lock:
            self.losses.append(loss)

    def on_epoch_end(self, trainer, epoch, metrics):
        with self._lock:
            self.epochs.append({"epoch": epoch, **metrics})


@dataclass
class TrainerResult:
    """What a fit ended with."""

    epochs_done: int
    global_step: int
    best_metric: float | None
    best_epoch: int | None
    cancelled: bool
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    images_per_second: float = 0.0
