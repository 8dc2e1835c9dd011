"""npe2 writer: a Labels layer as a PNG mask, never over an original (see ``napari.yaml``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from napari_iaa.data import atomic_write_png, save_edited_mask

__all__ = ["write_labels"]


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 writer for a Labels layer: a PNG mask (foreground = nonzero), written atomically.

    Saving over one of the data set's original masks is refused: the edit is written
    beside it instead, with the annotator and a timestamp in the name.
    """
    mask = np.asarray(data) != 0
    target = Path(path)
    if target.suffix.lower() != ".png":
        target = target.with_suffix(".png")
    tag = (meta.get("metadata") or {}).get("napari_iaa") or {}
    original = tag.get("mask_path")
    same = False
    if original:
        try:
            same = target.exists() and os.path.samefile(target, original)
        except OSError:
            same = False
    if same:
        out = save_edited_mask(mask, Path(original), tag.get("annotator") or meta.get("name", "edit"))
        return [str(out)]
    atomic_write_png(target, (mask.astype(np.uint8) * 255))
    return [str(target)]
