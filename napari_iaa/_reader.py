"""npe2 reader: a data-set folder, a case folder or a manifest CSV (see ``napari.yaml``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from napari_iaa._dock import case_layers_with_dock
from napari_iaa.data import detect_layout
from napari_iaa.errors import DatasetError, IAAError

__all__ = ["get_reader", "read_path"]


def _looks_like_ours(path: Path) -> bool:
    if path.is_file():
        if path.suffix.lower() != ".csv":
            return False
        try:
            with path.open("r", encoding="utf-8-sig", errors="replace") as fh:
                first = fh.readline()
        except OSError:
            return False
        cols = {c.strip().lower() for c in first.split(",")}
        return {"case_id", "image", "mask"} <= cols
    if not path.is_dir():
        return False
    try:
        detect_layout(path)
        return True
    except (IAAError, OSError):
        pass
    # a case folder: image.<ext> beside at least one other image
    names = {n.lower() for n in os.listdir(path)}
    return any(n.startswith(("image.", "img.")) for n in names) and len(names) >= 2


def get_reader(path: str | list[str]) -> Callable[[str], list[tuple]] | None:
    """npe2 reader: a data-set folder, a case folder or a manifest CSV, else ``None``."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        if not _looks_like_ours(Path(path)):
            return None
    except Exception:  # noqa: BLE001 - claiming a path must never break napari's open
        return None
    return read_path


def read_path(path: str | list[str], case_id: str | None = None) -> list[tuple]:
    """Open a data set (or case) and return the layers of its first (or given) case.

    The review dock is opened on the data set when a viewer is reachable. A layout with a
    choice of unit opens in the dock's preferred one (LIDC per nodule), as the dock does.
    """
    from napari_iaa.widgets.review.navigation import open_in_unit

    if isinstance(path, list):
        path = path[0]
    ds, _unit = open_in_unit(path, case_id=case_id)
    if len(ds) == 0:
        raise DatasetError(f"{path}: no readable case")
    cid = case_id if case_id is not None else ds.ids[0]
    return case_layers_with_dock(ds, cid, str(path))
