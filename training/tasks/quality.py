"""The ``quality`` task (EvanySeg): image + mask -> Dice against the other annotators' majority vote."""

from __future__ import annotations

import numpy as np
import torch

from training.inference import predict_batches
from training.losses import smooth_l1_loss
from training.metrics import regression_metrics
from training.quality_data import QualityTorchDataset
from training.tasks.base import Task, register

__all__ = ["QualityTask"]


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
        pred = model(batch["image"])
        if self.config.quality_loss == "mse":  # EvanySeg's choice
            return torch.nn.functional.mse_loss(pred.float(), batch["dice"].float())
        return smooth_l1_loss(pred, batch["dice"], beta=0.1)

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
        samples = [ds.sample(k) for k in range(len(ds))]
        kinds = [smp[3] for smp in samples]
        filled = np.array([bool(smp[1].any()) for smp in samples], dtype=bool)
        real = filled & np.array([k == "clean" for k in kinds], dtype=bool)
        per_kind = {}
        for kind in sorted(set(kinds)):
            sel = np.array([k == kind for k in kinds])
            per_kind[kind] = {"n": int(sel.sum()), "mae": float(np.mean(np.abs(pred[sel] - t[sel]))),
                              "mean_target": float(np.mean(t[sel]))}
        # the headline: non-empty masks only (an empty mask's Dice is 0 by rule and
        # trivially predicted); "real" = annotators' own masks, i.e. the leave-one-out Dice
        return {"quality": regression_metrics(pred, t, float(median)),
                "quality_nonempty": regression_metrics(pred[filled], t[filled], float(median)),
                "quality_real_nonempty": regression_metrics(pred[real], t[real], float(median)),
                "by_corruption": per_kind}
