"""Where the bundled sample data lives."""

from __future__ import annotations

import os
from pathlib import Path

from napari_iaa import _env
from napari_iaa.errors import DatasetError

__all__ = ["SAMPLE_NAMES", "bundled_root", "sample_data_path", "sample_data_root"]

SAMPLE_NAMES = ("synthetic", "lidc", "lidc_nodules", "synthetic3d")


def bundled_root() -> Path:
    """The folder napari-iaa ships its samples and models in.

    An installed wheel carries them as the data-only package ``napari_iaa/_bundled`` (see
    ``setup.py``); a source checkout or an editable install keeps them in the project's
    top-level ``sample_data/``.

    Returns
    -------
    Path
        ``napari_iaa/_bundled`` when it exists, else ``<project>/sample_data`` (which may be
        absent: the callers say so, naming the path).
    """
    package = Path(__file__).resolve().parents[1]
    installed = package / "_bundled"
    if installed.is_dir():
        return installed
    return package.parent / "sample_data"


def sample_data_root() -> Path:
    """``NAPARI_IAA_SAMPLE_DATA`` if set, else :func:`bundled_root`."""
    env = _env.path_value(_env.SAMPLE_DATA)
    if env:
        return Path(env)
    return bundled_root()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "napari-iaa" / "sample_data"


def sample_data_path(name: str = "synthetic") -> Path:
    """Folder of a bundled sample data set.

    Parameters
    ----------
    name : {"synthetic", "lidc", "lidc_nodules", "synthetic3d"}
        ``synthetic``: 40 generated dermoscopy-like cases in the IMA++ layout;
        ``lidc``: about 30 real LIDC-IDRI slices in the LIDC layout (CC BY 3.0);
        ``lidc_nodules``: 5 real LIDC-IDRI nodules as NIfTI volumes in the folders layout
        (4 readers, unit spacing: the PNG crops have none; CC BY 3.0);
        ``synthetic3d``: 5 synthetic lesion volumes (NIfTI, folders layout, 2.5 x 0.7 x 0.7
        mm voxels) with 4 readers who keep their habits. The generated ones are made on
        first use in the user cache folder when the sample folder lacks them (for example
        ``NAPARI_IAA_SAMPLE_DATA`` pointing at a folder of one's own).

    Raises
    ------
    DatasetError
        Unknown name, or an LIDC sample is not available.
    """
    if name not in SAMPLE_NAMES:
        raise DatasetError(f"unknown sample data set {name!r} (known: {', '.join(SAMPLE_NAMES)})")
    path = sample_data_root() / name
    if path.is_dir():
        return path
    if name == "synthetic":
        cached = _cache_dir() / "synthetic"
        if not (cached / "images").is_dir():
            from napari_iaa.data.synthetic import generate_synthetic_dataset

            generate_synthetic_dataset(cached, n=40, seed=0, size=(256, 256))
        return cached
    if name == "synthetic3d":
        cached = _cache_dir() / "synthetic3d"
        if not (cached / "synthetic3d.json").is_file():
            from napari_iaa.data.synthetic3d import generate_synthetic_volumes

            generate_synthetic_volumes(cached, n=5, seed=0, overwrite=True)
        return cached
    raise DatasetError(
        f"{path}: sample data set {name!r} not found (run scripts/make_sample_data.py or set "
        "NAPARI_IAA_SAMPLE_DATA)"
    )
