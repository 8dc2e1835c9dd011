"""npe2 sample data: the bundled synthetic and LIDC data sets (see ``napari.yaml``)."""

from __future__ import annotations

import numpy as np

from napari_iaa._dock import case_layers_with_dock
from napari_iaa.agreement import iaa
from napari_iaa.data import Dataset, open_dataset, sample_data_path
from napari_iaa.errors import DatasetError, IAAError

__all__ = [
    "lidc_nodules_sample", "lidc_sample", "pick_case", "synthetic3d_sample", "synthetic_sample",
]


def pick_case(ds: Dataset, n_candidates: int = 16) -> str:
    """A case with clearly visible disagreement, cheaply.

    Among the ``n_candidates`` cases with the most masks (no pixels read to rank them), the
    one with the lowest IAA above 0.5 (a real disagreement, not a missing lesion).
    """
    ids = list(ds.ids)
    ranked = sorted(
        range(len(ids)), key=lambda k: (-len(ds.entry(ids[k]).mask_paths), k)
    )[:n_candidates]
    best, best_v = ids[0], np.inf
    for k in ranked:
        cid = ids[k]
        try:
            case = ds.load(cid)
        except IAAError:
            continue
        v = float(iaa(case.stack()))
        if np.isfinite(v) and 0.5 < v < best_v:
            best, best_v = cid, v
    return best


def _sample(name: str) -> list[tuple]:
    path = sample_data_path(name)
    ds = open_dataset(path)
    if len(ds) == 0:
        raise DatasetError(f"{path}: sample data set has no readable case")
    return case_layers_with_dock(ds, pick_case(ds), str(path))


def synthetic_sample() -> list[tuple]:
    """Sample: synthetic dermoscopy lesions with several annotators (+ review dock)."""
    return _sample("synthetic")


def lidc_sample() -> list[tuple]:
    """Sample: real LIDC-IDRI lung nodule slices with 4 readers (+ review dock)."""
    return _sample("lidc")


def lidc_nodules_sample() -> list[tuple]:
    """Sample: real LIDC-IDRI nodules as volumes (NIfTI), 4 readers (+ review dock)."""
    return _sample("lidc_nodules")


def synthetic3d_sample() -> list[tuple]:
    """Sample: synthetic lesion volumes (NIfTI, 2.5 x 0.7 x 0.7 mm), 4 readers (+ review dock)."""
    return _sample("synthetic3d")
