"""Cases, index entries and problem reports.

A :class:`CaseEntry` is what a reader finds on disk (paths and metadata, no pixels); a
:class:`Case` is an entry with its image and masks decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_iaa.data.io import image_shape, read_image_grid, read_mask
from napari_iaa.data.volumes import is_volume_path, volume_header
from napari_iaa.errors import DatasetError, IAAError

__all__ = [
    "Case",
    "CaseEntry",
    "Problem",
    "ValidationReport",
    "check_case_id",
    "case_id_to_filename",
    "rater_of",
]


def strip_path(message: str, path: str | Path) -> str:
    """``message`` without a leading ``"<path>: "`` (a problem names its path once)."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def rater_of(mask_id: str) -> str:
    """The annotator id of a mask id (``"A04#2"`` -> ``"A04"``)."""
    return mask_id.split("#", 1)[0]


_BAD_ID_CHARS = re.compile(r"[\x00-\x1f\\:]")


def check_case_id(case_id: str, source: str | Path | None = None) -> str:
    """Return ``case_id`` if it is safe to use inside an output folder, else raise.

    A case id may contain ``/`` (LIDC ids are ``patient/nodule/slice-n``) but no empty,
    ``.`` or ``..`` component, no leading ``/``, no backslash, colon or control character,
    so that ``out_dir / case_id`` can never leave ``out_dir``.

    Raises
    ------
    DatasetError
        Naming ``source`` (the file the id came from) and the offending id.
    """
    where = f"{source}: " if source is not None else ""
    if not isinstance(case_id, str) or not case_id.strip():
        raise DatasetError(f"{where}empty case id")
    if case_id != case_id.strip():
        raise DatasetError(f"{where}case id {case_id!r} has leading or trailing spaces")
    if _BAD_ID_CHARS.search(case_id):
        raise DatasetError(
            f"{where}case id {case_id!r} contains a backslash, colon or control character"
        )
    if case_id.startswith("/"):
        raise DatasetError(f"{where}case id {case_id!r} is an absolute path")
    parts = case_id.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise DatasetError(
            f"{where}case id {case_id!r} would escape or alias an output folder "
            "(contains '..', '.' or an empty path component)"
        )
    return case_id


def case_id_to_filename(case_id: str) -> str:
    """A flat, safe file name for a case id (``/`` -> ``__``)."""
    check_case_id(case_id)
    return case_id.replace("/", "__")


@dataclass(frozen=True)
class Problem:
    """Something wrong with one file or case; the rest of the data set still loads."""

    path: Path | None
    message: str
    case_id: str | None = None

    def __str__(self) -> str:
        where = str(self.path) if self.path is not None else (self.case_id or "?")
        return f"{where}: {self.message}"


@dataclass
class CaseEntry:
    """One case of a data set as found on disk; no pixels are read.

    Attributes
    ----------
    case_id : str
        Unique id within the data set.
    image_path : Path
        The image file.
    mask_paths : dict[str, Path]
        Mask id -> mask file, in display order.
    raters : dict[str, str]
        Mask id -> annotator id (equal unless one annotator drew several masks).
    meta : dict[str, Any]
        Diagnosis, patient and anything else the source provides.
    group : str | None
        Patient or lesion used to keep splits apart.
    """

    case_id: str
    image_path: Path
    mask_paths: dict[str, Path] = field(default_factory=dict)
    raters: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    group: str | None = None

    def __post_init__(self) -> None:
        for mid in self.mask_paths:
            self.raters.setdefault(mid, rater_of(mid))

    @property
    def mask_ids(self) -> list[str]:
        """Mask ids in order."""
        return list(self.mask_paths)

    @property
    def annotators(self) -> list[str]:
        """Distinct annotator ids, in order of first appearance."""
        return list(dict.fromkeys(self.raters[m] for m in self.mask_paths))

    @property
    def n_annotators(self) -> int:
        """Number of distinct annotators."""
        return len(self.annotators)

    def files(self) -> list[Path]:
        """The image and every mask file."""
        return [self.image_path, *self.mask_paths.values()]

    def load(self, strict: bool = True) -> tuple[Case, list[Problem]]:
        """Decode the image and masks into a :class:`Case`.

        With ``strict`` any unreadable or mismatched mask raises; otherwise such masks are
        left out and returned as problems (the image must always be readable). A volume
        image (NIfTI, NRRD, MetaImage) gives the case its spacing, origin and direction, and
        its volume masks must lie on the same grid. Entries stored differently (a stack of
        slice files) override this.
        """
        image, grid = read_image_grid(self.image_path)
        spatial = grid.shape if grid is not None else (
            image.shape[:-1] if image.ndim >= 3 and image.shape[-1] in (3, 4) else image.shape
        )
        masks: dict[str, np.ndarray] = {}
        problems: list[Problem] = []
        for mid, mpath in self.mask_paths.items():
            try:
                masks[mid] = read_mask(mpath, shape=spatial, grid=grid)
            except IAAError as exc:
                if strict:
                    raise
                problems.append(Problem(Path(mpath), strip_path(str(exc), mpath), self.case_id))
        if not masks and self.mask_paths and not strict:
            raise DatasetError(f"{self.image_path}: no mask of case {self.case_id!r} could be read")
        case = Case(
            case_id=self.case_id, image=image, masks=masks,
            raters={m: self.raters[m] for m in masks}, meta=dict(self.meta),
            image_path=self.image_path, mask_paths={m: self.mask_paths[m] for m in masks},
            group=self.group,
            spacing=grid.spacing if grid is not None else None,
            origin=grid.origin if grid is not None else None,
            direction=grid.direction if grid is not None else None,
        )
        if problems:
            case.meta["skipped_masks"] = [str(p.path) for p in problems]
        return case, problems

    def read_masks(self) -> tuple[dict[str, np.ndarray], tuple[float, ...] | None]:
        """The masks only (the image is not decoded: its header gives shape and grid).

        Returns
        -------
        masks : dict[str, np.ndarray]
            Mask id -> boolean array of the image's spatial shape.
        spacing : tuple of float or None
            The image's voxel spacing from its header (None for PNG & co: unit voxels).

        Raises
        ------
        IAAError
            Naming the file: an unreadable header or mask, a mask of another shape or grid.
        """
        grid = volume_header(self.image_path) if is_volume_path(self.image_path) else None
        shape = grid.shape if grid is not None else image_shape(self.image_path)
        masks = {mid: read_mask(path, shape=shape, grid=grid)
                 for mid, path in self.mask_paths.items()}
        spacing = None
        if grid is not None and grid.spacing is not None and len(grid.spacing) == len(shape):
            spacing = tuple(float(v) for v in grid.spacing)
        return masks, spacing


