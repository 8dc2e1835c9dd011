"""The layout registry: which readers exist, which one a path needs, and opening it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from napari_iaa.data.dataset import Dataset
from napari_iaa.data.layouts._scan import scandir
from napari_iaa.data.layouts.folders import detect_folders, read_folders
from napari_iaa.data.layouts.imapp import detect_imapp, read_imapp
from napari_iaa.data.layouts.lidc import LIDC_UNITS, detect_lidc, read_lidc
from napari_iaa.data.layouts.manifest import detect_manifest, read_manifest
from napari_iaa.errors import DatasetError

__all__ = ["LAYOUTS", "LayoutReader", "detect_layout", "open_dataset", "register_layout"]


@dataclass(frozen=True)
class LayoutReader:
    """A named layout: ``read(path) -> Dataset`` and ``detect(path) -> bool``.

    ``units`` lists the units of review the layout offers (the first is the default; its
    reader then takes ``read(path, unit=...)``); empty for a layout with one case per
    image or volume.
    """

    name: str
    read: Callable[..., Dataset]
    detect: Callable[[Path], bool]
    description: str = ""
    units: tuple[str, ...] = ()

    def __call__(self, path: str | os.PathLike, unit: str | None = None) -> Dataset:
        """Read the data set at ``path`` (per ``unit`` where the layout offers units).

        Raises
        ------
        DatasetError
            ``unit`` is not one of :attr:`units` (any unit, for a layout without units).
        """
        if unit is None:
            ds = self.read(Path(path))
            ds.unit = self.units[0] if self.units else None
            return ds
        if unit not in self.units:
            offers = (f"units {', '.join(self.units)}" if self.units
                      else "one case per image and no choice of unit")
            raise DatasetError(f"{path}: unit {unit!r}: the {self.name} layout has {offers}")
        ds = self.read(Path(path), unit=unit)
        ds.unit = unit
        return ds


#: Registered layouts, in detection order.
LAYOUTS: dict[str, LayoutReader] = {}
_ALIASES = {"ima++": "imapp", "isic": "imapp", "csv": "manifest", "folder": "folders", "lidc-idri": "lidc"}


def register_layout(
    name: str,
    read: Callable[..., Dataset],
    detect: Callable[[Path], bool],
    description: str = "",
    units: tuple[str, ...] = (),
) -> LayoutReader:
    """Add a layout to :data:`LAYOUTS` (checked by :func:`detect_layout` in insertion order).

    ``units``: the units of review ``read`` accepts as ``unit=`` (first = default).
    """
    reader = LayoutReader(name, read, detect, description, tuple(units))
    LAYOUTS[name] = reader
    return reader


register_layout("manifest", read_manifest, detect_manifest, "CSV case_id,image,annotator,mask")
register_layout("lidc", read_lidc, detect_lidc, "<patient>/<nodule>/images + mask-<r>", LIDC_UNITS)
register_layout("imapp", read_imapp, detect_imapp, "IMA++: images/, masks/, metadata CSVs")
register_layout("folders", read_folders, detect_folders, "<case>/image.<ext> + <annotator>.<ext>")


def detect_layout(path: str | os.PathLike) -> str:
    """Name of the layout of ``path`` (a folder, or a manifest CSV).

    Raises
    ------
    DatasetError
        Path missing, empty folder, or no layout recognised.
    """
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder")
    if p.is_dir():
        try:
            if not any(True for _ in scandir(p)):
                raise DatasetError(f"{p}: empty folder")
        except PermissionError:
            raise DatasetError(f"{p}: folder not readable") from None
    for name, reader in LAYOUTS.items():
        try:
            if reader.detect(p):
                return name
        except (OSError, DatasetError):
            continue
    raise DatasetError(
        f"{p}: cannot recognise the data set layout (known: {', '.join(LAYOUTS)}); "
        "pass the layout by name"
    )


def open_dataset(
    path: str | os.PathLike, layout: str | None = None, unit: str | None = None
) -> Dataset:
    """Index a data set.

    Parameters
    ----------
    path : path-like
        Data set folder, or a manifest CSV.
    layout : str, optional
        One of :data:`LAYOUTS` (``"lidc"``, ``"imapp"``, ``"manifest"``, ``"folders"``);
        detected when not given.
    unit : str, optional
        The unit of review, for a layout that offers a choice (``LayoutReader.units``):
        LIDC ``"slice"`` (the default) or ``"nodule"`` (one volume case per nodule, id
        ``<patient>/<nodule>``). A unit for a layout without units raises.

    Returns
    -------
    Dataset
        Lazy index; index-time problems in ``ds.problems``.

    Raises
    ------
    DatasetError
        Path missing, layout unknown or not recognised, or a unit the layout lacks.
    """
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder")
    if layout is None:
        layout = detect_layout(p)
    name = _ALIASES.get(layout.lower(), layout.lower())
    if name not in LAYOUTS:
        raise DatasetError(f"{p}: unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    return LAYOUTS[name](p, unit=unit)

