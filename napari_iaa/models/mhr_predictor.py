"""The MHR predictor: one checkpoint or an ensemble, calibrated, at the image's size."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_iaa.calibration import PeakIsotonicCalibrator, calibrator_from_dict
from napari_iaa.errors import CheckpointError
from napari_iaa.models._batching import (
    Progress,
    ShouldStop,
    image_of,
    iter_batched,
    run_batched,
)
from napari_iaa.models._fast_calibration import (
    PiecewiseLinearLUT,
    isotonic_lut,
    load_calibrator,
    upsample_calibrated,
)
from napari_iaa.models._fast_resize import upsample_map
from napari_iaa.models.card import ModelCard, refuse_slice_context
from napari_iaa.models.checkpoint import load_checkpoint
from napari_iaa.models.device import pick_device
from napari_iaa.models.networks import MHREnsemble, MHRNet
from napari_iaa.models.preprocess import prepare_image, resize_map

__all__ = ["MHRPrediction", "MHRPredictor"]


def _resize_t(values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A 2D float32 map resized like :func:`resize_map` (bilinear, antialiased), in torch.

    Enlarging (the usual case: the network's output to the image's size), the antialias
    filter is plain bilinear interpolation (the same weights, clamped the same way at
    the borders), so torch's faster plain kernel is used.
    """
    if tuple(values.shape[-2:]) == shape:
        return values.clone()
    enlarging = shape[0] >= values.shape[-2] and shape[1] >= values.shape[-1]
    return F.interpolate(values[None, None], size=shape, mode="bilinear", align_corners=False,
                         antialias=not enlarging)[0, 0]


def _unit(cal: np.ndarray, lut: PiecewiseLinearLUT) -> np.ndarray:
    """``cal`` (a fresh array from ``lut``) clipped to [0, 1] in place.

    Skipped when ``lut``'s values already keep it there.
    """
    return cal if lut.bounded else np.clip(cal, 0.0, 1.0, out=cal)


@dataclass
class MHRPrediction:
    """MHR maps at the original image size (float32 in [0, 1]).

    ``raw`` is the (ensemble mean) expected fraction, ``calibrated`` the calibrator's
    output (== ``raw`` without a calibrator), ``level_probs`` the ``(K, H, W)`` level
    probabilities when asked for (``keep_level_probs``) and every model shares
    ``n_levels`` (else None).
    """

    raw: np.ndarray
    calibrated: np.ndarray
    level_probs: np.ndarray | None = None


