"""A volume case stacked from 2D slice files (the LIDC layout per nodule).

Indexing lists the files; :meth:`SliceStackEntry.load` reads them (one 2D image per
slice, one 2D mask per slice and reader) and stacks them along a new first axis in the
entry's order. Slice files carry no spacing: the case has ``spacing=None`` (unit voxels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_iaa.data.case import Case, CaseEntry, Problem, strip_path
from napari_iaa.data.io import image_shape, read_image, read_mask
from napari_iaa.errors import DatasetError, IAAError, ImageReadError, ShapeMismatchError

__all__ = ["SliceStackEntry"]


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


@dataclass
class SliceStackEntry(CaseEntry):
    """A case whose image and masks are stacks of 2D slice files; no pixels read.

    ``image_path`` and ``mask_paths`` name the folders (for messages, display and edits
    beside the originals); the files themselves, in stack order, are in ``image_slices``
    and ``mask_slices`` (mask id -> one file per slice, same length as ``image_slices``).

    Attributes
    ----------
    image_slices : list of Path
        One 2D image file per slice, first slice first.
    mask_slices : dict[str, list of Path]
        Mask id -> one 2D mask file per slice, in the same order.
    """

    image_slices: list[Path] = field(default_factory=list)
    mask_slices: dict[str, list[Path]] = field(default_factory=dict)

    def files(self) -> list[Path]:
        """Every slice file: the image slices, then each mask's slices."""
        return [*self.image_slices, *(p for paths in self.mask_slices.values() for p in paths)]

    def read_image(self) -> np.ndarray:
        """The image slices stacked: ``(k, H, W)`` (``(k, H, W, 3)`` for colour slices).

        Raises
        ------
        ImageReadError, ShapeMismatchError
            A slice that cannot be read, is not 2D, or differs in shape from the first.
        """
        if not self.image_slices:
            raise DatasetError(f"{self.image_path}: case {self.case_id!r} has no slices")
        first = read_image(self.image_slices[0])
        if first.ndim not in (2, 3) or (first.ndim == 3 and first.shape[-1] not in (3, 4)):
            raise ImageReadError(
                f"{self.image_slices[0]}: not a 2D slice (shape {_shape_text(first.shape)})"
            )
        out = np.empty((len(self.image_slices), *first.shape), dtype=first.dtype)
        out[0] = first
        for k, path in enumerate(self.image_slices[1:], start=1):
            arr = read_image(path)
            if arr.shape != first.shape:
                raise ShapeMismatchError(
                    f"{path}: slice shape {_shape_text(arr.shape)} differs from the first "
                    f"slice {self.image_slices[0].name} ({_shape_text(first.shape)})"
                )
            out[k] = arr.astype(first.dtype, copy=False)
        return out

    def read_stack_mask(self, mask_id: str, shape: tuple[int, int]) -> np.ndarray:
        """One mask's slices stacked, ``(k, *shape)`` bool; each slice must be ``shape``."""
        files = self.mask_slices[mask_id]
        if len(files) != len(self.image_slices):
            raise ShapeMismatchError(
                f"{self.mask_paths.get(mask_id, self.image_path)}: {len(files)} mask slice(s) "
                f"for {len(self.image_slices)} image slice(s) of case {self.case_id!r}"
            )
        out = np.zeros((len(files), *shape), dtype=bool)
        for k, path in enumerate(files):
            out[k] = read_mask(path, shape=shape)
        return out

    def read_masks(self) -> tuple[dict[str, np.ndarray], None]:
        """Every mask's slices stacked; the image slices' headers give the shape.

        The PNG crops have no spacing: the second value is None (unit voxels).
        """
        if not self.image_slices:
            raise DatasetError(f"{self.image_path}: case {self.case_id!r} has no slices")
        shape = image_shape(self.image_slices[0])[:2]
        return {mid: self.read_stack_mask(mid, shape) for mid in self.mask_slices}, None

    def load(self, strict: bool = True) -> tuple[Case, list[Problem]]:
        """Decode the stacks, as :meth:`CaseEntry.load` does a file.

        With ``strict`` any unreadable or mismatched mask slice raises; otherwise that
        reader's mask is left out and returned as a problem naming the slice file.
        """
        image = self.read_image()
        shape = tuple(image.shape[1:3])
        masks: dict[str, np.ndarray] = {}
        problems: list[Problem] = []
        for mid in self.mask_slices:
            try:
                masks[mid] = self.read_stack_mask(mid, shape)
            except IAAError as exc:
                if strict:
                    raise
                path = next((p for p in self.mask_slices[mid] if str(exc).startswith(f"{p}:")),
                            self.mask_paths.get(mid, self.image_path))
                problems.append(Problem(Path(path), strip_path(str(exc), Path(path)), self.case_id))
        if not masks and self.mask_slices and not strict:
            raise DatasetError(f"{self.image_path}: no mask of case {self.case_id!r} could be read")
        case = Case(
            case_id=self.case_id,
            image=image,
            masks=masks,
            raters={m: self.raters[m] for m in masks},
            meta=dict(self.meta),
            image_path=self.image_path,
            mask_paths={m: self.mask_paths[m] for m in masks if m in self.mask_paths},
            group=self.group,
            spacing=None,
        )
        if problems:
            case.meta["skipped_masks"] = [str(p.path) for p in problems]
        return case, problems
