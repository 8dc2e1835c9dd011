"""The tasks (``iaa``, ``mhr``, ``quality``; ``calibrate`` lives in :mod:`training.calibrate`).

Each task is a class registered in :data:`TASKS` that knows its card, its torch data
sets, its loss (``step``), its per-epoch validation and its held-out evaluation. The loop
itself is :class:`training.engine.Trainer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from training.augmentation import Augment
from training.config import FitConfig
from training.datasets import (
    CaseCache,
    IAATorchDataset,
    MHRTorchDataset,
    QualityTorchDataset,
    split_by_group,
)
from training.evaluate import (
    classification_metrics,
    mhr_metrics,
    predict_batches,
    predict_mhr,
    regression_metrics,
)
from training.losses import bce_dice_loss, class_weights, focal_loss, rps_loss, smooth_l1_loss

__all__ = ["TASKS", "Task", "IAATask", "MHRTask", "QualityTask", "select_split", "split_record"]

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


class Task:
    """Base class: override the hooks below."""

    name: ClassVar[str] = ""
    monitor: ClassVar[str] = "val_loss"
    mode: ClassVar[str] = "min"
    held_out: ClassVar[tuple[str, ...]] = ("val", "test")

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

    def fractions(self) -> dict[str, float]:  # noqa: D102
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

    def card_kwargs(self) -> dict[str, Any]:  # noqa: D102
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
            split=split_record(self.cache, split, c.seed, self.fractions()),
            extra={"empty_pair": c.empty_pair, "config": c.to_dict(), "trained_with": "python -m training fit"},
            **self.card_kwargs(),
        )

    def augment(self) -> Augment | None:  # noqa: D102
        return Augment() if self.config.augment else None

    # hooks -------------------------------------------------------------------------
    def train_dataset(self, indices: Sequence[int]) -> torch.utils.data.Dataset:  # noqa: D102
        raise NotImplementedError

    def eval_dataset(self, indices: Sequence[int]) -> torch.utils.data.Dataset:  # noqa: D102
        raise NotImplementedError

    def step(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:  # noqa: D102
        raise NotImplementedError

    def validate(self, model: torch.nn.Module, indices: Sequence[int], device) -> dict[str, float]:  # noqa: D102
        raise NotImplementedError

    def evaluate(self, model, card, cache: CaseCache, indices: Sequence[int], device, out_png: Path | None = None) -> dict[str, Any]:  # noqa: D102
        raise NotImplementedError


# ----------------------------------------------------------------------------- iaa
@register("iaa")
class IAATask(Task):
    """Image -> IAA (SmoothL1); with ``diagnosis`` also the diagnosis (focal loss)."""

    monitor = "val_mae"

    def __init__(self, config, cache):
        super().__init__(config, cache)
        self.labels = None
        self.classes: list[str] | None = None
        self.weights = None
        if config.diagnosis:
            self.labels, self.classes = cache.labels(config.diagnosis)

    def usable(self, indices):
        return [i for i in indices if np.isfinite(self.cache.iaa[i])]

    def card_kwargs(self):
        return {"classes": self.classes}

    def make_split(self):
        sp = super().make_split()
        tr = self.cache.iaa[sp["train"]]
        self.train_median = float(np.median(tr)) if len(tr) else 0.5
        if self.labels is not None:
            self.weights = class_weights(self.labels[sp["train"]], len(self.classes))
        return sp

    def train_dataset(self, indices):
        return IAATorchDataset(self.cache, indices, self.mean, self.std, self.augment(), self.config.seed, self.labels)

    def eval_dataset(self, indices):
        return IAATorchDataset(self.cache, indices, self.mean, self.std, None, 0, self.labels)

    def step(self, model, batch):
        out = model(batch["image"])
        loss = smooth_l1_loss(out["iaa"], batch["iaa"], beta=0.1)
        if "diagnosis" in out:
            loss = loss + self.config.diag_weight * focal_loss(
                out["diagnosis"], batch["label"], gamma=self.config.focal_gamma,
                weight=self.weights, ignore_index=-1)
        return loss

    def _predict(self, model, ds, device):
        def fn(m, b):
            o = m(b["image"])
            probs = torch.softmax(o["diagnosis"].float(), 1).cpu().numpy() if "diagnosis" in o else None
            return o["iaa"].float().cpu().numpy(), probs

        outs = predict_batches(model, ds, fn, device, batch_size=max(64, self.config.batch_size))
        pred = np.concatenate([o[0] for o in outs]) if outs else np.zeros(0)
        probs = np.concatenate([o[1] for o in outs]) if outs and outs[0][1] is not None else None
        return pred, probs

    def validate(self, model, indices, device):
        pred, _ = self._predict(model, self.eval_dataset(indices), device)
        t = self.cache.iaa[list(indices)]
        return {"val_mae": float(np.mean(np.abs(pred - t))) if len(t) else float("nan")}

    def evaluate(self, model, card, cache, indices, device, out_png=None):
        indices = [i for i in indices if np.isfinite(cache.iaa[i])]
        labels = None
        if card.classes:
            column = (card.extra or {}).get("config", {}).get("diagnosis")
            if column:
                lab, classes = cache.labels(column)
                index = {c: k for k, c in enumerate(card.classes)}
                labels = np.array([index.get(classes[v], -1) if v >= 0 else -1 for v in lab])
        ds = IAATorchDataset(cache, indices, card.mean, card.std, None, 0, labels)
        pred, probs = self._predict(model, ds, device)
        median = (card.extra or {}).get("train_median")
        if median is None:
            median = float(np.nanmedian(cache.iaa))
        out: dict[str, Any] = {"iaa": regression_metrics(pred, cache.iaa[indices], float(median))}
        if probs is not None and labels is not None:
            out["diagnosis"] = classification_metrics(probs, labels[indices], card.classes)
        return out


# ----------------------------------------------------------------------------- mhr
@register("mhr")
class MHRTask(Task):
    """Ordinal agreement levels (RPS) + binary segmentation loss; ``binary``: plain baseline."""

    held_out = ("val", "calib", "test")

    def __init__(self, config, cache):
        super().__init__(config, cache)
        self.n_levels = 2 if config.binary else int(config.n_levels)

    def card_kwargs(self):
        return {"n_levels": self.n_levels}

    def make_card(self, split):
        card = super().make_card(split)
        card.extra["mhr_training"] = "binary vs majority vote" if self.config.binary else "ordinal levels, RPS + BCE/Dice"
        return card

    def train_dataset(self, indices):
        return MHRTorchDataset(self.cache, indices, self.mean, self.std, self.augment(), self.config.seed,
                               self.n_levels, self.config.binary)

    def eval_dataset(self, indices):
        return MHRTorchDataset(self.cache, indices, self.mean, self.std, None, 0, self.n_levels, self.config.binary)

    def _loss(self, logits, batch):
        probs = torch.softmax(logits.float(), 1)
        k = logits.shape[1]
        upper = [j for j in range(k) if j / (k - 1) >= 0.5]
        p_major = probs[:, upper].sum(1)
        return rps_loss(logits, batch["levels"]) + self.config.seg_weight * bce_dice_loss(p_major, batch["mv"])

    def step(self, model, batch):
        return self._loss(model(batch["image"]), batch)

    def validate(self, model, indices, device):
        ds = self.eval_dataset(indices)
        from napari_iaa.models.networks import expected_fraction

        def fn(m, b):
            logits = m(b["image"])
            p = expected_fraction(logits)
            return float(self._loss(logits, b)) * len(p), float(((p - b["mhr"]) ** 2).mean()) * len(p), len(p)

        outs = predict_batches(model, ds, fn, device, batch_size=max(32, self.config.batch_size))
        n = sum(o[2] for o in outs) or 1
        return {"val_loss": sum(o[0] for o in outs) / n, "val_brier": sum(o[1] for o in outs) / n}

    def evaluate(self, model, card, cache, indices, device, out_png=None):
        ds = MHRTorchDataset(cache, indices, card.mean, card.std, None, 0, int(card.n_levels or 2))
        p, lp = predict_mhr([model], ds, device)
        masks = [cache.masks[i] for i in indices]
        raters = [cache.raters[i] for i in indices]
        out: dict[str, Any] = {"uncalibrated": mhr_metrics(p, masks, raters, lp)}
        curves = {"uncalibrated": out["uncalibrated"]["reliability"]}
        if card.calibrator:
            from napari_iaa.calibration import calibrator_from_dict

            cal = calibrator_from_dict(card.calibrator)
            out["calibrated"] = mhr_metrics(cal.transform(p), masks, raters, None)
            curves[f"calibrated ({card.calibrator.get('kind', '?')})"] = out["calibrated"]["reliability"]
        if out_png is not None:
            _plot(curves, out_png, card.name)
        return out


def _plot(curves: dict[str, dict], path: Path, title: str) -> None:
    from napari_iaa.calibration import plot_reliability

    arr = {k: {kk: np.asarray(vv, dtype=float) for kk, vv in v.items()} for k, v in curves.items()}
    plot_reliability(arr, path, title=f"Reliability: {title}")


# ----------------------------------------------------------------------------- quality
@register("quality")
class QualityTask(Task):
    """EvanySeg: image + mask -> Dice against the other annotators' majority vote."""

    monitor = "val_mae"
    eval_repeats = 3

    @staticmethod
    def cache_size(size: int) -> int:
        """Cache at twice the input size (crops around small masks keep detail)."""
        return int(min(2 * size, max(size, 256)))

    def usable(self, indices):
        return [i for i in indices if len(self.cache.masks[i]) >= 2]

    def make_split(self):
        sp = super().make_split()
        ds = self.eval_dataset(sp["train"][:2000])
        t = [ds.sample(k)[2] for k in range(min(len(ds), 2000))]
        self.train_median = float(np.median(t)) if t else 0.5
        return sp

    def _ds(self, cache, indices, mean, std, train: bool, size: int):
        idx = [i for i in indices if len(cache.masks[i]) >= 2]
        if not train:
            idx = idx * self.eval_repeats
        return QualityTorchDataset(cache, idx, mean, std, self.augment() if train else None,
                                   self.config.seed if train else 12345, size=size,
                                   clean_fraction=self.config.quality_clean_fraction, fixed=not train)

    def train_dataset(self, indices):
        return self._ds(self.cache, indices, self.mean, self.std, True, self.config.size)

    def eval_dataset(self, indices):
        return self._ds(self.cache, indices, self.mean, self.std, False, self.config.size)

    def step(self, model, batch):
        return smooth_l1_loss(model(batch["image"]), batch["dice"], beta=0.1)

    def _predict(self, model, ds, device):
        outs = predict_batches(model, ds, lambda m, b: (m(b["image"]).float().cpu().numpy(), b["dice"].cpu().numpy()),
                               device, batch_size=max(64, self.config.batch_size))
        if not outs:
            return np.zeros(0), np.zeros(0)
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])

    def validate(self, model, indices, device):
        pred, t = self._predict(model, self.eval_dataset(indices), device)
        return {"val_mae": float(np.mean(np.abs(pred - t))) if len(t) else float("nan")}

    def evaluate(self, model, card, cache, indices, device, out_png=None):
        ds = self._ds(cache, indices, card.mean, card.std, False, int(card.input_size[0]))
        pred, t = self._predict(model, ds, device)
        median = (card.extra or {}).get("train_median")
        if median is None:
            median = float(np.median(t)) if len(t) else 0.5
        kinds = [ds.sample(k)[3] for k in range(len(ds))]
        per_kind = {}
        for kind in sorted(set(kinds)):
            sel = np.array([k == kind for k in kinds])
            per_kind[kind] = {"n": int(sel.sum()), "mae": float(np.mean(np.abs(pred[sel] - t[sel]))),
                              "mean_target": float(np.mean(t[sel]))}
        return {"quality": regression_metrics(pred, t, float(median)), "by_corruption": per_kind}
