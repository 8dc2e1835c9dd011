"""glibc's malloc set up for repeated network forwards: freed memory is reused, not refaulted.

A CPU forward allocates and frees the same activations call after call (3-50 MB for a
resnet18 at 224 px). glibc's default thresholds move with the allocation history
(``M_MMAP_THRESHOLD`` grows to the largest freed mapping, up to 32 MiB, and the heap's
top is given back to the system once more than twice that is free), so depending on what
ran before, each forward either reuses the heap or first faults its activations back in:
measured on an AMD EPYC (``benchmarks/bench_inference.py``), the MHR pipeline took 1.09x,
1.15x or 1.19x its network's bare forward run to run, with 2,300-5,400 page faults per
call in the slow runs and none in the fast ones.

:func:`tune_malloc` pins both thresholds with ``mallopt`` at the largest values glibc's
own heuristic reaches: blocks below 32 MiB come from the heap, and up to 64 MiB of free
heap top is kept for the next call. So the process holds no more freed memory than a
warmed-up default process may, but always reuses it; with it the same benchmark gave
1.04-1.08x and no faults. Larger blocks are still mapped and unmapped on their own, so
images of hundreds of megabytes go back to the system when freed, as before.

It is called where our own work starts: ``napari-iaa`` (every subcommand), ``python -m
training`` and the first time a dock loads torch (:func:`napari_iaa.models.torch_import.load_torch`),
and by the inference and training benchmarks, so they measure what those processes run.
Importing the package changes nothing. A no-op off glibc (macOS, Windows, musl), when
the user set ``MALLOC_TRIM_THRESHOLD_`` or ``MALLOC_MMAP_THRESHOLD_`` (their choice
stands) and when ``NAPARI_IAA_MALLOC_TUNING`` is off.
"""

from __future__ import annotations

import ctypes
import os
import threading

from napari_iaa._env import MALLOC_TUNING, flag

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune_malloc"]

#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: blocks below this come from the heap (glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
MMAP_THRESHOLD = 32 << 20
#: free heap top kept for the next forward (glibc's largest dynamic value, twice the above)
TRIM_THRESHOLD = 64 << 20

_LOCK = threading.Lock()
_applied: bool | None = None  # the first call's outcome


def tune_malloc() -> bool:
    """Fix glibc's trim and mmap thresholds for this process (once); True if they are set.

    Returns False, changing nothing, off glibc, when the user set glibc's own variables,
    or when ``NAPARI_IAA_MALLOC_TUNING`` is off.
    """
    global _applied
    with _LOCK:
        if _applied is None:
            _applied = _apply()
        return _applied


def _glibc() -> bool:
    """Whether this process runs on glibc (asked of the C library itself)."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # no such name (macOS, Windows, musl)
        return False


def _apply() -> bool:
    if not flag(MALLOC_TUNING, default=True):
        return False
    if "MALLOC_TRIM_THRESHOLD_" in os.environ or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    if not _glibc():
        return False
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; the mmap threshold first, as glibc's own variables do
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