class MHRPredictor:
    """Predict the MHR map; several checkpoints form an ensemble (mean expected fraction).

    Parameters
    ----------
    models : nn.Module or sequence of nn.Module
        :class:`MHRNet` / :class:`MHREnsemble` modules.
    cards : ModelCard or sequence of ModelCard
        Their cards (same order). Input preparation follows each card.
    device : str or torch.device
        Device preference.
    calibrator : object or dict, optional
        Applied to the ensemble mean. Default: the first card's calibrator.
    keep_level_probs : bool
        Also return the ``(K, H, W)`` level probabilities at the image size (K times the
        memory of a map; off by default).
    """

    task = "mhr"

    def __init__(
        self,
        models: nn.Module | Sequence[nn.Module],
        cards: ModelCard | Sequence[ModelCard],
        device: str | torch.device = "auto",
        calibrator: Any | None = None,
        keep_level_probs: bool = False,
    ) -> None:
        self.keep_level_probs = keep_level_probs
        models = [models] if isinstance(models, nn.Module) else list(models)
        cards = [cards] if isinstance(cards, ModelCard) else list(cards)
        if not models or len(models) != len(cards):
            raise CheckpointError("MHRPredictor needs one card per model (and at least one)")
        for c in cards:
            if c.task != "mhr":
                raise CheckpointError(f"model {c.name!r} is a {c.task!r} model, not an 'mhr' model")
            refuse_slice_context(c)
        self.device = pick_device(device)
        self.models = [m.to(self.device).eval() for m in models]
        self.cards = cards
        if isinstance(calibrator, dict):
            calibrator = calibrator_from_dict(calibrator)
        self.calibrator = calibrator if calibrator is not None else load_calibrator(cards[0])

    @property
    def card(self) -> ModelCard:
        """The first model's card."""
        return self.cards[0]

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path | Sequence[str | Path],
        device: str | torch.device = "auto",
        calibrator: Any | None = None,
        keep_level_probs: bool = False,
    ) -> MHRPredictor:
        """Load one checkpoint or several (an ensemble)."""
        paths = [path] if isinstance(path, (str, Path)) else list(path)
        models, cards = [], []
        for p in paths:
            m, c = load_checkpoint(p, device="cpu")
            if c.task != "mhr":
                raise CheckpointError(f"{p}: a {c.task!r} model, expected an 'mhr' model")
            models.append(m)
            cards.append(c)
        return cls(models, cards, device, calibrator, keep_level_probs)

    def _prepare(self, images: list[np.ndarray]) -> tuple[list[np.ndarray], list[torch.Tensor]]:
        """Images and, per model, the prepared batch (following each model's card)."""
        xs = [torch.stack([prepare_image(im, c.input_size, c.mean, c.std) for im in images])
              for c in self.cards]
        return images, xs

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        calibrator = self.calibrator
        if calibrator is None:
            return raw
        scale = None
        if isinstance(calibrator, PeakIsotonicCalibrator):  # per-plane peak scaling, then pixels
            if raw.ndim == 2 and isotonic_lut(calibrator.pixel) is not None:
                scale = float(calibrator.scales(raw))  # applied in the look-up's pass
            else:
                raw = calibrator.rescale(raw)
            calibrator = calibrator.pixel
        fast = isotonic_lut(calibrator)
        if fast is not None:
            return _unit(fast(raw, scale=scale), fast)
        cal = np.asarray(calibrator.transform(raw), dtype=np.float32)
        return np.clip(cal, 0.0, 1.0, out=cal if cal is not raw else None)

    def _maps(self, fracs: list[torch.Tensor], shape: tuple[int, int]
              ) -> tuple[np.ndarray, np.ndarray]:
        """The raw map at the image's size (mean over ``fracs``, clamped) and calibrated.

        One map enlarged to the image (the usual case) is resized and clamped in one
        compiled pass (:func:`~napari_iaa.models._fast_resize.upsample_map`), else in torch;
        with an isotonic calibrator each enlarged row is calibrated in the same pass
        (:func:`~napari_iaa.models._fast_calibration.upsample_calibrated`).
        """
        if len(fracs) == 1:
            lut = isotonic_lut(self.calibrator)
            both = upsample_calibrated(fracs[0].numpy(), shape, lut) if lut is not None else None
            if both is not None:
                return both[0], _unit(both[1], lut)
        raw = upsample_map(fracs[0].numpy(), shape) if len(fracs) == 1 else None
        if raw is None:
            raw_t = torch.stack([_resize_t(f, shape) for f in fracs]).mean(0) if len(
                fracs) > 1 else _resize_t(fracs[0], shape)
            raw = raw_t.clamp_(0.0, 1.0).numpy()
        return raw, self._calibrate(raw)

    @torch.inference_mode()
    def _run(self, prepared: tuple[list[np.ndarray], list[torch.Tensor]]) -> list[MHRPrediction]:
        images, xs = prepared
        fracs: list[torch.Tensor] = []  # per model: (B, h, w) float32 on the CPU
        levels: list[torch.Tensor | None] = []
        for model, x in zip(self.models, xs):
            x = x.to(self.device)
            # MHRNet / MHREnsemble give level probabilities; another registered architecture
            # only its expected fraction
            lp = model.level_probs(x) if isinstance(model, MHRNet | MHREnsemble) else None
            if lp is not None:  # one forward pass: E[k/(K-1)] from the level probabilities
                w = torch.linspace(0.0, 1.0, lp.shape[1], device=lp.device, dtype=lp.dtype)
                frac = (lp * w.view(1, -1, 1, 1)).sum(1)
            else:
                frac = model.expected_fraction(x)
            fracs.append(frac.float().cpu())
            levels.append(None if lp is None else lp.float().cpu())
        same_levels = self.keep_level_probs and all(lv is not None for lv in levels) and len(
            {lv.shape[1] for lv in levels if lv is not None}
        ) == 1
        if len({tuple(f.shape[-2:]) for f in fracs}) == 1:  # resizing is linear: mean first
            fracs = [torch.stack(fracs).mean(0)] if len(fracs) > 1 else fracs
        out = []
        for i, im in enumerate(images):
            shape = tuple(im.shape[:2])
            raw, cal = self._maps([f[i] for f in fracs], shape)
            lp_i = None
            if same_levels:
                lp_i = np.mean([resize_map(lv[i], shape) for lv in levels if lv is not None], axis=0)
                lp_i = (lp_i / np.maximum(lp_i.sum(0, keepdims=True), 1e-12)).astype(np.float32)
            out.append(MHRPrediction(raw, cal, lp_i))
        return out

    def _forward(self, images: list[np.ndarray]) -> list[MHRPrediction]:
        return self._run(self._prepare(images))

    def predict(self, image: Any) -> MHRPrediction:
        """MHR maps for one image array or Case, at the image's size."""
        return self._forward([image_of(image)])[0]

    def predict_many(
        self,
        images: Iterable[Any],
        batch_size: int = 8,
        progress: Progress = None,
        should_stop: ShouldStop = None,
    ) -> list[MHRPrediction]:
        """Maps for many images/Cases in batches; stops early on ``should_stop()``."""
        return run_batched(
            images, lambda b: self._prepare([image_of(x) for x in b]), self._run, batch_size,
            progress, should_stop,
        )

    def iter_many(
        self,
        images: Iterable[Any],
        batch_size: int = 8,
        should_stop: ShouldStop = None,
    ) -> Iterator[list[MHRPrediction]]:
        """Like :meth:`predict_many`, one list of results per batch as it is done.

        A caller that stops iterating (or ``should_stop()``) ends the run between batches.
        """
        return iter_batched(images, lambda b: self._prepare([image_of(x) for x in b]),
                            self._run, batch_size, should_stop)
