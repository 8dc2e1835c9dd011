"""How a mask file's pixels become a boolean mask, whatever its encoding.

Mask encodings
--------------
A mask is read as ``foreground = nonzero`` whatever its encoding: bool, 0/1, 0/255, uint16,
float, or a label image (several values > 0, with a :class:`MaskEncodingWarning`).
Colour masks:

- RGB whose three channels are equal everywhere (grey in disguise) collapse to one channel.
- Other RGB: foreground where any channel is nonzero (warned).
- RGBA / grey+alpha: when the alpha channel is constant it carries no information and the
  colour channels are used as above; when alpha varies it *is* the mask (transparent
  overlays exported by drawing tools), so foreground = alpha > 0 and the colour channels
  are ignored.
- Palette images are expanded to their colours first (palette index 0 is not assumed to
  be background).

JPEG masks are the exception to ``nonzero``: lossy compression leaves faint values around
every edge (and colour noise in the channels), so a JPEG mask that is not two-valued is
read as foreground = brighter than half its brightest value (brightest channel for
colour), with a warning naming the file; ``nonzero`` would grow every outline by the
compression's ringing (Kvasir-SEG and other public sets ship their masks as JPEG).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from napari_iaa.errors import ImageReadError

__all__ = ["LOSSY_MASK_SUFFIXES", "MaskEncodingWarning", "mask_warnings_to", "threshold_lossy",
           "to_bool_mask"]

#: Mask formats read with a threshold instead of ``nonzero`` (lossy compression).
LOSSY_MASK_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg"})


class MaskEncodingWarning(UserWarning):
    """A mask file was not a plain two-valued image; how it was read is in the message."""


@contextlib.contextmanager
def mask_warnings_to(emit: Callable[[str], None]) -> Iterator[None]:
    """Show each :class:`MaskEncodingWarning` of the block as ``emit(message)``.

    That is a command line's one-line note naming the file instead of Python's
    ``file:line: category`` display, once per message (a file read twice is noted once);
    other warnings and the warning filters are left as they are.
    """
    shown = warnings.showwarning
    seen: set[str] = set()

    def show(message: Any, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        if issubclass(category, MaskEncodingWarning):
            if str(message) not in seen:
                seen.add(str(message))
                emit(str(message))
        else:
            shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _is_two_valued(v: np.ndarray) -> tuple[bool, float, float]:
    if v.size == 0:
        return True, 0.0, 0.0
    lo, hi = v.min(), v.max()
    if lo == hi:
        return True, float(lo), float(hi)
    return bool(np.all((v == lo) | (v == hi))), float(lo), float(hi)


def _channels_to_plane(arr: np.ndarray, path: str) -> np.ndarray:
    """Collapse a colour mask (last axis 2, 3 or 4 channels) to one plane."""
    nch = arr.shape[-1]
    colour = arr[..., :3] if nch >= 3 else arr[..., :1]
    if nch in (2, 4):
        alpha = arr[..., -1]
        if alpha.min() != alpha.max():
            return alpha
    if colour.shape[-1] == 3:
        c0 = colour[..., 0]
        if np.array_equal(c0, colour[..., 1]) and np.array_equal(c0, colour[..., 2]):
            return c0
        warnings.warn(
            f"{path}: colour mask (channels differ); foreground = any nonzero channel",
            MaskEncodingWarning,
            stacklevel=4,
        )
        return np.any(colour != 0, axis=-1)
    return colour[..., 0]


def threshold_lossy(arr: np.ndarray, path: Path) -> np.ndarray:
    """A JPEG mask as foreground = brighter than half its brightest value (warned).

    Returned unchanged when it is two-valued (nothing was blurred).
    """
    plane = arr.max(axis=-1) if arr.ndim == 3 and arr.shape[-1] in (3, 4) else arr
    two, _lo, hi = _is_two_valued(plane)
    if two:
        return plane
    level = hi / 2
    warnings.warn(
        f"{path}: JPEG mask ({len(np.unique(plane))} distinct values from lossy compression); "
        f"foreground = value > {level:g}, half the brightest",
        MaskEncodingWarning,
        stacklevel=3,
    )
    return plane > level


def to_bool_mask(arr: np.ndarray, source: str | os.PathLike = "<array>") -> np.ndarray:
    """Turn any mask encoding into a boolean array (foreground = nonzero).

    Colour arrays (last axis of 3 or 4, or 2 for grey+alpha, on a >= 3D array) are
    collapsed as described in the module docstring. Warns :class:`MaskEncodingWarning` when
    the values are not two-valued (label images, anti-aliased edges) or when no value is 0.
    NaN counts as background.
    """
    arr = np.asarray(arr)
    src = str(source)
    if arr.dtype == bool:
        return arr
    if arr.ndim >= 3 and arr.shape[-1] in (2, 3, 4):
        arr = _channels_to_plane(arr, src)
        if arr.dtype == bool:
            return arr
    if arr.dtype.kind == "f":
        nan = np.isnan(arr)
        if nan.any():
            warnings.warn(
                f"{src}: mask contains {int(nan.sum())} NaN value(s), read as background",
                MaskEncodingWarning,
                stacklevel=3,
            )
            arr = np.where(nan, 0, arr)
    elif arr.dtype.kind not in "biu":
        raise ImageReadError(f"{src}: unsupported mask dtype {arr.dtype}")
    two, lo, hi = _is_two_valued(arr)
    if not two:
        n_values = len(np.unique(arr))
        warnings.warn(
            f"{src}: mask is not two-valued ({n_values} distinct values, {lo:g}..{hi:g}); "
            "read as foreground = nonzero",
            MaskEncodingWarning,
            stacklevel=3,
        )
    elif lo != hi and lo != 0:
        warnings.warn(
            f"{src}: two-valued mask without a zero background ({lo:g}/{hi:g}); "
            "every pixel is foreground",
            MaskEncodingWarning,
            stacklevel=3,
        )
    return arr != 0
