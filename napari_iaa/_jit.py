"""numba, when it is installed and not switched off, and the one way the package compiles.

``numba`` is the module or None (missing, or ``NAPARI_IAA_NUMBA=0``); :func:`njit` compiles
a kernel with ``nogil=True`` (the docks run kernels in worker threads while the GUI thread
paints) and the on-disk cache where a cache folder is writable. Shared by the agreement
kernels and the models' compiled resize and calibration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from napari_iaa import _env

try:  # pragma: no cover - both states are exercised through NAPARI_IAA_NUMBA
    if not _env.flag(_env.NUMBA, default=True):
        raise ImportError("disabled by NAPARI_IAA_NUMBA")
    import numba
except ImportError:  # pragma: no cover
    numba = None

__all__ = ["njit", "numba"]


def njit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``numba.njit(nogil=True)`` with the on-disk cache where a cache folder is writable."""
    if numba is None:
        raise RuntimeError("numba is not available (missing or NAPARI_IAA_NUMBA=0)")
    try:
        return numba.njit(nogil=True, cache=True)(fn)
    except RuntimeError:  # no writable cache location: compile once per process
        return numba.njit(nogil=True)(fn)
