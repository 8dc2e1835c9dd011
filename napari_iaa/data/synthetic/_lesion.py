"""A synthetic lesion (its border score) and the dermoscopy-like image around it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_iaa.data.synthetic._fields import sigmoid, smooth_field

__all__ = ["Lesion", "make_lesion", "render_image"]


@dataclass
class Lesion:
    score: np.ndarray  # border score s (float32), lesion where > 0
    width: float  # border width in px
    ambiguity: float  # amplitude of the annotators' ambiguity fields (logit units)
    radius: float
    irregularity: float


def make_lesion(rng: np.random.Generator, h: int, w: int, malignant: bool) -> Lesion:
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
    structure = smooth_field(rng, (h, w), radius / 2.5)
    score += structure * np.float32(1.6 if malignant else 0.3)
    irregularity = float(np.abs(amps[1:]).sum())
    return Lesion(score, float(width), 1.3 if malignant else 0.35, float(radius), irregularity)


def render_image(
    rng: np.random.Generator, lesion: Lesion, malignant: bool, hairs: bool
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
    tone = 1.0 + 0.06 * ramp + 0.04 * smooth_field(rng, (h, w), m / 4)
    img = base[None, None, :] * tone[..., None]
    redness = smooth_field(rng, (h, w), m / 6)
    img[..., 0] += 6 * redness
    img[..., 2] -= 3 * redness

    # lesion colour and texture
    alpha = sigmoid(lesion.score)
    core = sigmoid(lesion.score * 0.5 - 1.5)  # darker centre
    dark = rng.uniform(0.7, 0.97)
    brown = np.array([rng.uniform(85, 140), rng.uniform(50, 85), rng.uniform(30, 60)], np.float32)
    texture = smooth_field(rng, (h, w), lesion.radius / 4)
    fine = smooth_field(rng, (h, w), max(m / 64, 1.5))
    network = (np.abs(fine) < 0.35).astype(np.float32)  # reticular lines
    col = brown[None, None, :] * (1.0 - 0.18 * texture[..., None] - 0.25 * core[..., None])
    col -= 25 * network[..., None] * (0.6 if malignant else 0.4)
    if malignant:
        blue = np.array([95, 105, 130], np.float32)
        bw = np.clip(smooth_field(rng, (h, w), lesion.radius / 3) - 0.6, 0, 1)[..., None]
        col = col * (1 - bw) + blue * bw
        black = np.clip(smooth_field(rng, (h, w), lesion.radius / 6) - 1.1, 0, 1)[..., None]
        col = col * (1 - 0.8 * black)
        regress = np.clip(smooth_field(rng, (h, w), lesion.radius / 3) - 0.9, 0, 1)
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
        edge = sigmoid((rad - np.sqrt(d2)) * 40)
        img *= edge[..., None]
    img += rng.normal(0, 2.5, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


