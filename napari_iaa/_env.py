"""Every ``NAPARI_IAA_*`` environment switch, parsed in one place with one rule.

A switch is *on* when its value is one of ``1, true, yes, on`` and *off* when it is unset,
empty or one of ``0, false, no, off`` (case and surrounding blanks ignored). Any other
value is treated as on, since setting a switch at all says the user wants it. Values are
read when asked for (not cached at import), so a test or a notebook can change them.

| variable | meaning | default |
|---|---|---|
| ``NAPARI_IAA_NO_THREADS`` | run the docks' background work synchronously (tests, debugging) | off |
| ``NAPARI_IAA_NUMBA`` | use the numba agreement kernels | on |
| ``NAPARI_IAA_THREADS`` | threads for a full agreement recompute | min(2, CPUs) |
| ``NAPARI_IAA_MAX_PIXELS`` | largest image decoded (pixels) | 10**8 |
| ``NAPARI_IAA_MODELS`` | the user model folder | the user cache folder |
| ``NAPARI_IAA_SAMPLE_DATA`` | the sample-data folder | ``napari_iaa.data.sample.bundled_root()`` (the source tree's ``sample_data/`` or the wheel's ``napari_iaa/_bundled``) |
| ``NAPARI_IAA_ALLOW_TRITON`` | let ``triton`` load beside napari's canvas | off |
| ``NAPARI_IAA_GC_FREEZE`` | freeze the GC generations after a case opens | off |
| ``NAPARI_IAA_MALLOC_TUNING`` | fix glibc's malloc thresholds where our own work starts (:mod:`napari_iaa._malloc`) | on |
"""

from __future__ import annotations

import os

__all__ = [
    "ALLOW_TRITON", "GC_FREEZE", "MALLOC_TUNING", "MAX_PIXELS", "MODELS", "NO_THREADS", "NUMBA",
    "SAMPLE_DATA", "THREADS", "flag", "integer", "path_value",
]

NO_THREADS = "NAPARI_IAA_NO_THREADS"
NUMBA = "NAPARI_IAA_NUMBA"
THREADS = "NAPARI_IAA_THREADS"
MAX_PIXELS = "NAPARI_IAA_MAX_PIXELS"
MODELS = "NAPARI_IAA_MODELS"
SAMPLE_DATA = "NAPARI_IAA_SAMPLE_DATA"
ALLOW_TRITON = "NAPARI_IAA_ALLOW_TRITON"
GC_FREEZE = "NAPARI_IAA_GC_FREEZE"
MALLOC_TUNING = "NAPARI_IAA_MALLOC_TUNING"

_FALSE = frozenset({"", "0", "false", "no", "off"})


def flag(name: str, default: bool = False) -> bool:
    """Whether switch ``name`` is on (unset -> ``default``; see the module docstring)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in _FALSE


def integer(name: str, default: int | None = None, minimum: int | None = None) -> int | None:
    """Integer value of ``name`` (``default`` when unset or not an integer), at least ``minimum``."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(float(value))
    except ValueError:
        return default
    return number if minimum is None else max(minimum, number)


def path_value(name: str) -> str | None:
    """A folder or file named by ``name`` (None when unset or empty)."""
    value = os.environ.get(name, "").strip()
    return value or None
