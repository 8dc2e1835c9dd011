"""The ``iaa`` task: image -> IAA (SmoothL1); with ``diagnosis`` also the diagnosis (focal loss)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from training.context import SLICE_CONTEXT_TEXT, with_slice_context
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
        if config.slice_context:
            cache = with_slice_context(cache)
        super().__init__(config, cache)
        self.labels = None
        self.classes: list[str] | None = None
        self.weights = None
        if config.diagnosis:
            self.labels, self.classes = cache.labels(config.diagnosis)
        if config.diagnosis and config.iaa_weight == 0:  # diagnosis-only baseline
            self.monitor = "val_diag_loss"

    def usable(self, indices):
        return [i for i in indices if np.isfinite(self.cache.iaa[i])]

    def card_kwargs(self):
        return {"classes": self.classes}

    def make_card(self, split):
        card = super().make_card(split)
        if self.config.diagnosis:
            card.extra["iaa_training"] = ("diagnosis only (IAA head untrained)" if self.config.iaa_weight == 0
                                          else "multi-task: IAA + diagnosis")
        if self.config.slice_context:
            card.extra["input"] = SLICE_CONTEXT_TEXT
        return card

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
        loss = self.config.iaa_weight * smooth_l1_loss(out["iaa"], batch["iaa"], beta=0.1)
        if "diagnosis" in out:
            loss = loss + self._diag_loss(out["diagnosis"], batch["label"])
        return loss

    def _diag_loss(self, logits, labels):
        return self.config.diag_weight * focal_loss(logits, labels, gamma=self.config.focal_gamma,
                                                    weight=self.weights, ignore_index=-1)

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
        pred, probs = self._predict(model, self.eval_dataset(indices), device)
        t = self.cache.iaa[list(indices)]
        out = {"val_mae": float(np.mean(np.abs(pred - t))) if len(t) else float("nan")}
        if probs is not None and self.labels is not None:
            lab = self.labels[list(indices)]
            ok = lab >= 0
            if ok.any():
                out["val_diag_loss"] = self._diag_loss_numpy(probs[ok], lab[ok])
                out["val_balanced_accuracy"] = float(
                    classification_metrics(probs[ok], lab[ok], self.classes)["balanced_accuracy"])
        return out

    def _diag_loss_numpy(self, probs, labels):
        """The diagnosis loss of predicted probabilities (log-probabilities as logits)."""
        logits = torch.log(torch.as_tensor(probs, dtype=torch.float32).clamp_min(1e-7))
        return float(self._diag_loss(logits, torch.as_tensor(labels, dtype=torch.long)))

    def evaluate(self, model, card, cache, indices, device, out_png=None):
        if self.config.slice_context:
            cache = with_slice_context(cache)
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
