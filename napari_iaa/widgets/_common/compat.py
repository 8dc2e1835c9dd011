"""What the installed napari offers, read once from its version (pyproject allows 0.5-0.9)."""

from __future__ import annotations

import re

import napari

__all__ = ["HAS_LAYER_COLORBAR", "NAPARI_VERSION", "SCENE_CAMERA"]

#: napari's (major, minor)
NAPARI_VERSION: tuple[int, int] = tuple(  # type: ignore[assignment]
    int(x) for x in re.findall(r"\d+", napari.__version__)[:2])
#: 0.9 moved the camera to ``viewer.scene.camera`` (``viewer.camera`` warns)
SCENE_CAMERA = NAPARI_VERSION >= (0, 9)
#: image layers have a colour-bar overlay (``layer.colorbar``; used from 0.9, tested there)
HAS_LAYER_COLORBAR = NAPARI_VERSION >= (0, 9)
