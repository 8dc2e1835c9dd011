"""Synthetic dermoscopy-like lesions with several simulated annotators.

The generator draws, for each image, a pigmented lesion on skin and lets 2 to 5 annotators
from a fixed pool of eight (:data:`ANNOTATOR_POOL`) outline it. The lesion is described by
a *border score* ``s(x)``: a star-shaped radius ``r(theta)`` (a few harmonics), an
elongation, a smooth structure field, and a border width ``w``; the lesion's opacity is
``sigmoid(s)``. An annotator marks ``s + bias + ambiguity > 0`` where

- ``bias`` is the annotator's persistent habit (drawing inside or outside the border),
  in units of the border width plus a few pixels, plus per-image noise;
- ``ambiguity`` is a smooth field of its own, larger for fuzzy lesions, so annotators
  include or leave out the faint parts differently;
- the outline is then traced in the annotator's style: a polygon with few vertices,
  a smooth brush stroke, or pixel-accurate;
- now and then a mask is poor (a loose ellipse, gross over/under-segmentation, a shift).

Malignant lesions get more irregular, asymmetric outlines, a wider (fuzzier) border,
multi-coloured texture and a stronger ambiguity field, so their annotators agree less, as
IMA++ found on real images. Everything is seeded by ``(seed, image index)``.
"""

from __future__ import annotations

from napari_iaa.data.synthetic._annotators import ANNOTATOR_POOL, AnnotatorHabit
from napari_iaa.data.synthetic._cases import render_case
from napari_iaa.data.synthetic._writer import generate_synthetic_dataset

__all__ = ["ANNOTATOR_POOL", "AnnotatorHabit", "generate_synthetic_dataset", "render_case"]
