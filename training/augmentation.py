"""Joint augmentation of an image and its masks (flips, 90 degree rotations, intensity).

Geometric transforms are applied to the image and every mask together; the intensity
jitter touches the image only. Everything is numpy and driven by an explicit
``numpy.random.Generator`` so runs are repeatable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Augment"]


@dataclass
class Augment:
    """Random flips, 90 degree rotations and light brightness/contrast jitter.

    Parameters
    ----------
    flip : bool
        Random horizontal and vertical flips.
    rot90 : bool
        Random rotation by a multiple of 90 degrees.
    brightness, contrast : float
        Maximum additive brightness shift (fraction of the range) and multiplicative
        contrast change (``1 +- contrast``).
    """

    flip: bool = True
    rot90: bool = True
    brightness: float = 0.1
    contrast: float = 0.1

    def __call__(
        self, image: np.ndarray, masks: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Augment ``image`` (H, W, C float in [0, 1]) and ``masks`` (N, H, W) together."""
        if self.flip and rng.random() < 0.5:
            image, masks = image[:, ::-1], masks[:, :, ::-1]
        if self.flip and rng.random() < 0.5:
            image, masks = image[::-1], masks[:, ::-1]
        if self.rot90:
            k = int(rng.integers(4))
            if k:
                image = np.rot90(image, k, axes=(0, 1))
                masks = np.rot90(masks, k, axes=(1, 2))
        if self.brightness or self.contrast:
            c = 1.0 + rng.uniform(-self.contrast, self.contrast)
            b = rng.uniform(-self.brightness, self.brightness)
            mean = image.mean()
            image = np.clip((image - mean) * c + mean + b, 0.0, 1.0)
        return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(masks)
