"""Open whatever a user points at: a data-set folder, a manifest CSV or one case folder."""

from __future__ import annotations

import os
from pathlib import Path

from napari_iaa.data.dataset import Dataset
from napari_iaa.data.layouts import open_dataset
from napari_iaa.errors import DatasetError

__all__ = ["open_any"]


def open_any(path: str | os.PathLike, layout: str | None = None) -> Dataset:
    """A data set from a data-set folder, a manifest CSV or a single case folder.

    Parameters
    ----------
    path
        A data-set folder or manifest CSV (any layout, or ``layout``), or one case folder
        of the ``folders`` layout (``image.<ext>`` plus one mask per annotator), which is
        opened as a one-case data set.
    layout
        Force a layout (see :data:`napari_iaa.data.LAYOUTS`); detected when None.

    Raises
    ------
    DatasetError
        Naming ``path``, when it is none of these.
    """
    p = Path(path)
    try:
        return open_dataset(p, layout=layout)
    except DatasetError:
        if not p.is_dir() or layout not in (None, "folders"):
            raise
        ds = open_dataset(p.parent, layout="folders")
        if p.name not in ds.ids:
            raise
        return ds.subset([p.name])
