"""The ``iaa`` task: image -> IAA (SmoothL1); with ``diagnosis`` also the diagnosis (focal loss)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from training.datasets import IAATorchDataset
from training.inference import predict_batches
from training.losses import class_weights, focal_loss, smooth_l1_loss
from training.metrics import classification_metrics, regression_metrics
from training.tasks.base import Task, register

__all__ = ["IAATask"]


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
