"""Simulated annotators: their habits and how they outline a lesion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_iaa.data.synthetic._fields import fill_holes, smooth_field
from napari_iaa.data.synthetic._lesion import Lesion

__all__ = ["ANNOTATOR_POOL", "AnnotatorHabit", "annotate"]


@dataclass(frozen=True)
class AnnotatorHabit:
    """Persistent habits of a simulated annotator.

    Attributes
    ----------
    annotator : str
        Id (``A01`` ...).
    bias : float
        Boundary shift in border widths; > 0 draws outside, < 0 inside.
    bias_px : float
        Extra shift in pixels at 256 px image size (scaled with the image).
    style : str
        ``"polygon"`` (few straight segments), ``"smooth"`` (rounded brush) or ``"pixel"``.
    detail : float
        Polygon tolerance / smoothing in pixels at 256 px.
    noise : float
        Per-image spread of the bias (border widths).
    poor_rate : float
        Probability of a poor mask on an image.
    tool, skill : str
        IMA++-style tool (``T1`` .. ``T3``) and skill level (``S1`` novice, ``S2`` expert).
    """

    annotator: str
    bias: float
    bias_px: float
    style: str
    detail: float
    noise: float
    poor_rate: float
    tool: str
    skill: str


#: The fixed pool of simulated annotators.
ANNOTATOR_POOL: tuple[AnnotatorHabit, ...] = (
    AnnotatorHabit("A01", 0.6, 1.5, "polygon", 2.5, 0.35, 0.02, "T1", "S2"),
    AnnotatorHabit("A02", -0.5, -1.0, "pixel", 0.0, 0.30, 0.02, "T3", "S2"),
    AnnotatorHabit("A03", 1.2, 2.5, "smooth", 3.0, 0.50, 0.06, "T2", "S1"),
    AnnotatorHabit("A04", 0.1, 0.3, "pixel", 0.0, 0.25, 0.01, "T3", "S2"),
    AnnotatorHabit("A05", -1.0, -2.0, "polygon", 4.0, 0.50, 0.08, "T1", "S1"),
    AnnotatorHabit("A06", 0.3, 0.8, "smooth", 2.0, 0.30, 0.03, "T2", "S2"),
    AnnotatorHabit("A07", -0.2, -0.5, "polygon", 1.5, 0.40, 0.04, "T1", "S1"),
    AnnotatorHabit("A08", 0.8, 1.2, "pixel", 0.0, 0.45, 0.05, "T3", "S1"),
)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(sizes.argmax())


def _trace(mask: np.ndarray, habit: AnnotatorHabit, scale: float) -> np.ndarray:
    from scipy import ndimage

    h, w = mask.shape
    if not mask.any():
        return mask
    if habit.style == "pixel":
        lab, n = ndimage.label(mask)
        if n > 1:
            sizes = np.bincount(lab.ravel())
            sizes[0] = 0
            mask = sizes[lab] >= 0.03 * sizes.max()
        return fill_holes(mask)
    mask = fill_holes(_largest_component(mask))
    if habit.style == "smooth":
        sm = ndimage.gaussian_filter(mask.astype(np.float32), habit.detail * scale)
        out = sm > 0.5
        return out if out.any() else mask
    # polygon: outline of the largest region on a coarse grid, simplified, filled
    from skimage.draw import polygon as draw_polygon
    from skimage.measure import approximate_polygon, find_contours

    f = max(1, int(round(2 * scale)))
    small = np.pad(mask[::f, ::f], 1).astype(np.float32)
    contours = find_contours(small, 0.5)
    if not contours:
        return mask
    cont = max(contours, key=len)
    poly = approximate_polygon(cont, tolerance=habit.detail * scale / f)
    rr, cc = draw_polygon((poly[:, 0] - 1) * f + f / 2, (poly[:, 1] - 1) * f + f / 2, shape=(h, w))
    out = np.zeros((h, w), dtype=bool)
    out[rr, cc] = True
    return out if out.any() else mask


def _poor_mask(rng: np.random.Generator, mask: np.ndarray, lesion: Lesion) -> tuple[np.ndarray, str]:
    h, w = mask.shape
    kind = ("ellipse", "over", "under", "shift")[int(rng.integers(0, 4))]
    if kind in ("over", "under"):
        shift = lesion.width * 3 + rng.uniform(0.15, 0.3) * lesion.radius
        sign = 1 if kind == "over" else -1
        out = (lesion.score * np.float32(lesion.width) + np.float32(sign * shift)) > 0
        return (out if out.any() else mask), kind
    if kind == "shift":
        dy, dx = (rng.uniform(0.06, 0.12) * min(h, w) * rng.choice([-1, 1], 2)).astype(int)
        return np.roll(mask, (dy, dx), axis=(0, 1)), kind
    ys, xs = np.nonzero(mask)
    if ys.size < 3:
        return mask, "ellipse"
    cy, cx = ys.mean(), xs.mean()
    ry = (ys.max() - ys.min()) / 2 * rng.uniform(1.1, 1.4) + 1
    rx = (xs.max() - xs.min()) / 2 * rng.uniform(1.1, 1.4) + 1
    yy = (np.arange(h)[:, None] - cy) / ry
    xx = (np.arange(w)[None, :] - cx) / rx
    return (yy**2 + xx**2) <= 1, kind


def annotate(
    rng: np.random.Generator, lesion: Lesion, habit: AnnotatorHabit, scale: float
) -> tuple[np.ndarray, bool]:
    h, w = lesion.score.shape
    b = habit.bias + rng.normal(0, habit.noise)
    b_px = habit.bias_px * scale + rng.normal(0, 0.7 * scale)
    amb = smooth_field(rng, (h, w), lesion.radius / 2.2) * np.float32(lesion.ambiguity)
    s = lesion.score + amb + np.float32(b + b_px / lesion.width)
    if habit.style == "pixel":
        s += smooth_field(rng, (h, w), 3 * scale) * np.float32(0.25)
    mask = _trace(s > 0, habit, scale)
    if not mask.any():  # an annotator always draws something
        mask = lesion.score > 0
    poor = rng.random() < habit.poor_rate
    if poor:
        mask, _ = _poor_mask(rng, mask, lesion)
    return mask, poor


