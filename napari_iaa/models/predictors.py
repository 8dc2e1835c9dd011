"""Predictors: load a checkpoint, prepare inputs like training did, run without grad.

Every predictor accepts a ``Case`` (anything with an ``.image``) or an image array, runs
in eval mode under ``torch.inference_mode`` on the device from :func:`pick_device`, and has
a batched ``predict_many(..., batch_size, progress, should_stop)`` that returns the results
computed so far when ``should_stop()`` becomes true. ``predict_many`` prepares the next
batch in a background thread while the current one runs through the network (torch
releases the GIL), so input preparation overlaps the forward passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_iaa.calibration import calibrator_from_dict
from napari_iaa.errors import CheckpointError, IAAError
from napari_iaa.models.card import ModelCard
from napari_iaa.models.checkpoint import load_checkpoint
from napari_iaa.models.device import pick_device
from napari_iaa.models.preprocess import prepare_image, quality_input, resize_map

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

Progress = Callable[[int, int], None] | None
ShouldStop = Callable[[], bool] | None


def _image_of(x: Any) -> np.ndarray:
    return np.asarray(x.image if hasattr(x, "image") else x)


def load_calibrator(card: ModelCard, source: str | Path = "<card>") -> Any | None:
    """The card's calibrator object, or None. Raises CheckpointError naming ``source``."""
    if card.calibrator is None:
        return None
    try:
        return calibrator_from_dict(card.calibrator)
    except ValueError as exc:
        raise CheckpointError(f"{source}: invalid calibrator in model card: {exc}") from exc


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for it in items:
        batch.append(it)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _run_batched(
    items: Iterable[Any],
    prep: Callable[[list[Any]], Any],
    run: Callable[[Any], list[Any]],
    batch_size: int,
    progress: Progress,
    should_stop: ShouldStop,
) -> list[Any]:
    """``run(prep(batch))`` for every batch; ``prep`` of the next batch runs in a worker
    thread while ``run`` handles the current one. Errors raised by ``prep`` surface when
    their batch is due, ``should_stop`` is checked before every batch."""
    total = len(items) if hasattr(items, "__len__") else 0  # type: ignore[arg-type]
    out: list[Any] = []
    stopped = (lambda: False) if should_stop is None else should_stop
    batches = _batches(items, max(1, int(batch_size)))
    first = next(batches, None)
    if first is None or stopped():
        return out
    second = next(batches, None)
    if second is None:  # one batch: nothing to overlap
        out.extend(run(prep(first)))
        if progress is not None:
            progress(len(out), total)
        return out
    n_threads = torch.get_num_threads()
    with ThreadPoolExecutor(1, thread_name_prefix="napari-iaa-prep",
                            initializer=torch.set_num_threads,
                            initargs=(n_threads,)) as pool:
        pending: Future | None = pool.submit(prep, first)
        upcoming: list[Any] | None = second
        while pending is not None:
            prepared = pending.result()
            pending = None
            if upcoming is not None and not stopped():
                pending = pool.submit(prep, upcoming)
                upcoming = next(batches, None)
            out.extend(run(prepared))
            if progress is not None:
                progress(len(out), total)
            if pending is not None and stopped():
                pending.cancel()
                break
    return out


def _prep_batch(
    items: list[Any], prep: Callable[[Any], torch.Tensor], strict: bool
) -> tuple[torch.Tensor | None, list[int], dict[int, str]]:
    """Prepare a batch; with ``strict=False`` unusable items are reported, not raised."""
    tensors, ok, errors = [], [], {}
    for i, it in enumerate(items):
        try:
            tensors.append(prep(it))
            ok.append(i)
        except IAAError as exc:
            if strict:
                raise
            errors[i] = str(exc)
    return (torch.stack(tensors) if tensors else None), ok, errors


