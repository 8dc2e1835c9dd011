"""Synthetic CT-like volumes with ellipsoid-like lesions and annotators with habits.

Each case is a small volume on an anisotropic grid (default ``(24, 64, 64)`` voxels of
``2.5 x 0.7 x 0.7`` mm, array axis order ``z, y, x``): lung-like background (about
-820 HU with smooth texture and noise) holding one ellipsoid-like lesion (radii 4-10 mm
in plane, 3-8 mm along z, randomly rotated, with a bumpy surface and a soft border) and,
in about a third of the cases, a small satellite lesion (2.5-4 mm). Everything is
computed in millimetres, so the lesions are round in the body, not in voxels.

The lesion is a *score* ``s(x)`` in mm (about the signed distance to its border, > 0
inside). An annotator marks ``s + bias + ambiguity > 0`` and then applies its habits:

- ``bias_mm``: a persistent boundary shift (> 0 over-segments, < 0 under-segments),
  plus per-case noise ``noise_mm``;
- ``smooth_mm``: the mask is smoothed (a Gaussian of that width in mm, thresholded at
  one half), rounding off bumps and thin protrusions;
- ``thin_fraction``: slices at the lesion's ends whose cross-section is smaller than
  this fraction of the largest one are left out (a reader who skips the thin caps);
- ``detect_small``: the probability of marking a small satellite lesion at all.

The ``ambiguity`` is a smooth random field of the annotator's own, scaled by the
lesion's border width, so annotators also disagree where the border is soft. Everything
is seeded by ``(seed, case index)`` (and the annotator's place in the pool), so a case
does not depend on how many were generated. Written as NIfTI in the ``folders`` layout:
``<case>/image.nii.gz`` (int16 HU) and ``<case>/<annotator>.nii.gz`` (uint8 0/1), with
the spacing in the header, through :func:`napari_iaa.data.volumes.write_volume`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from napari_iaa.data.volumes import write_volume
from napari_iaa.data.writers import atomic_write_json
from napari_iaa.errors import DatasetError

__all__ = [
    "VOLUME_ANNOTATORS",
    "SyntheticVolume",
    "VolumeAnnotator",
    "generate_synthetic_volumes",
    "render_volume_case",
]

_MARKER = "synthetic3d.json"


@dataclass(frozen=True)
class VolumeAnnotator:
    """Persistent habits of a simulated reader of volumes.

    Attributes
    ----------
    annotator : str
        Id, also the mask file stem (``R1`` -> ``R1.nii.gz``).
    habit : str
        One-line description.
    bias_mm : float
        Boundary shift in mm; > 0 draws outside the border, < 0 inside.
    noise_mm : float
        Per-case spread of the shift (mm).
    smooth_mm : float
        Width (sigma, mm) of the smoothing of the drawn mask; 0: none.
    thin_fraction : float
        End slices with a cross-section below this fraction of the largest are left out.
    detect_small : float
        Probability of marking a small satellite lesion.
    """

    annotator: str
    habit: str
    bias_mm: float
    noise_mm: float
    smooth_mm: float
    thin_fraction: float
    detect_small: float


#: The fixed pool of simulated readers; a data set with ``n_annotators=k`` uses the first k.
VOLUME_ANNOTATORS: tuple[VolumeAnnotator, ...] = (
    VolumeAnnotator("R1", "over-segments", 1.0, 0.3, 0.0, 0.0, 0.9),
    VolumeAnnotator("R2", "under-segments", -0.9, 0.3, 0.0, 0.0, 0.7),
    VolumeAnnotator("R3", "smooths the outline", 0.3, 0.3, 1.5, 0.0, 0.8),
    VolumeAnnotator("R4", "leaves out thin end slices", 0.0, 0.3, 0.5, 0.4, 0.5),
    VolumeAnnotator("R5", "careful", 0.1, 0.2, 0.0, 0.0, 0.95),
    VolumeAnnotator("R6", "hurried: smooth, under, skips caps", -0.4, 0.7, 1.2, 0.25, 0.4),
)


@dataclass(frozen=True)
class SyntheticVolume:
    """One rendered case: ``image`` (int16 HU), ``masks`` (annotator -> bool) and its info."""

    case_id: str
    image: np.ndarray
    masks: dict[str, np.ndarray]
    spacing: tuple[float, float, float]
    info: dict[str, float | int | str]


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...],
                  spacing: tuple[float, ...], sigma_mm: float) -> np.ndarray:
    """A smooth random field of unit standard deviation (correlation length in mm)."""
    from scipy import ndimage

    f = ndimage.gaussian_filter(rng.standard_normal(shape),
                                [sigma_mm / s for s in spacing], mode="reflect")
    sd = float(f.std())
    return f / sd if sd > 0 else f


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """A random rotation (any in-plane angle, a tilt of at most 25 degrees)."""
    a, t = rng.uniform(0, np.pi), rng.uniform(-0.45, 0.45)
    rz = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rx = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    return rz @ rx


def _lesion_score(grid: np.ndarray, centre: np.ndarray, radii: np.ndarray,
                  rot: np.ndarray) -> np.ndarray:
    """About the signed distance (mm) to an ellipsoid's surface, > 0 inside."""
    local = np.tensordot(rot.T, grid - centre[:, None, None, None], axes=1)
    rho = np.sqrt(sum((local[k] / radii[k]) ** 2 for k in range(3)))
    return (1.0 - rho) * float(radii.min())


