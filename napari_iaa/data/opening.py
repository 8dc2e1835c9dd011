"""Open whatever a user points at: a data-set folder, a manifest CSV or one case folder."""

from __future__ import annotations

import os
from pathlib import Path

from napari_iaa.data.dataset import Dataset
from napari_iaa.data.layouts import open_dataset
from napari_iaa.errors import DatasetError

__all__ = ["open_any"]


def open_any(
    path: str | os.PathLike, layout: str | None = None, unit: str | None = None
) -> Dataset:
    """A data set from a data-set folder, a manifest CSV or a single case folder.

    Parameters
    ----------
    path
        A data-set folder or manifest CSV (any layout, or ``layout``), or one case folder
        of the ``folders`` layout (``image.<ext>`` plus one mask per annotator), which is
        opened as a one-case data set.
    layout
        Force a layout (see :data:`napari_iaa.data.LAYOUTS`); detected when None.
    unit
        The unit of review where the layout offers one (LIDC: ``"slice"``, the default,
        or ``"nodule"``); see :func:`~napari_iaa.data.open_dataset`.

    Raises
    ------
    DatasetError
        Naming ``path``, when it is none of these.
    """
    p = Path(path)
    try:
        return open_dataset(p, layout=layout, unit=unit)
    except DatasetError:
        if not p.is_dir() or layout not in (None, "folders") or unit is not None:
            raise
        try:
            ds = open_dataset(p.parent, layout="folders")
        except DatasetError:
            ds = None
        if ds is None or p.name not in ds.ids:
            raise
        return ds.subset([p.name])
