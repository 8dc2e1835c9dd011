"""The ``mhr`` task: ordinal agreement levels (RPS) + a binary segmentation loss.

The ordinal target is exact for any number of annotators: the RPS is taken against the
soft cumulative target of the pixel's annotator fraction
(:func:`training.losses.soft_rps_loss`: ``P(level <= k) = clip(k + 1 - m (L - 1), 0, 1)``),
so 1 of 8 annotators is an expected level of 0.5 on 5 levels rather than a rounded 0 or
1 (Galdran et al. 2026, "Multi-Rater Calibrated Segmentation Models", arXiv 2605.02437).
With ``binary`` the target is the majority vote on 2 levels (the plain baseline).
"""

from __future__ import annotations

from typing import Any

import torch

from training.context import SLICE_CONTEXT_TEXT, with_slice_context
from training.datasets import MHRTorchDataset
from training.inference import predict_batches, predict_mhr
from training.losses import bce_dice_loss, soft_rps_loss
from training.metrics import mhr_metrics, mhr_summary, plot_reliability_curves
from training.tasks.base import Task, register

__all__ = ["MHRTask"]


@register("mhr")
class MHRTask(Task):
    """Ordinal agreement levels (RPS) + binary segmentation loss; ``binary``: plain baseline."""

    held_out = ("val", "calib", "test")

    def __init__(self, config, cache):
        if config.slice_context:
            cache = with_slice_context(cache)
        super().__init__(config, cache)
        self.n_levels = 2 if config.binary else int(config.n_levels)

    def card_kwargs(self):
        return {"n_levels": self.n_levels}

    def make_card(self, split):
        card = super().make_card(split)
        card.extra["mhr_training"] = (self._binary_text() if self.config.binary else
                                      "ordinal levels, RPS against the soft cumulative target of the "
                                      "exact annotator fraction + BCE/Dice")
        if self.config.slice_context:
            card.extra["input"] = SLICE_CONTEXT_TEXT
        return card

    def _binary_text(self):
        if self.config.binary_target == "rater":
            return "binary vs one annotator's mask drawn per sample (validated against the annotator fraction)"
        return "binary vs majority vote"

    def train_dataset(self, indices):
        return MHRTorchDataset(self.cache, indices, self.mean, self.std, self.augment(), self.config.seed,
                               self.n_levels, self.config.binary, self.config.binary_target)

    def eval_dataset(self, indices):
        target = "fraction" if self.config.binary_target == "rater" else "majority"
        return MHRTorchDataset(self.cache, indices, self.mean, self.std, None, 0, self.n_levels, self.config.binary,
                               target)

    def _loss(self, logits, batch):
        probs = torch.softmax(logits.float(), 1)
        k = logits.shape[1]
        upper = [j for j in range(k) if j / (k - 1) >= 0.5]
        p_major = probs[:, upper].sum(1)
        # binary: the 2-level RPS of mv (equal to rps_loss of the levels where mv is 0 or 1)
        ordinal = soft_rps_loss(logits, batch["mv"] if self.config.binary else batch["mhr"])
        return ordinal + self.config.seg_weight * bce_dice_loss(p_major, batch["mv"])

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
        if self.config.slice_context:
            cache = with_slice_context(cache)
        ds = MHRTorchDataset(cache, indices, card.mean, card.std, None, 0, int(card.n_levels or 2))
        p, lp = predict_mhr([model], ds, device)
        masks = [cache.masks[i] for i in indices]
        raters = [cache.raters[i] for i in indices]
        shapes = [cache.shapes[i] for i in indices] if cache.shapes else None
        out: dict[str, Any] = {"uncalibrated": mhr_metrics(p, masks, raters, lp, shapes=shapes)}
        curves = {"uncalibrated": out["uncalibrated"]["reliability"]}
        if card.calibrator:
            from napari_iaa.calibration import calibrator_from_dict

            cal = calibrator_from_dict(card.calibrator)
            out["calibrated"] = mhr_metrics(cal.transform(p), masks, raters, None, shapes=shapes)
            curves[f"calibrated ({card.calibrator.get('kind', '?')})"] = out["calibrated"]["reliability"]
        if out_png is not None:
            plot_reliability_curves(curves, out_png, card.name)
        return {"summary": mhr_summary(out), **out}
