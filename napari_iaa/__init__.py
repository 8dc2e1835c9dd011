"""napari-iaa: multi-annotator segmentation review.

The core rooms (``data``, ``agreement``, ``calibration``) import neither Qt nor torch, so
they work in a notebook, on a cluster or in a test without a screen.
"""

from __future__ import annotations

__version__ = "0.1.0"

from napari_iaa.errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    IAAError,
    ImageReadError,
    ShapeMismatchError,
)

__all__ = [
    "__version__",
    "IAAError",
    "DatasetError",
    "ImageReadError",
    "ShapeMismatchError",
    "CheckpointError",
    "ConfigError",
]
