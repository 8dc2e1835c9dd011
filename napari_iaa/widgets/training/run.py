"""The training dock's non-GUI side: its task choices, settings -> ``FitConfig``, the
worker body, registration and the points of the live plot."""

from __future__ import annotations

import dataclasses
import math
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from napari_iaa.errors import IAAError
from napari_iaa.widgets._common import DeviceInUse, Progress, Relay, notify_error
from napari_iaa.widgets._common.model_events import shared_registry
from napari_iaa.widgets.training.events import RelayCallback
from training.config import BACKBONES, FitConfig, config_fields
from training.results import FitResult

__all__ = [
    "BACKBONES", "TASK_CHOICES", "Curves", "backbone_problem", "check_settings", "gui_threads",
    "main_metric", "make_config", "register", "run_fit", "task_of",
]

#: the dock's task choices: the FitConfig task, and form rows the choice turns off
TASK_CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "iaa": ("iaa", ("diagnosis",)),
    "iaa+diagnosis": ("iaa", ()),
    "mhr": ("mhr", ()),
    "calibrate": ("calibrate", ()),
    "quality": ("quality", ()),
}


def task_of(choice: str) -> str:
    """The FitConfig task of a dock choice (``"iaa+diagnosis"`` -> ``"iaa"``)."""
    return TASK_CHOICES[choice][0]


def backbone_problem(name: str) -> str | None:
    """``None`` if timm knows the backbone, else the message to show (imports timm: call it
    in a worker unless timm is imported)."""
    from napari_iaa.models import load_torch

    load_torch()  # torch's libraries mapped with the GIL released: the viewer keeps running
    import timm

    if not timm.is_model(name) and name not in timm.list_models():
        return f"unknown timm backbone {name!r}"
    return None


def check_settings(vals: Mapping[str, Any]) -> str | None:
    """What keeps these settings from starting (a missing folder or file), or None."""
    if not vals["data"]:
        return "choose a data set folder first"
    if not Path(vals["data"]).exists():
        return f"{vals['data']}: data set folder not found"
    if not vals["backbone"]:
        return "choose a backbone"
    if vals["task"] == "iaa+diagnosis" and not vals["diagnosis"]:
        return "iaa+diagnosis needs the metadata column of the diagnosis"
    if vals["task"] == "calibrate":
        if not vals["models"]:
            return "calibrate needs a base MHR model (.safetensors or .json card)"
        if not Path(vals["models"][0]).is_file():
            return f"{vals['models'][0]}: base model not found"
    if "timm" in sys.modules:  # else the worker checks (importing timm takes seconds)
        return backbone_problem(vals["backbone"])
    return None


def make_config(vals: Mapping[str, Any]) -> FitConfig:
    """The FitConfig of the dock's settings: the rows that apply to the chosen task.

    Raises
    ------
    ConfigError
        When FitConfig refuses a value.
    """
    choice = vals["task"]
    task, off = TASK_CHOICES[choice]
    fields = config_fields()
    kw = {name: v for name, v in vals.items()
          if name in fields and name not in ("task", "data") and name not in off
          and task in fields[name].metadata.get("tasks", (task,))}
    return FitConfig.for_task(task, str(vals["data"]), **kw)


def gui_threads() -> int:
    """torch threads for a fit beside the viewer: one fewer than torch's own default (its
    physical cores), at least one.

    The viewer's thread and, on a software-OpenGL display, Mesa's rendering threads need a
    core whenever the window is repainted. With every core in torch's thread team, a
    repaint took one of its threads away mid-operation and the others waited for it: on a
    2-core Xeon the dock's 5-epoch benchmark fit took 3.9-22 s with 2 threads against
    3.1-3.6 s with 1 (the same fit with nothing shown: 2.5-2.9 s with 2, 2.2 s with 1), and
    the viewer stalled longer (BENCHMARKS.md, issue 16, eighth pass). A user who sets
    ``threads`` keeps it.
    """
    import torch

    return max(1, torch.get_num_threads() - 1)


def run_fit(config: FitConfig, relay: Relay, stop: threading.Event) -> dict[str, Any]:
    """Worker body: run ``training.fit`` with the relay callback; never touches a widget.

    Without a ``threads`` setting the fit leaves a core to the viewer (:func:`gui_threads`).
    Returns the outcome for ``run_finished``: ``status``, ``checkpoint`` (the card's path,
    None when nothing usable was written), ``metrics`` and ``result`` (the FitResult).
    """
    from napari_iaa.models import load_torch, pick_device

    load_torch()  # torch's libraries mapped with the GIL released: the viewer keeps running
    from training.fitting import fit

    if config.threads is None:
        config = dataclasses.replace(config, threads=gui_threads())
    relay.send(DeviceInUse(str(pick_device(config.device))))
    last = [-1]

    def progress(done: int, total: int) -> None:
        if done != last[0]:  # at most one message per permille
            last[0] = done
            relay.send(Progress(int(done), int(total)))

    result = fit(config, progress=progress, should_stop=stop.is_set,
                 callbacks=[RelayCallback(relay)])
    cancelled = result.cancelled or stop.is_set()
    return {"status": "cancelled" if cancelled else "done", "checkpoint": _usable(result),
            "metrics": dict(result.metrics), "result": result}


def _usable(result: FitResult) -> Path | None:
    """The checkpoint's card when its weights were written too, else None."""
    from napari_iaa.models import read_checkpoint_card

    if result.checkpoint_path is None:
        return None
    try:
        _card, card_path, weights = read_checkpoint_card(result.checkpoint_path)
    except (IAAError, OSError, ValueError):  # nothing usable was written
        return None
    return card_path if weights.is_file() else None


def register(path: Path) -> bool:
    """Register a checkpoint in the shared model registry; False if it could not be."""
    try:
        shared_registry().register(path)
    except (IAAError, OSError, ValueError) as exc:  # the model is still usable from its path
        notify_error(f"trained model saved to {path} but not registered: {exc}")
        return False
    return True


# ---------------------------------------------------------------------- live plot
class Curves:
    """The points of the live plot (GUI thread only)."""

    def __init__(self) -> None:
        self.loss_x: list[float] = []
        self.loss_y: list[float] = []
        self.val_x: list[float] = []
        self.val_y: list[float] = []
        self.metric_name = "validation metric"

    def add_loss(self, x: float, y: float) -> None:
        """A training step's loss (non-finite values are left out)."""
        if math.isfinite(y):
            self.loss_x.append(x)
            self.loss_y.append(y)

    def add_validation(self, x: float, y: float | None, name: str = "") -> None:
        """An epoch's validation metric ``name`` (missing or non-finite: left out)."""
        if name:
            self.metric_name = name
        if y is not None and math.isfinite(y):
            self.val_x.append(x)
            self.val_y.append(y)

    def args(self) -> tuple[Any, ...]:
        """The arguments of ``render_training``."""
        return (list(self.loss_x), list(self.loss_y), list(self.val_x), list(self.val_y),
                self.metric_name)


def _float_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


_PREFERRED = ("val_mae", "mae", "val_dice", "dice", "val_rps", "rps", "ece", "val_ece",
              "pearson", "spearman", "val_metric", "metric")


def main_metric(metrics: Mapping[str, Any]) -> tuple[str | None, float | None]:
    """The validation metric to plot: a well-known name first, else the first non-loss."""
    for key in _PREFERRED:
        if key in metrics and _float_or_none(metrics[key]) is not None:
            return key, _float_or_none(metrics[key])
    for key, v in metrics.items():
        if "loss" not in key and _float_or_none(v) is not None:
            return key, _float_or_none(v)
    return None, None
