"""One synthetic case in memory: image, annotators' masks, diagnosis and metadata."""

from __future__ import annotations

import numpy as np

from napari_iaa.data.synthetic._annotators import ANNOTATOR_POOL, annotate
from napari_iaa.data.synthetic._lesion import make_lesion, render_image

__all__ = ["render_case"]

_BENIGN_DX = (
    ("Benign", "Benign melanocytic proliferations", "Nevus"),
    ("Benign", "Benign melanocytic proliferations", "Nevus, Junctional"),
    ("Benign", "Benign epidermal proliferations", "Seborrheic keratosis"),
    ("Benign", "Benign soft tissue proliferations - Fibro-histiocytic", "Dermatofibroma"),
)
_MALIGNANT_DX = (
    ("Malignant", "Malignant melanocytic proliferations (Melanoma)", "Melanoma, NOS"),
    ("Malignant", "Malignant melanocytic proliferations (Melanoma)", "Melanoma in situ"),
    ("Malignant", "Malignant adnexal epithelial proliferations - Follicular", "Basal cell carcinoma"),
)
_SITES = ("torso", "upper extremity", "lower extremity", "head/neck", "back")



def render_case(
    index: int,
    seed: int = 0,
    size: tuple[int, int] = (256, 256),
    n_annotators: tuple[int, int] = (2, 5),
    malignant_fraction: float = 0.4,
) -> dict:
    """Generate one synthetic case in memory (deterministic in ``(seed, index)``).

    Returns
    -------
    dict
        ``image`` (H x W x 3 uint8), ``masks`` (list of ``(habit, bool mask, poor)``),
        ``malignant`` (bool), ``lesion`` (radius, border width, irregularity) and ``rng``
        state consumers (diagnosis ...).
    """
    h, w = int(size[0]), int(size[1])
    rng = np.random.default_rng([int(seed), int(index)])
    malignant = bool(rng.random() < malignant_fraction)
    lesion = make_lesion(rng, h, w, malignant)
    image = render_image(rng, lesion, malignant, hairs=bool(rng.random() < 0.45))
    lo, hi = n_annotators
    k = int(rng.integers(lo, hi + 1))
    chosen = [ANNOTATOR_POOL[i] for i in sorted(rng.choice(len(ANNOTATOR_POOL), size=k, replace=False))]
    if rng.random() < 0.06:  # one annotator outlines the lesion a second time
        chosen.append(chosen[int(rng.integers(0, len(chosen)))])
    scale = min(h, w) / 256
    masks = [(habit, *annotate(rng, lesion, habit, scale)) for habit in chosen]
    dx = _MALIGNANT_DX if malignant else _BENIGN_DX
    diagnosis = dx[int(rng.integers(0, len(dx)))]
    return {
        "image": image,
        "masks": masks,
        "malignant": malignant,
        "diagnosis": diagnosis,
        "radius": lesion.radius,
        "border_width": lesion.width,
        "irregularity": lesion.irregularity,
        "age": int(rng.integers(20, 86)),
        "sex": ("male", "female")[int(rng.integers(0, 2))],
        "site": _SITES[int(rng.integers(0, len(_SITES)))],
        "object_ids": [rng.bytes(12).hex() for _ in masks],
    }


