"""EvanySeg's training samples: an annotator's mask, often corrupted, and its Dice.

:class:`QualityTorchDataset` feeds the ``quality`` task: one annotator's mask of a case,
corrupted with probability ``1 - clean_fraction`` (erode, dilate, shift, cut, a swap with
another case's mask, empty), and as target its Dice against the majority vote of the
*other* annotators. Split from :mod:`training.datasets`, whose cache and base data set it
uses.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from training.datasets import _Base, dice_np, mhr_fraction

__all__ = ["QualityTorchDataset", "corrupt_mask", "CORRUPTIONS"]


def _shift(m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = m.shape
    ys, xs = np.nonzero(m)
    ext = max(2, int(max(np.ptp(ys) if ys.size else h // 8, np.ptp(xs) if xs.size else w // 8)))
    dy, dx = (int(v) for v in rng.integers(-ext, ext + 1, size=2))
    out = np.zeros_like(m)
    ys0, ys1 = max(0, dy), min(h, h + dy)
    xs0, xs1 = max(0, dx), min(w, w + dx)
    out[ys0:ys1, xs0:xs1] = m[ys0 - dy : ys1 - dy, xs0 - dx : xs1 - dx]
    return out


def _cut(m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ys, xs = np.nonzero(m)
    if ys.size == 0:
        return m
    out = m.copy()
    if rng.random() < 0.5:
        cut = rng.integers(ys.min(), ys.max() + 1)
        out[cut:] = False if rng.random() < 0.5 else out[cut:]
        if out.sum() == m.sum():
            out[:cut] = False
    else:
        cut = rng.integers(xs.min(), xs.max() + 1)
        out[:, cut:] = False if rng.random() < 0.5 else out[:, cut:]
        if out.sum() == m.sum():
            out[:, :cut] = False
    return out


def _morph(m: np.ndarray, rng: np.random.Generator, grow: bool) -> np.ndarray:
    from scipy import ndimage

    # 1 .. ~40% of the mask's equivalent radius, so small masks (LIDC nodules) are not wiped out
    radius = float(np.sqrt(max(1, int(m.sum())) / np.pi))
    it = int(rng.integers(1, max(1, int(round(0.4 * radius))) + 1))
    f = ndimage.binary_dilation if grow else ndimage.binary_erosion
    return f(m, iterations=it)


CORRUPTIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "erode": lambda m, r: _morph(m, r, False),
    "dilate": lambda m, r: _morph(m, r, True),
    "shift": _shift,
    "cut": _cut,
    "empty": lambda m, r: np.zeros_like(m),
}


def corrupt_mask(mask: np.ndarray, kind: str, rng: np.random.Generator, other: np.ndarray | None = None) -> np.ndarray:
    """Apply one corruption (``erode``, ``dilate``, ``shift``, ``cut``, ``empty``, ``swap``)."""
    if kind == "swap":
        return other if other is not None else np.zeros_like(mask)
    return CORRUPTIONS[kind](mask, rng)


class QualityTorchDataset(_Base):
    """EvanySeg samples: ``{"image": quality input (3, S, S), "dice": ()}``.

    Each item takes one annotator's mask of a case (cycling through them), with
    probability ``1 - clean_fraction`` corrupts it (erode, dilate, shift, cut, swap with
    another case's mask, empty), and its target is the Dice against the majority vote of
    the *other* annotators. Pairs where both are empty are redrawn.
    """

    kinds = ("erode", "dilate", "shift", "cut", "swap", "empty")

    def __init__(self, cache, indices, mean, std, augment=None, seed=0, size: int = 64,
                 clean_fraction: float = 0.35, fixed: bool = False):
        super().__init__(cache, indices, mean, std, augment, seed)
        self.size = int(size)
        self.clean_fraction = float(clean_fraction)
        self.fixed = fixed  # evaluation: the same samples every epoch
        self.indices = [i for i in self.indices if len(cache.masks[i]) >= 2]

    def _rng(self, item: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, item])

    def sample(self, item: int) -> tuple[np.ndarray, np.ndarray, float, str]:
        """``(image float, mask, target dice, corruption)`` of an item."""
        from napari_iaa.models.preprocess import resize_mask

        rng = self._rng(item)
        i = self.indices[item]
        img = self.cache.image_float(i)
        masks = self.cache.masks[i]
        if self.augment is not None and not self.fixed:
            img, masks = self.augment(img, masks, rng)
        n = len(masks)
        for _ in range(8):
            j = int(rng.integers(n))
            others = np.delete(masks, j, axis=0)
            ref = mhr_fraction(others) >= 0.5
            mask = masks[j]
            kind = "clean"
            if rng.random() >= self.clean_fraction:
                kind = self.kinds[int(rng.integers(len(self.kinds)))]
                other = None
                if kind == "swap":
                    o = self.indices[int(rng.integers(len(self.indices)))]
                    om = self.cache.masks[o]
                    other = om[int(rng.integers(len(om)))]
                    if other.shape != mask.shape:
                        other = resize_mask(other, mask.shape)
                mask = corrupt_mask(mask, kind, rng, other)
            if mask.any() or ref.any():
                return img, mask, dice_np(mask, ref), kind
        return img, mask, dice_np(mask, ref, empty=1.0), kind

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        from napari_iaa.models.preprocess import quality_input

        img, mask, target, _ = self.sample(item)
        x = quality_input(img, mask, self.size, mean=self.mean, std=self.std)
        return {"image": x, "dice": torch.tensor(float(target))}