def _resize_t(values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A 2D float32 map resized like :func:`resize_map` (bilinear, antialiased), in torch."""
    if tuple(values.shape[-2:]) == shape:
        return values.clone()
    return F.interpolate(values[None, None], size=shape, mode="bilinear", align_corners=False,
                         antialias=True)[0, 0]


class _PiecewiseLinearLUT:
    """``np.interp(p, x, y)`` for float32 ``p``, without a search per pixel.

    [0, 1] is cut into ``cells`` equal cells; in a cell without a knot the function is
    one straight line (value at the cell's start + fraction x rise over the cell), so a
    pixel costs two table look-ups. Pixels in the few cells that hold a knot fall back to
    ``np.interp``, and so does any ``p`` outside [0, 1] (or NaN). Same values as the
    isotonic calibrator up to float32 rounding (~1e-7).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, cells: int = 1 << 16) -> None:
        self.x = np.asarray(x, np.float64)
        self.y = np.asarray(y, np.float64)
        self.cells = int(cells)
        edges = np.arange(self.cells + 2, dtype=np.float64) / self.cells
        fe = np.interp(edges, self.x, self.y)  # one spare cell so that p == 1 needs no clamp
        self.start = fe[:-1].astype(np.float32)
        self.rise = np.diff(fe).astype(np.float32)
        over = (self.start + self.rise) > 1.0  # float32 rounding at the top
        self.rise[over] = np.float32(1.0) - self.start[over]
        #: every output is start + (fraction < 1) x rise, so these bounds make it stay in
        #: [0, 1] and a clip unnecessary
        self.bounded = bool(
            self.y.min() >= 0.0 and self.y.max() <= 1.0 and (self.start >= 0).all()
            and (self.rise >= 0).all() and ((self.start + self.rise) <= 1.0).all()
        )
        knot_cells = np.floor(self.x * self.cells).astype(np.int64)
        knot = np.zeros(self.cells + 1, bool)  # +-1 cell guards against rounding at edges
        inside = (knot_cells >= -1) & (knot_cells <= self.cells + 1)
        for d in (-1, 0, 1):
            knot[np.clip(knot_cells[inside] + d, 0, self.cells)] = True
        self.knot = knot

    def __call__(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, np.float32)
        if p.size == 0 or not (p.min() >= 0.0 and p.max() <= 1.0):  # also catches NaN
            return np.interp(p.astype(np.float64), self.x, self.y).astype(np.float32)
        flat = np.ascontiguousarray(p).reshape(-1)
        out = np.empty(flat.shape, np.float32)
        step = 1 << 14  # chunks: the temporaries stay in cache and are not page-faulted anew
        for i in range(0, flat.size, step):
            pc = flat[i:i + step]
            q = pc * np.float32(self.cells)  # exact: cells is a power of two
            cf = np.floor(q)
            q -= cf  # fraction of the cell
            c = cf.astype(np.intp)
            oc = out[i:i + step]
            np.take(self.rise, c, out=oc)
            oc *= q
            oc += np.take(self.start, c)
            slow = np.take(self.knot, c)
            if slow.any():
                oc[slow] = np.interp(pc[slow].astype(np.float64), self.x, self.y)
        return out.reshape(p.shape)


_LUTS: dict[int, tuple[Any, _PiecewiseLinearLUT]] = {}


def _isotonic_lut(calibrator: Any) -> _PiecewiseLinearLUT | None:
    """A fast evaluator of an isotonic calibrator (cached per thresholds), else None."""
    if getattr(calibrator, "kind", None) != "isotonic":
        return None
    x, y = getattr(calibrator, "x_", None), getattr(calibrator, "y_", None)
    if x is None or y is None or np.size(x) < 2:
        return None
    hit = _LUTS.get(id(calibrator))
    if hit is not None and hit[0][0] is x and hit[0][1] is y:
        return hit[1]
    if len(_LUTS) > 32:
        _LUTS.clear()
    lut = _PiecewiseLinearLUT(x, y)
    _LUTS[id(calibrator)] = ((x, y), lut)
    return lut


class _Predictor:
    task = ""

    def __init__(self, model: nn.Module, card: ModelCard, device: str | torch.device = "auto"):
        if card.task != self.task:
            raise CheckpointError(
                f"model {card.name!r} is a {card.task!r} model, not a {self.task!r} model"
            )
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
        x, ok, errors = _prep_batch(images, lambda im: self._prep(_image_of(im)), strict)
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
        return _run_batched(images, lambda b: self._prepare(b, strict), self._run, batch_size,
                            progress, should_stop)


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
        if self.calibrator is None:
            return raw
        fast = _isotonic_lut(self.calibrator)
        if fast is not None:
            cal = fast(raw)
            if fast.bounded:  # already within [0, 1]
                return cal
        else:
            cal = np.asarray(self.calibrator.transform(raw), dtype=np.float32)
        return np.clip(cal, 0.0, 1.0, out=cal if cal is not raw else None)

    @torch.inference_mode()
    def _run(self, prepared: tuple[list[np.ndarray], list[torch.Tensor]]) -> list[MHRPrediction]:
        images, xs = prepared
        fracs: list[torch.Tensor] = []  # per model: (B, h, w) float32 on the CPU
        levels: list[torch.Tensor | None] = []
        for model, x in zip(self.models, xs):
            x = x.to(self.device)
            lp_fn = getattr(model, "level_probs", None)
            lp = lp_fn(x) if lp_fn is not None else None
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
            raw_t = torch.stack([_resize_t(f[i], shape) for f in fracs]).mean(0) if len(
                fracs) > 1 else _resize_t(fracs[0][i], shape)
            raw = raw_t.clamp_(0.0, 1.0).numpy()
            cal = self._calibrate(raw)
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
        return self._forward([_image_of(image)])[0]

    def predict_many(
        self,
        images: Iterable[Any],
        batch_size: int = 8,
        progress: Progress = None,
        should_stop: ShouldStop = None,
    ) -> list[MHRPrediction]:
        """Maps for many images/Cases in batches; stops early on ``should_stop()``."""
        return _run_batched(
            images, lambda b: self._prepare([_image_of(x) for x in b]), self._run, batch_size,
            progress, should_stop,
        )


class QualityPredictor(_Predictor):
    """Ground-truth-free quality: predicted Dice of a mask from image + mask (EvanySeg)."""

    task = "quality"

    def _qin(self, image: np.ndarray, mask: np.ndarray) -> torch.Tensor:
        margin = float(self.card.extra.get("margin", 0.15))
        alpha = float(self.card.extra.get("alpha", 0.5))
        return quality_input(image, mask, self.card.input_size, margin, self.card.mean,
                             self.card.std, alpha)

    def _prepare(self, pairs: list[tuple[Any, Any]], strict: bool = True) -> tuple[Any, ...]:
        x, ok, _ = _prep_batch(pairs, lambda p: self._qin(_image_of(p[0]), np.asarray(p[1])),
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
        return _run_batched(pairs, lambda b: self._prepare(b, strict), self._run, batch_size,
                            progress, should_stop)


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
    from napari_iaa.models.checkpoint import read_checkpoint_card

    card, _, _ = read_checkpoint_card(path)
    return PREDICTORS[card.task].from_checkpoint(path, device=device)
