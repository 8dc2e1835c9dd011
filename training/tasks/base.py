"""The task interface and registry shared by every task, and the split a card records.

Each task is a :class:`Task` subclass registered in :data:`TASKS` (``@register("iaa")``)
that knows its card, its torch data sets, its loss (``step``), its per-epoch validation
and its held-out evaluation. The loop itself is :class:`training.engine.Trainer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import torch

from napari_iaa.errors import ConfigError
from training.augmentation import Augment
from training.config import FitConfig
from training.datasets import CaseCache, split_by_group

__all__ = ["TASKS", "Task", "register", "select_split", "split_record", "task_for_card",
           "training_domain"]

TASKS: dict[str, type[Task]] = {}


def register(name: str):
    """Register a task class under ``name``."""

    def deco(cls):
        TASKS[name] = cls
        cls.name = name
        return cls

    return deco


def split_record(cache: CaseCache, split: dict[str, list[int]], seed: int, fractions: dict[str, float]) -> dict[str, Any]:
    """The split as stored in the model card: held-out groups listed, train = the rest."""
    rec: dict[str, Any] = {"by": "group", "seed": seed, "fractions": fractions,
                           "n_cases": {k: len(v) for k, v in split.items()}, "groups": {}}
    for name, idx in split.items():
        groups = sorted({str(cache.groups[i]) if cache.groups[i] is not None else f"__case_{cache.case_ids[i]}" for i in idx})
        rec.setdefault("n_groups", {})[name] = len(groups)
        if name != "train":
            rec["groups"][name] = groups
    return rec


def select_split(cache: CaseCache, record: dict | str | None, name: str) -> list[int]:
    """Indices of ``cache`` in split ``name`` of a card's split record (``"all"``: every case).

    ``"train"`` is every case whose group is in none of the held-out lists.
    """
    n = len(cache)
    if name == "all" or not isinstance(record, dict) or "groups" not in record:
        return list(range(n))
    keys = [str(g) if g is not None else f"__case_{cid}" for g, cid in zip(cache.groups, cache.case_ids)]
    held = {k: set(v) for k, v in record["groups"].items()}
    if name == "train":
        every = set().union(*held.values()) if held else set()
        return [i for i, k in enumerate(keys) if k not in every]
    if name not in held:
        return []
    return [i for i, k in enumerate(keys) if k in held[name]]


def training_domain(data: str | Path, layout: str | None, max_cases: int | None) -> dict[str, Any] | None:
    """The card's ``domain``: measured on a sample of the cases trained on (None if unreadable)."""
    from napari_iaa.data import open_dataset
    from napari_iaa.errors import IAAError
    from napari_iaa.models.domain import domain_of

    try:
        ds = open_dataset(data, layout=layout)
        if max_cases is not None:
            ds = ds.subset(ds.ids[: int(max_cases)])
        return domain_of(ds).to_dict()
    except (IAAError, ValueError):  # the card is still written; it then matches weakly
        return None


class Task:
    """Base class: override the hooks below."""

    name: ClassVar[str] = ""
    monitor: ClassVar[str] = "val_loss"
    mode: ClassVar[str] = "min"
    held_out: ClassVar[tuple[str, ...]] = ("val", "test")
    #: median training target (the constant baseline), set by ``make_split`` where it applies
    train_median: float | None = None

    def __init__(self, config: FitConfig, cache: CaseCache):
        self.config = config
        self.cache = cache
        self.mean: tuple[float, ...] = (0.485, 0.456, 0.406)
        self.std: tuple[float, ...] = (0.229, 0.224, 0.225)

    @staticmethod
    def cache_size(size: int) -> int:
        """Resolution the data is cached at for input size ``size``."""
        return size

    def usable(self, indices: Sequence[int]) -> list[int]:
        """Cases this task can train on."""
        return list(indices)

    def fractions(self) -> dict[str, float]:
        """Fractions of the groups held out per split (``calib`` only where the task has one)."""
        c = self.config
        fr = {"val": c.val_fraction}
        if "calib" in self.held_out:
            fr["calib"] = c.calib_fraction
        fr["test"] = c.test_fraction
        return fr

    def make_split(self) -> dict[str, list[int]]:
        """Split by group, then keep the usable cases of each split."""
        sp = split_by_group(self.cache.groups, self.fractions(), self.config.seed, self.cache.case_ids)
        return {k: self.usable(v) for k, v in sp.items()}

    def card_kwargs(self) -> dict[str, Any]:
        """Task-specific ``ModelCard`` fields (classes, levels)."""
        return {}

    def make_card(self, split: dict[str, list[int]]):
        """A fresh ModelCard for this run."""
        from napari_iaa.models.card import ModelCard

        c = self.config
        return ModelCard(
            name=c.name, task=self.name, backbone=c.backbone, input_size=(c.size, c.size),
            mean=self.mean, std=self.std,
            training_data={"path": str(c.data), "layout": c.layout, "n_cases": len(self.cache),
                           "max_cases": c.max_cases},
            domain=training_domain(c.data, c.layout, c.max_cases),
            split=split_record(self.cache, split, c.seed, self.fractions()),
            extra={"empty_pair": c.empty_pair, "config": c.to_dict(), "trained_with": "python -m training fit"},
            **self.card_kwargs(),
        )

    def augment(self) -> Augment | None:
        """The training augmentation, None when ``config.augment`` is off."""
        return Augment() if self.config.augment else None

    # hooks -------------------------------------------------------------------------
    def train_dataset(self, indices: Sequence[int]) -> torch.utils.data.Dataset:
        """The torch data set the Trainer draws batches from (augmented)."""
        raise NotImplementedError

    def eval_dataset(self, indices: Sequence[int]) -> torch.utils.data.Dataset:
        """The torch data set of validation cases (no augmentation)."""
        raise NotImplementedError

    def step(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss of one batch (the Trainer's ``step_fn``)."""
        raise NotImplementedError

    def validate(self, model: torch.nn.Module, indices: Sequence[int], device) -> dict[str, float]:
        """Per-epoch validation metrics (``val_*``) of ``model`` on ``indices``."""
        raise NotImplementedError

    def evaluate(self, model, card, cache: CaseCache, indices: Sequence[int], device, out_png: Path | None = None) -> dict[str, Any]:
        """Held-out metrics of a saved model (its ``card``) on ``indices`` of ``cache``."""
        raise NotImplementedError


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
