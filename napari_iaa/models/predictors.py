"""Predictors: load a checkpoint, prepare inputs like training did, run without grad.

Every predictor accepts a ``Case`` (anything with an ``.image``) or an image array, runs
in eval mode under ``torch.inference_mode`` on the device from :func:`pick_device`, and has
a batched ``predict_many(..., batch_size, progress, should_stop)`` that returns the results
computed so far when ``should_stop()`` becomes true. ``predict_many`` prepares the next
batch in a background thread while the current one runs through the network (torch
releases the GIL), so input preparation overlaps the forward passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from napari_iaa.errors import CheckpointError
from napari_iaa.models._batching import (
    Progress,
    ShouldStop,
    image_of,
    iter_batched,
    prep_batch,
    run_batched,
)
from napari_iaa.models._fast_calibration import load_calibrator
from napari_iaa.models.card import ModelCard, refuse_slice_context
from napari_iaa.models.checkpoint import load_checkpoint, read_checkpoint_card
from napari_iaa.models.device import pick_device
from napari_iaa.models.mhr_predictor import MHRPrediction, MHRPredictor
from napari_iaa.models.preprocess import prepare_image, quality_input

__all__ = [
    "IAAPrediction",
    "MHRPrediction",
    "IAAPredictor",
    "MHRPredictor",
    "QualityPredictor",
    "load_calibrator",
    "PREDICTORS",
    "make_predictor",
]


class _Predictor:
    task = ""

    def __init__(self, model: nn.Module, card: ModelCard, device: str | torch.device = "auto"):
        if card.task != self.task:
            raise CheckpointError(
                f"model {card.name!r} is a {card.task!r} model, not a {self.task!r} model"
            )
        refuse_slice_context(card)
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.card = card

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "auto") -> Any:
        """Load a checkpoint (card/weights/stem path) and wrap it."""
        model, card = load_checkpoint(path, device="cpu")
        if card.task != cls.task:
            raise CheckpointError(f"{path}: a {card.task!r} model, expected a {cls.task!r} model")
        return cls(model, card, device)

    def _prep(self, image: np.ndarray) -> torch.Tensor:
        return prepare_image(image, self.card.input_size, self.card.mean, self.card.std)


@dataclass
class IAAPrediction:
    """Predicted IAA in [0, 1] and, for multi-task models, diagnosis class probabilities.

    ``error`` is set (and ``iaa`` is NaN) for an item ``predict_many`` could not use.
    """

    iaa: float
    diagnosis_probs: dict[str, float] | None = None
    error: str | None = None


class IAAPredictor(_Predictor):
    """Predict an image's inter-annotator agreement (and diagnosis) from the image."""

    task = "iaa"

    def _prepare(self, images: list[Any], strict: bool = True) -> tuple[Any, ...]:
        x, ok, errors = prep_batch(images, lambda im: self._prep(image_of(im)), strict)
        return len(images), x, ok, errors

    @torch.inference_mode()
    def _run(self, prepared: tuple[Any, ...]) -> list[IAAPrediction]:
        n, x, ok, errors = prepared
        res = [IAAPrediction(float("nan"), None, errors.get(i)) for i in range(n)]
        if x is None:
            return res
        out = self.model(x.to(self.device))
        iaa = out["iaa"].float().cpu().numpy()
        probs = None
        if "diagnosis" in out and self.card.classes:
            probs = torch.softmax(out["diagnosis"].float(), dim=1).cpu().numpy()
        for row, i in enumerate(ok):
            dp = None
            if probs is not None:
                dp = {c: float(probs[row, j]) for j, c in enumerate(self.card.classes or [])}
            res[i] = IAAPrediction(float(iaa[row]), dp)
        return res

    def _forward(self, images: list[Any], strict: bool = True) -> list[IAAPrediction]:
        return self._run(self._prepare(images, strict))

    def predict(self, image: Any) -> IAAPrediction:
        """Predict for one image array or Case (a bad image raises its IAAError)."""
        return self._forward([image])[0]

    def predict_many(
        self,
        images: Iterable[Any],
        batch_size: int = 16,
        progress: Progress = None,
        should_stop: ShouldStop = None,
        strict: bool = False,
    ) -> list[IAAPrediction]:
        """Predict for many images/Cases in batches; stops early on ``should_stop()``.

        With ``strict=False`` an unusable image (e.g. not 2D) gives a prediction with NaN
        IAA and its ``error`` message instead of stopping the whole run.
        """
        return run_batched(images, lambda b: self._prepare(b, strict), self._run, batch_size,
                            progress, should_stop)

    def iter_many(
        self,
        images: Iterable[Any],
        batch_size: int = 16,
        should_stop: ShouldStop = None,
        strict: bool = False,
    ) -> Iterator[list[IAAPrediction]]:
        """Like :meth:`predict_many`, one list of results per batch as it is done.

        A caller that stops iterating (or ``should_stop()``) ends the run between batches.
        """
        return iter_batched(images, lambda b: self._prepare(b, strict), self._run, batch_size,
                            should_stop)