@dataclass
class Case:
    """One image with the masks of several annotators.

    Attributes
    ----------
    case_id : str
        Unique id within its data set.
    image : np.ndarray
        H x W grey or H x W x 3 RGB (any leading spatial axes allowed for 3D).
    masks : dict[str, np.ndarray]
        Mask id -> boolean array of the image's spatial shape.
    raters : dict[str, str]
        Mask id -> annotator id.
    meta : dict[str, Any]
        Diagnosis, patient, split and anything else the source provides.
    image_path, mask_paths, group
        Where the data came from and the patient/lesion group.
    spacing : tuple of float or None
        Physical size of a voxel along each spatial axis, in array axis order (for a volume
        read through SimpleITK: z, y, x in mm). None: unknown, unit voxels (PNG slices).
    origin : tuple of float or None
        Physical position of the first voxel (array axis order), when the file has one.
    direction : tuple of float or None
        Direction cosines, row-major ``ndim x ndim`` in array axis order, when known.
    """

    case_id: str
    image: np.ndarray
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    raters: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    image_path: Path | None = None
    mask_paths: dict[str, Path] = field(default_factory=dict)
    group: str | None = None
    spacing: tuple[float, ...] | None = None
    origin: tuple[float, ...] | None = None
    direction: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for mid in self.masks:
            self.raters.setdefault(mid, rater_of(mid))

    @property
    def mask_ids(self) -> list[str]:
        """Mask ids in order."""
        return list(self.masks)

    @property
    def n_masks(self) -> int:
        """Number of masks."""
        return len(self.masks)

    @property
    def annotators(self) -> list[str]:
        """Distinct annotator ids, in order of first appearance."""
        return list(dict.fromkeys(self.raters[m] for m in self.masks))

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape of the image (without a trailing colour axis).

        With a known ``spacing`` its length says how many axes are spatial (a volume 3 or 4
        voxels wide is not colour); otherwise a trailing axis of 3 or 4 is colour.
        """
        img = self.image
        if self.spacing is not None:
            return tuple(img.shape[: len(self.spacing)])
        if img.ndim >= 3 and img.shape[-1] in (3, 4):
            return tuple(img.shape[:-1])
        return tuple(img.shape)

    @property
    def is_rgb(self) -> bool:
        """True for a colour image."""
        if self.spacing is not None:
            return self.image.ndim > len(self.spacing)
        return self.image.ndim >= 3 and self.image.shape[-1] in (3, 4)

    @property
    def ndim(self) -> int:
        """Number of spatial axes (2 for an image or slice, 3 for a volume)."""
        return len(self.shape)

    @property
    def is_volume(self) -> bool:
        """True for a 3D case."""
        return self.ndim == 3

    @property
    def voxel_spacing(self) -> tuple[float, ...]:
        """``spacing``, or unit voxels when it is not known."""
        return tuple(self.spacing) if self.spacing is not None else (1.0,) * self.ndim

    def stack(self) -> np.ndarray:
        """Masks as one boolean array (N, *shape) in ``mask_ids`` order."""
        if not self.masks:
            return np.zeros((0, *self.shape), dtype=bool)
        return np.stack([np.asarray(m, dtype=bool) for m in self.masks.values()])


@dataclass
class ValidationReport:
    """Result of :meth:`Dataset.validate`: the ids that passed and every problem found."""

    ok: list[str]
    problems: list[Problem]
    checked_pixels: bool = False

    @property
    def n_ok(self) -> int:
        """Number of cases that passed."""
        return len(self.ok)

    @property
    def is_valid(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def __bool__(self) -> bool:
        return self.is_valid

    def summary(self, max_lines: int = 20) -> str:
        """Human-readable summary, one line per problem (at most ``max_lines``)."""
        lines = [f"{self.n_ok} case(s) OK, {len(self.problems)} problem(s)"]
        lines += [f"  {p}" for p in self.problems[:max_lines]]
        if len(self.problems) > max_lines:
            lines.append(f"  ... and {len(self.problems) - max_lines} more")
        return "\n".join(lines)
