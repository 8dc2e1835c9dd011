"""Keep triton out of a process that has napari's OpenGL canvas (see guard_triton)."""

from __future__ import annotations

import sys

from napari_iaa import _env


def guard_triton() -> bool:
    """Keep ``triton`` from being imported into a process that already has OpenGL up.

    ``timm`` imports ``torchvision.ops`` -> ``torch._dynamo`` -> ``triton``, whose bundled
    LLVM clashes with the LLVM of Mesa's OpenGL drivers (llvmpipe under Xvfb or in a VM,
    radeonsi): importing it after napari opened its canvas is a segmentation fault. Our
    widgets are created after the canvas exists, so, unless ``triton`` is already loaded
    or ``NAPARI_IAA_ALLOW_TRITON`` is on, the import is made to fail cleanly instead (torch
    then reports no triton; napari-iaa never uses ``torch.compile``).

    Returns True when the guard was put in place.
    """
    if "triton" in sys.modules or _env.flag(_env.ALLOW_TRITON):
        return False
    sys.modules["triton"] = None  # type: ignore[assignment]
    return True
