"""One exception family for everything a user can get wrong.

Every message names the file (or the case) and what is wrong with it. The command line
turns these into one line and exit code 2; the widgets into a napari notification.
"""

from __future__ import annotations

__all__ = [
    "IAAError",
    "DatasetError",
    "ImageReadError",
    "ShapeMismatchError",
    "CheckpointError",
    "ConfigError",
    "ReviewStoreError",
]


class IAAError(Exception):
    """Base class of every error napari-iaa raises on purpose."""


class DatasetError(IAAError):
    """A data set, case, CSV or layout is wrong."""


class ImageReadError(DatasetError):
    """An image or mask file cannot be read (missing, empty, truncated, not an image)."""


class ShapeMismatchError(DatasetError):
    """A mask's shape does not match its image."""


class CheckpointError(IAAError):
    """A model file or model card is missing, unsafe or does not match."""


class ConfigError(IAAError):
    """A setting or argument is invalid."""


class ReviewStoreError(IAAError):
    """The review store cannot be opened or written (corrupt, locked, read-only, bad value)."""