class QualityPredictor(_Predictor):
    """Ground-truth-free quality: predicted Dice of a mask from image + mask (EvanySeg)."""

    task = "quality"

    def _qin(self, image: np.ndarray, mask: np.ndarray) -> torch.Tensor:
        margin = float(self.card.extra.get("margin", 0.15))
        alpha = float(self.card.extra.get("alpha", 0.5))
        return quality_input(image, mask, self.card.input_size, margin, self.card.mean,
                             self.card.std, alpha)

    def _prepare(self, pairs: list[tuple[Any, Any]], strict: bool = True) -> tuple[Any, ...]:
        x, ok, _ = prep_batch(pairs, lambda p: self._qin(image_of(p[0]), np.asarray(p[1])),
                               strict)
        return len(pairs), x, ok

    @torch.inference_mode()
    def _run(self, prepared: tuple[Any, ...]) -> list[float]:
        n, x, ok = prepared
        res = [float("nan")] * n
        if x is not None:
            for i, v in zip(ok, self.model(x.to(self.device)).float().cpu().numpy()):
                res[i] = float(v)
        return res

    def _forward(self, pairs: list[tuple[Any, Any]], strict: bool = True) -> list[float]:
        return self._run(self._prepare(pairs, strict))

    def predict(self, image: Any, mask: np.ndarray | None = None) -> float | dict[str, float]:
        """Predicted Dice of ``mask`` on ``image``.

        With a Case and no mask, returns ``{mask_id: predicted Dice}`` for its masks.
        """
        if mask is None:
            if not hasattr(image, "masks"):
                raise TypeError("predict(image, mask) needs a mask unless given a Case")
            return self.predict_case(image)
        return self._forward([(image, mask)])[0]

    def predict_case(self, case: Any, batch_size: int = 16) -> dict[str, float]:
        """``{mask_id: predicted Dice}`` for every mask of a Case."""
        ids = list(case.masks)
        vals = self.predict_many([(case.image, case.masks[k]) for k in ids], batch_size,
                                 strict=True)
        return dict(zip(ids, vals))

    def predict_many(
        self,
        pairs: Iterable[tuple[Any, Any]],
        batch_size: int = 16,
        progress: Progress = None,
        should_stop: ShouldStop = None,
        strict: bool = False,
    ) -> list[float]:
        """Predicted Dice for many ``(image, mask)`` pairs; stops early on ``should_stop()``.

        With ``strict=False`` an unusable pair (e.g. shapes differ) gives NaN.
        """
        return run_batched(pairs, lambda b: self._prepare(b, strict), self._run, batch_size,
                            progress, should_stop)

    def iter_many(
        self,
        pairs: Iterable[tuple[Any, Any]],
        batch_size: int = 16,
        should_stop: ShouldStop = None,
        strict: bool = False,
    ) -> Iterator[list[float]]:
        """Like :meth:`predict_many`, one list of results per batch as it is done.

        A caller that stops iterating (or ``should_stop()``) ends the run between batches.
        """
        return iter_batched(pairs, lambda b: self._prepare(b, strict), self._run, batch_size,
                            should_stop)


#: task -> predictor class
PREDICTORS: dict[str, type] = {
    "iaa": IAAPredictor,
    "mhr": MHRPredictor,
    "quality": QualityPredictor,
}


def make_predictor(
    path: str | Path, device: str | torch.device = "auto"
) -> IAAPredictor | MHRPredictor | QualityPredictor:
    """The predictor for whatever task the checkpoint's card names."""
    card, _, _ = read_checkpoint_card(path)
    return PREDICTORS[card.task].from_checkpoint(path, device=device)

