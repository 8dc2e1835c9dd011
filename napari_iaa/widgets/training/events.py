"""Typed messages from a training run to the dock, and the callback that sends them.

:class:`RelayCallback` is a :class:`training.callbacks.Callback`: the Trainer calls it in the
worker thread, and it forwards each hook as one of the messages below through a
:class:`~napari_iaa.widgets._common.Relay` (a queued signal) to the GUI thread. Reading
the data and evaluating report :class:`~napari_iaa.widgets._common.Progress` (0..1000
over the whole fit) and the device as :class:`~napari_iaa.widgets._common.DeviceInUse`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from napari_iaa.widgets._common import Relay
from training.callbacks import Callback  # no torch: this module is imported on the GUI thread

if TYPE_CHECKING:
    from training.engine import Trainer

__all__ = ["EpochEnded", "EpochStarted", "FitAdvice", "FitStarted", "RelayCallback", "StepDone"]


@dataclass(frozen=True, slots=True)
class FitAdvice:
    """Warnings about the run before it trains (``training.advice``), settings to try."""

    messages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FitStarted:
    """The loop starts: ``total_steps`` over all epochs, ``steps_per_epoch``."""

    total_steps: int
    steps_per_epoch: int


@dataclass(frozen=True, slots=True)
class EpochStarted:
    """Epoch ``epoch`` (0-based) starts."""

    epoch: int


@dataclass(frozen=True, slots=True)
class StepDone:
    """A training step finished with ``loss``; ``global_step`` of ``total_steps`` done."""

    epoch: int
    step: int
    loss: float
    global_step: int
    total_steps: int
    steps_per_epoch: int


@dataclass(frozen=True, slots=True)
class EpochEnded:
    """Epoch ``epoch`` finished with these metrics (``train_loss``, ``val_*``)."""

    epoch: int
    metrics: Mapping[str, float] = field(default_factory=dict)


class RelayCallback(Callback):
    """Forwards every Trainer hook to the GUI thread as a typed message."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def on_advice(self, messages: list[str]) -> None:
        self.relay.send(FitAdvice(tuple(messages)))

    def on_fit_start(self, trainer: Trainer) -> None:
        self.relay.send(FitStarted(trainer.total_steps, trainer.steps_per_epoch))

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        self.relay.send(EpochStarted(epoch))

    def on_step(self, trainer: Trainer, epoch: int, step: int, loss: float) -> None:
        self.relay.send(StepDone(epoch, step, float(loss), trainer.global_step,
                                 trainer.total_steps, trainer.steps_per_epoch))

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        self.relay.send(EpochEnded(epoch, dict(metrics)))
