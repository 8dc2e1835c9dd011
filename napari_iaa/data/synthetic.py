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

import csv
import hashlib
import io
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from napari_iaa.errors import DatasetError

__all__ = ["AnnotatorHabit", "ANNOTATOR_POOL", "generate_synthetic_dataset", "render_case"]


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


# --------------------------------------------------------------------------- fields
@lru_cache(maxsize=256)
def _interp_taps(n_out: int, cell: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Gaussian interpolation taps from a coarse grid (spacing ``cell`` px) to ``n_out`` px.

    Returns the indices and weights, each (7, n_out), and the coarse grid size.
    """
    n_in = int(np.ceil(n_out / cell)) + 6
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) / cell + 3.0
    base = np.floor(pos).astype(np.int64)
    idx = base[None, :] + np.arange(-3, 4)[:, None]
    w = np.exp(-0.5 * ((pos[None, :] - idx) / 0.85) ** 2)
    w /= w.sum(axis=0, keepdims=True)
    return idx, w.astype(np.float32), n_in


@lru_cache(maxsize=256)
def _linear_taps(n_out: int, factor: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos = np.clip((np.arange(n_out) + 0.5) / factor - 0.5, 0, n_in - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (pos - i0).astype(np.float32)
    return i0, i1, w1


def _upsample_linear(small: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling by gathers (cheaper than ``ndimage.zoom``)."""
    y0, y1, wy = _linear_taps(shape[0], factor, small.shape[0])
    x0, x1, wx = _linear_taps(shape[1], factor, small.shape[1])
    rows = small[y0] * (1 - wy)[:, None] + small[y1] * wy[:, None]
    return rows[:, x0] * (1 - wx)[None, :] + rows[:, x1] * wx[None, :]


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions that do not touch the image border (one labelling pass)."""
    from scipy import ndimage

    lab, n = ndimage.label(~mask)
    if n == 0:
        return mask
    keep = np.zeros(n + 1, dtype=bool)
    for edge in (lab[0], lab[-1], lab[:, 0], lab[:, -1]):
        keep[edge] = True
    keep[0] = False
    return ~keep[lab]


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Zero-mean, unit-std smooth random field with features about ``cell`` pixels wide.

    Separable Gaussian interpolation of coarse white noise, done with gathers (no BLAS, so
    it stays fast on a busy machine).
    """
    cell = round(max(float(cell), 1.0), 2)
    f_down = int(cell // 4)
    if f_down >= 2:  # smooth enough to build at lower resolution, then bilinear zoom
        small = (-(-shape[0] // f_down), -(-shape[1] // f_down))
        fs = _smooth_field(rng, small, cell / f_down)
        return _upsample_linear(fs, f_down, shape)
    iy, wy, ny = _interp_taps(shape[0], cell)
    ix, wx, nx = _interp_taps(shape[1], cell)
    g = rng.standard_normal((ny, nx)).astype(np.float32)
    cols = np.zeros((nx, shape[0]), np.float32)  # first pass along y, transposed
    gt = np.ascontiguousarray(g.T)
    for k in range(iy.shape[0]):
        cols += gt[:, iy[k]] * wy[k][None, :]
    f = np.zeros((shape[1], shape[0]), np.float32)  # second pass along x, row gathers
    for k in range(ix.shape[0]):
        f += cols[ix[k]] * wx[k][:, None]
    f = np.ascontiguousarray(f.T)
    s = float(f.std())
    return (f - f.mean()) / (s if s > 0 else 1.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# --------------------------------------------------------------------------- lesion
@dataclass
class _Lesion:
    score: np.ndarray  # border score s (float32), lesion where > 0
    width: float  # border width in px
    ambiguity: float  # amplitude of the annotators' ambiguity fields (logit units)
    radius: float
    irregularity: float


def _make_lesion(rng: np.random.Generator, h: int, w: int, malignant: bool) -> _Lesion:
    m = min(h, w)
    cy = h / 2 + rng.normal(0, 0.06) * h
    cx = w / 2 + rng.normal(0, 0.06) * w
    radius = rng.uniform(0.17, 0.30) * m
    elong = rng.uniform(1.1, 1.7) if malignant else rng.uniform(1.0, 1.35)
    phi = rng.uniform(0, np.pi)
    yy = (np.arange(h, dtype=np.float32) - cy)[:, None]
    xx = (np.arange(w, dtype=np.float32) - cx)[None, :]
    c, s = np.float32(np.cos(phi)), np.float32(np.sin(phi))
    u = xx * c + yy * s
    v = -xx * s + yy * c
    se = np.float32(np.sqrt(elong))
    rho = np.sqrt((u / se) ** 2 + (v * se) ** 2)
    theta = np.arctan2(v, u)

    n_bins = 2048
    tb = np.linspace(-np.pi, np.pi, n_bins, endpoint=False)
    r = np.ones(n_bins)
    ks = np.arange(1, 13)
    if malignant:
        amps = rng.normal(0, 1, ks.size) * 0.22 / ks**0.7
        amps[0] = rng.uniform(0.08, 0.2)  # asymmetry
    else:
        amps = rng.normal(0, 1, ks.size) * 0.05 / ks
        amps[0] = rng.uniform(0.0, 0.04)
    phases = rng.uniform(0, 2 * np.pi, ks.size)
    for k, a, p in zip(ks, amps, phases):
        r += a * np.cos(k * tb + p)
    r = np.clip(r, 0.35, None) * radius
    idx = ((theta + np.pi) * (n_bins / (2 * np.pi))).astype(np.int32) % n_bins
    r_map = r.astype(np.float32)[idx]

    width = radius * (rng.uniform(0.07, 0.15) if malignant else rng.uniform(0.02, 0.05))
    score = (r_map - rho) / np.float32(width)
    structure = _smooth_field(rng, (h, w), radius / 2.5)
    score += structure * np.float32(1.6 if malignant else 0.3)
    irregularity = float(np.abs(amps[1:]).sum())
    return _Lesion(score, float(width), 1.3 if malignant else 0.35, float(radius), irregularity)


def _render_image(
    rng: np.random.Generator, lesion: _Lesion, malignant: bool, hairs: bool
) -> np.ndarray:
    h, w = lesion.score.shape
    m = min(h, w)
    # skin: base tone, gradient, low-frequency variation, fine noise
    base = np.array(
        [rng.uniform(185, 235), rng.uniform(135, 185), rng.uniform(105, 155)], dtype=np.float32
    )
    ang = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(ang) * np.linspace(-1, 1, w, dtype=np.float32)[None, :]
            + np.sin(ang) * np.linspace(-1, 1, h, dtype=np.float32)[:, None])
    tone = 1.0 + 0.06 * ramp + 0.04 * _smooth_field(rng, (h, w), m / 4)
    img = base[None, None, :] * tone[..., None]
    redness = _smooth_field(rng, (h, w), m / 6)
    img[..., 0] += 6 * redness
    img[..., 2] -= 3 * redness

    # lesion colour and texture
    alpha = _sigmoid(lesion.score)
    core = _sigmoid(lesion.score * 0.5 - 1.5)  # darker centre
    dark = rng.uniform(0.7, 0.97)
    brown = np.array([rng.uniform(85, 140), rng.uniform(50, 85), rng.uniform(30, 60)], np.float32)
    texture = _smooth_field(rng, (h, w), lesion.radius / 4)
    fine = _smooth_field(rng, (h, w), max(m / 64, 1.5))
    network = (np.abs(fine) < 0.35).astype(np.float32)  # reticular lines
    col = brown[None, None, :] * (1.0 - 0.18 * texture[..., None] - 0.25 * core[..., None])
    col -= 25 * network[..., None] * (0.6 if malignant else 0.4)
    if malignant:
        blue = np.array([95, 105, 130], np.float32)
        bw = np.clip(_smooth_field(rng, (h, w), lesion.radius / 3) - 0.6, 0, 1)[..., None]
        col = col * (1 - bw) + blue * bw
        black = np.clip(_smooth_field(rng, (h, w), lesion.radius / 6) - 1.1, 0, 1)[..., None]
        col = col * (1 - 0.8 * black)
        regress = np.clip(_smooth_field(rng, (h, w), lesion.radius / 3) - 0.9, 0, 1)
        alpha = alpha * (1 - 0.6 * regress)
    a = (alpha * dark)[..., None]
    img = img * (1 - a) + col * a

    if hairs:
        hair_mask = np.zeros((h, w), dtype=bool)
        for _ in range(int(rng.integers(2, 12))):
            p0 = rng.uniform(0, 1, 2) * (h, w)
            p2 = rng.uniform(0, 1, 2) * (h, w)
            p1 = (p0 + p2) / 2 + rng.normal(0, 0.2 * m, 2)
            n = int(3 * (np.abs(p2 - p0).sum() + m / 4))
            t = np.linspace(0, 1, n)[:, None]
            pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
            thick = max(1, int(round(m / 256 * rng.uniform(0.8, 2.2))))
            for dy in range(thick):
                for dx in range(thick):
                    yy = np.clip(np.round(pts[:, 0]).astype(int) + dy, 0, h - 1)
                    xx = np.clip(np.round(pts[:, 1]).astype(int) + dx, 0, w - 1)
                    hair_mask[yy, xx] = True
        hair_col = np.array([rng.uniform(30, 70), rng.uniform(20, 45), rng.uniform(15, 35)], np.float32)
        img[hair_mask] = img[hair_mask] * 0.25 + hair_col * 0.75

    # vignetting and, sometimes, the dark circle of the dermoscope's field of view
    yy = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :] * (w / h)
    d2 = yy**2 + xx**2
    img *= (1 - rng.uniform(0.08, 0.3) * d2 / d2.max())[..., None]
    if rng.random() < 0.3:
        rad = rng.uniform(1.05, 1.4)
        edge = _sigmoid((rad - np.sqrt(d2)) * 40)
        img *= edge[..., None]
    img += rng.normal(0, 2.5, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- annotators
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
        return _fill_holes(mask)
    mask = _fill_holes(_largest_component(mask))
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


def _poor_mask(rng: np.random.Generator, mask: np.ndarray, lesion: _Lesion) -> tuple[np.ndarray, str]:
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


def _annotate(
    rng: np.random.Generator, lesion: _Lesion, habit: AnnotatorHabit, scale: float
) -> tuple[np.ndarray, bool]:
    h, w = lesion.score.shape
    b = habit.bias + rng.normal(0, habit.noise)
    b_px = habit.bias_px * scale + rng.normal(0, 0.7 * scale)
    amb = _smooth_field(rng, (h, w), lesion.radius / 2.2) * np.float32(lesion.ambiguity)
    s = lesion.score + amb + np.float32(b + b_px / lesion.width)
    if habit.style == "pixel":
        s += _smooth_field(rng, (h, w), 3 * scale) * np.float32(0.25)
    mask = _trace(s > 0, habit, scale)
    if not mask.any():  # an annotator always draws something
        mask = lesion.score > 0
    poor = rng.random() < habit.poor_rate
    if poor:
        mask, _ = _poor_mask(rng, mask, lesion)
    return mask, poor


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
    lesion = _make_lesion(rng, h, w, malignant)
    image = _render_image(rng, lesion, malignant, hairs=bool(rng.random() < 0.45))
    lo, hi = n_annotators
    k = int(rng.integers(lo, hi + 1))
    chosen = [ANNOTATOR_POOL[i] for i in sorted(rng.choice(len(ANNOTATOR_POOL), size=k, replace=False))]
    if rng.random() < 0.06:  # one annotator outlines the lesion a second time
        chosen.append(chosen[int(rng.integers(0, len(chosen)))])
    scale = min(h, w) / 256
    masks = [(habit, *_annotate(rng, lesion, habit, scale)) for habit in chosen]
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


# --------------------------------------------------------------------------- writer
SEG_COLUMNS = ("ISIC_id", "img_filename", "seg_filename", "annotator", "tool", "skill_level", "mskObjectID", "mask_md5")
IMG_COLUMNS = (
    "isic_id", "benign_malignant", "diagnosis_1", "diagnosis_2", "diagnosis_3", "patient_id",
    "lesion_id", "age_approx", "sex", "anatom_site_general", "pixels_x", "pixels_y",
    "synth_radius_px", "synth_border_width_px", "synth_irregularity", "synth_poor_masks",
)
_MARKER = ".napari-iaa-synthetic"


def _png_bytes(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _encode_case(args: tuple) -> tuple[str, bytes, list[tuple[str, bytes, list[object]]], list[object]]:
    """Render and encode case ``i`` (top level so that worker processes can run it)."""
    i, seed, size, n_ann, image_format, malignant_fraction = args
    c = render_case(i, seed, size, n_ann, malignant_fraction)
    iid = f"SYN_{i:07d}"
    img_name = f"{iid}.{image_format}"
    buf = io.BytesIO()
    if image_format == "jpg":
        Image.fromarray(c["image"]).save(buf, format="JPEG", quality=92)
    else:
        Image.fromarray(c["image"]).save(buf, format="PNG")
    masks = []
    n_poor = 0
    for (habit, mask, poor), obj in zip(c["masks"], c["object_ids"]):
        data = _png_bytes(mask)
        seg_name = f"{iid}_{habit.annotator}_{habit.tool}_{habit.skill}_{obj}.png"
        row = [iid, img_name, seg_name, habit.annotator, habit.tool, habit.skill, obj, hashlib.md5(data).hexdigest()]
        masks.append((seg_name, data, row))
        n_poor += int(poor)
    img_row: list[object] = [
        iid, "malignant" if c["malignant"] else "benign", *c["diagnosis"],
        c["age"], c["sex"], c["site"], size[1], size[0], round(c["radius"], 2),
        round(c["border_width"], 2), round(c["irregularity"], 4), n_poor,
    ]
    return img_name, buf.getvalue(), masks, img_row


def generate_synthetic_dataset(
    out: str | os.PathLike,
    n: int = 40,
    seed: int = 0,
    size: tuple[int, int] = (256, 256),
    n_annotators: tuple[int, int] = (2, 5),
    image_format: str = "jpg",
    malignant_fraction: float = 0.4,
    overwrite: bool = False,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Write a synthetic multi-annotator data set in the IMA++ layout.

    Parameters
    ----------
    out : path-like
        Output folder (created). ``images/SYN_0000000.jpg``, ``masks/`` with IMA++ names
        ``SYN_0000000_A03_T2_S1_<objectid>.png`` (0/255), ``synthetic_seg_metadata.csv``
        and ``synthetic_img_metadata.csv`` (``benign_malignant``, ``diagnosis_1..3``,
        ``patient_id``, ``lesion_id`` and the generator's lesion parameters).
    n : int
        Number of images.
    seed : int
        Seed; image ``i`` depends only on ``(seed, i)``.
    size : (int, int)
        Image height and width.
    n_annotators : (int, int)
        Inclusive range of distinct annotators per image (at most 8).
    image_format : {"jpg", "png"}
        Image file format (JPEG quality 92 keeps the sample small).
    malignant_fraction : float
        Probability that an image is malignant.
    overwrite : bool
        Replace a previous synthetic data set in ``out``; otherwise ``out`` must be empty
        or absent.
    workers : int, optional
        Render in this many processes (same files as with one; for large benchmarks).
    progress, should_stop
        Progress callback ``(done, total)`` and cancel check (stops after the current
        image; the CSVs then list the images written so far).

    Returns
    -------
    Path
        ``out``.
    """
    out = Path(out)
    lo, hi = int(n_annotators[0]), int(n_annotators[1])
    if not 1 <= lo <= hi <= len(ANNOTATOR_POOL):
        raise DatasetError(f"n_annotators must satisfy 1 <= lo <= hi <= {len(ANNOTATOR_POOL)}, got {n_annotators}")
    if image_format not in ("jpg", "png"):
        raise DatasetError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise DatasetError(f"{out}: output folder is not empty (pass overwrite=True)")
        if not (out / _MARKER).is_file():
            raise DatasetError(f"{out}: not a synthetic data set written by napari-iaa; refusing to overwrite")
        for sub in ("images", "masks"):
            shutil.rmtree(out / sub, ignore_errors=True)
        for f in out.glob("synthetic_*_metadata.csv"):
            f.unlink()
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text(f"seed={seed} n={n} size={size[0]}x{size[1]}\n", encoding="utf-8")

    seg_rows: list[list[object]] = []
    img_rows: list[list[object]] = []
    patient = -1
    args = [(i, seed, (int(size[0]), int(size[1])), (lo, hi), image_format, malignant_fraction) for i in range(int(n))]
    pool = None
    if workers is not None and int(workers) > 1 and n > 1:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=int(workers))
        results = pool.map(_encode_case, args, chunksize=4)
    else:
        results = map(_encode_case, args)
    try:
        for i, (img_name, img_bytes, masks, row) in enumerate(results):
            if should_stop is not None and should_stop():
                break
            (out / "images" / img_name).write_bytes(img_bytes)
            for seg_name, data, seg_row in masks:
                (out / "masks" / seg_name).write_bytes(data)
                seg_rows.append(seg_row)
            if i % 5 != 4:  # every fifth lesion belongs to the previous image's patient
                patient += 1
            row[5:5] = [f"SYNP_{seed}_{patient:05d}", f"SYNL_{seed}_{i:07d}"]
            img_rows.append(row)
            if progress is not None:
                progress(i + 1, int(n))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    for name, cols, rows in (
        ("synthetic_seg_metadata.csv", SEG_COLUMNS, seg_rows),
        ("synthetic_img_metadata.csv", IMG_COLUMNS, img_rows),
    ):
        with open(out / name, "w", newline="", encoding="utf-8") as fh:
            wr = csv.writer(fh)
            wr.writerow(cols)
            wr.writerows(rows)
    return out