def _lesions(rng: np.random.Generator, shape: tuple[int, ...], spacing: np.ndarray,
             grid: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Scores (mm) of the main lesion (with a bumpy surface) and of an optional satellite."""
    extent = np.array(shape) * spacing
    radii = np.array([rng.uniform(3.0, 8.0), rng.uniform(4.0, 10.0), rng.uniform(4.0, 10.0)])
    radii = np.minimum(radii, 0.38 * extent)
    centre = extent / 2 + rng.uniform(-0.08, 0.08, 3) * extent
    bump = rng.uniform(0.3, 1.2)
    main = _lesion_score(grid, centre, radii, _rotation(rng))
    main = main + bump * _smooth_field(rng, shape, tuple(spacing), 3.0)
    info = {"radius_z_mm": round(float(radii[0]), 2), "radius_y_mm": round(float(radii[1]), 2),
            "radius_x_mm": round(float(radii[2]), 2), "bumpiness_mm": round(float(bump), 2)}
    small = None
    if rng.random() < 0.35:
        r = rng.uniform(2.5, 4.0)
        for _ in range(20):  # away from the main lesion, inside the volume
            c = rng.uniform(r + spacing, extent - r - spacing)
            if np.linalg.norm(c - centre) > radii.max() + r + 3.0:
                small = _lesion_score(grid, c, np.array([r, r, r]), np.eye(3))
                info["satellite_radius_mm"] = round(float(r), 2)
                break
    info["n_lesions"] = 1 + (small is not None)
    return main, small, info


def _ct_image(rng: np.random.Generator, shape: tuple[int, ...], spacing: tuple[float, ...],
              inside: np.ndarray) -> np.ndarray:
    """Lung-like HU background with the lesions (soft tissue) blended in by ``inside``."""
    bg = -820.0 + 45.0 * _smooth_field(rng, shape, spacing, 4.0)
    tissue = 25.0 + 20.0 * _smooth_field(rng, shape, spacing, 2.0)
    img = bg + (tissue - bg) * inside + rng.normal(0.0, 8.0, shape)
    return np.clip(np.rint(img), -1024, 3071).astype(np.int16)


def _leave_out_thin_ends(mask: np.ndarray, fraction: float) -> np.ndarray:
    """Clear the end slices whose cross-section is below ``fraction`` of the largest."""
    if fraction <= 0 or not mask.any():
        return mask
    area = mask.sum(axis=(1, 2))
    thin = area < fraction * area.max()
    nz = np.flatnonzero(area)
    lo, hi = nz[0], nz[-1]
    while lo < hi and thin[lo]:
        mask[lo] = False
        lo += 1
    while hi > lo and thin[hi]:
        mask[hi] = False
        hi -= 1
    return mask


def _annotate(score: np.ndarray, small: np.ndarray | None, habit: VolumeAnnotator,
              rng: np.random.Generator, spacing: tuple[float, ...], border_mm: float
              ) -> np.ndarray:
    """One annotator's mask of the case, drawn with its habits."""
    from scipy import ndimage

    shift = habit.bias_mm + rng.normal(0.0, habit.noise_mm)
    amb = border_mm * _smooth_field(rng, score.shape, spacing, 2.5)
    mask = score + shift + amb > 0
    if small is not None and rng.random() < habit.detect_small:
        mask |= small + 0.5 * shift > 0
    if habit.smooth_mm > 0 and mask.any():
        sigma = [habit.smooth_mm / s for s in spacing]
        mask = ndimage.gaussian_filter(mask.astype(np.float32), sigma) > 0.5
    mask = ndimage.binary_fill_holes(mask)
    return _leave_out_thin_ends(mask, habit.thin_fraction)


def render_volume_case(
    i: int,
    seed: int = 0,
    shape: tuple[int, int, int] = (24, 64, 64),
    spacing: tuple[float, float, float] = (2.5, 0.7, 0.7),
    n_annotators: int = 4,
) -> SyntheticVolume:
    """Render case ``i`` (it depends only on ``seed``, ``i`` and the arguments).

    Parameters
    ----------
    i, seed : int
        Case index and seed.
    shape : (int, int, int)
        Volume size ``(z, y, x)`` in voxels.
    spacing : (float, float, float)
        Voxel size in mm, array axis order (``z, y, x``).
    n_annotators : int
        The first ``n_annotators`` readers of :data:`VOLUME_ANNOTATORS`.

    Returns
    -------
    SyntheticVolume
        Case id ``SYN3D_<seed>_<i:04d>``, image, masks and the lesion parameters.
    """
    shape = tuple(int(s) for s in shape)
    spacing = tuple(float(s) for s in spacing)
    if len(shape) != 3 or min(shape) < 2 or len(spacing) != 3 or min(spacing) <= 0:
        raise DatasetError(f"shape must be 3 sizes >= 2 and spacing 3 positive mm, got {shape}, {spacing}")
    if not 1 <= n_annotators <= len(VOLUME_ANNOTATORS):
        raise DatasetError(f"n_annotators must be 1..{len(VOLUME_ANNOTATORS)}, got {n_annotators}")
    rng = np.random.default_rng([int(seed), int(i)])
    sp = np.array(spacing)
    grid = np.indices(shape, dtype=np.float64) * sp[:, None, None, None]
    main, small, info = _lesions(rng, shape, sp, grid)
    border = float(rng.uniform(0.4, 1.5))
    info["border_mm"] = round(border, 2)
    score = main if small is None else np.maximum(main, small)
    inside = 1.0 / (1.0 + np.exp(-score / border))
    image = _ct_image(rng, shape, spacing, inside)
    masks = {}
    for k, habit in enumerate(VOLUME_ANNOTATORS[:n_annotators]):
        r = np.random.default_rng([int(seed), int(i), 1000 + k])
        masks[habit.annotator] = _annotate(main, small, habit, r, spacing, border)
    return SyntheticVolume(f"SYN3D_{int(seed)}_{int(i):04d}", image, masks, spacing, info)


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise DatasetError(f"{out}: output folder is not empty (pass overwrite=True)")
        if not (out / _MARKER).is_file():
            raise DatasetError(
                f"{out}: not a synthetic volume data set written by napari-iaa; refusing to overwrite"
            )
        for d in out.iterdir():
            if d.is_dir() and d.name.startswith("SYN3D_"):
                shutil.rmtree(d)
    out.mkdir(parents=True, exist_ok=True)


def generate_synthetic_volumes(
    out: str | os.PathLike,
    n: int = 6,
    seed: int = 0,
    shape: tuple[int, int, int] = (24, 64, 64),
    spacing: tuple[float, float, float] = (2.5, 0.7, 0.7),
    n_annotators: int = 4,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Write synthetic lesion volumes as NIfTI in the ``folders`` layout.

    Parameters
    ----------
    out : path-like
        Output folder (created): ``<case>/image.nii.gz``, ``<case>/<annotator>.nii.gz``,
        ``<case>/meta.json`` (the lesion parameters) and ``synthetic3d.json`` (the
        generator's arguments and the readers' habits).
    n, seed : int
        Number of cases; case ``i`` depends only on ``(seed, i)`` and the other arguments.
    shape, spacing
        Volume size ``(z, y, x)`` and voxel size in mm in the same order (default
        ``2.5 x 0.7 x 0.7`` mm: thick slices).
    n_annotators : int
        Readers per case, the first of :data:`VOLUME_ANNOTATORS` (at most 6).
    overwrite : bool
        Replace a previous data set written here; otherwise ``out`` must be empty or absent.
    progress, should_stop
        Progress callback ``(done, total)`` and cancel check (between cases).

    Returns
    -------
    Path
        ``out``.
    """
    out = Path(out)
    render_volume_case(0, seed, shape, spacing, n_annotators)  # checks the arguments
    _prepare(out, overwrite)
    spec = {"generator": "napari-iaa synthetic3d", "n": int(n), "seed": int(seed),
            "shape": [int(s) for s in shape], "spacing_mm": [float(s) for s in spacing],
            "axis_order": "z, y, x",
            "annotators": [asdict(h) for h in VOLUME_ANNOTATORS[:n_annotators]]}
    atomic_write_json(out / _MARKER, spec)
    for i in range(int(n)):
        if should_stop is not None and should_stop():
            break
        case = render_volume_case(i, seed, shape, spacing, n_annotators)
        folder = out / case.case_id
        folder.mkdir(exist_ok=True)
        write_volume(folder / "image.nii.gz", case.image, spacing=case.spacing)
        for rid, mask in case.masks.items():
            write_volume(folder / f"{rid}.nii.gz", mask, spacing=case.spacing)
        meta = {"group": case.case_id, **case.info}
        atomic_write_json(folder / "meta.json", meta)
        if progress is not None:
            progress(i + 1, int(n))
    return out
