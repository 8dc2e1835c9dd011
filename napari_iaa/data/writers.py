"""Atomic writers: edited masks are new files beside the originals, never over them.

Every write goes to a temporary file in the destination folder, is flushed and fsynced,
then renamed into place with :func:`os.replace` (atomic on POSIX and Windows). If anything
fails the temporary file is removed and the previous file at the destination, if any, is
untouched.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from napari_iaa.errors import DatasetError

__all__ = [
    "atomic_write_json",
    "json_safe",
    "atomic_write_bytes",
    "atomic_write_png",
    "encode_png",
    "edited_mask_name",
    "save_edited_mask",
    "write_temp_file",
    "fsync_dir",
]


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename inside ``folder`` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_temp_file(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a hidden temporary file beside ``path`` and return it.

    The file is complete (flushed and fsynced); the caller renames it into place (or
    removes it).

    Readers skip hidden files, so a leftover after a crash is never taken for data.
    """
    tmp = _tmp_path(Path(path))
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (replacing a previous file only when complete).

    Parameters
    ----------
    path : path-like
        Destination; its folder must exist.
    data : bytes
        The full content.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    tmp = write_temp_file(path, bytes(data))
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of an array: bool -> 0/255 uint8 grey, uint8/uint16 grey, uint8 RGB(A)."""
    arr = np.asarray(array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ValueError(f"cannot write an array of shape {arr.shape} as PNG")
    if arr.dtype.kind == "f":
        if arr.size and (np.nanmin(arr) < 0 or np.nanmax(arr) > 1):
            raise ValueError("float arrays written as PNG must lie in [0, 1]")
        arr = np.round(np.nan_to_num(arr) * 255).astype(np.uint8)
    if arr.dtype == np.uint16 and arr.ndim == 2:
        im = Image.fromarray(arr)
    else:
        if arr.dtype != np.uint8:
            if arr.size and (arr.min() < 0 or arr.max() > 255):
                raise ValueError(f"values of dtype {arr.dtype} out of the 0..255 range")
            arr = arr.astype(np.uint8)
        im = Image.fromarray(arr)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def atomic_write_png(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Encode ``array`` as PNG in memory and write it atomically to ``path``."""
    return atomic_write_bytes(path, encode_png(array))


_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def _safe_token(text: str) -> str:
    token = _SAFE.sub("_", str(text)).strip("._")
    return token or "anon"


def edited_mask_name(original_path: str | os.PathLike, annotator: str, when: datetime) -> str:
    """``<stem>_edited-<annotator>-<YYYYmmdd-HHMMSS>.png`` for an original mask path."""
    stem = Path(original_path).stem
    return f"{stem}_edited-{_safe_token(annotator)}-{when:%Y%m%d-%H%M%S}.png"


def save_edited_mask(
    mask: np.ndarray,
    original_path: str | os.PathLike,
    annotator: str,
    when: datetime | None = None,
) -> Path:
    """Save an edited mask as a new file beside the original, atomically.

    The new file is ``<stem>_edited-<annotator>-<YYYYmmdd-HHMMSS>.png`` in the original's
    folder, with ``-2``, ``-3``, ... appended to the stem when that name exists. The
    original (and any existing file) is never overwritten: the finished temporary file is
    hard-linked to a name that does not exist yet (or renamed after a check where links
    are unsupported).

    Parameters
    ----------
    mask : np.ndarray
        2D (or 3D) mask; nonzero = foreground; written as 0/255 grey PNG.
    original_path : path-like
        The mask file that was edited (it need not exist, its folder must).
    annotator : str
        Who edited it (made safe for a file name).
    when : datetime, optional
        Time stamp for the name (default: now, local time).

    Returns
    -------
    Path
        The file written.
    """
    original = Path(original_path)
    folder = original.parent
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder of the original mask does not exist")
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise DatasetError(f"{original}: edited mask must be 2D, got shape {arr.shape}")
    data = encode_png(arr != 0)
    when = when or datetime.now()
    base = edited_mask_name(original, annotator, when)
    stem = base[: -len(".png")]
    tmp = write_temp_file(folder / base, data)
    try:
        for k in range(1, 10_000):
            target = folder / (base if k == 1 else f"{stem}-{k}.png")
            if target.resolve() == original.resolve():
                continue
            try:
                os.link(tmp, target)
            except FileExistsError:
                continue
            except OSError:  # file system without hard links
                if target.exists():
                    continue
                os.replace(tmp, target)
                fsync_dir(folder)
                return target
            fsync_dir(folder)
            return target
        raise DatasetError(f"{folder}: no free name for the edited mask {base}")
    finally:
        tmp.unlink(missing_ok=True)


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data: the project's one rule for writing JSON.

    Mappings -> dicts with string keys; lists, tuples and sets (sorted) -> lists; objects
    with ``to_dict()`` and dataclasses -> their dicts; numpy and torch scalars and arrays ->
    numbers and lists (``tolist()``); paths -> strings; NaN and +-inf -> ``None`` (JSON has
    no non-finite numbers; ``null`` reads back as missing); anything else -> its ``str``.

    >>> json_safe({"iaa": np.float32(0.5), "std": float("nan"), 3: (1, 2)})
    {'iaa': 0.5, 'std': None, '3': [1, 2]}
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, set | frozenset):
        return [json_safe(v) for v in sorted(value, key=str)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return json_safe(to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_safe(getattr(value, f.name)) for f in dataclasses.fields(value)}
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # numpy / torch scalars and arrays
        return json_safe(tolist())
    return str(value)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> Path:
    """Write ``json_safe(obj)`` as UTF-8 JSON to ``path`` atomically (see ``atomic_write_bytes``)."""
    text = json.dumps(json_safe(obj), indent=indent, allow_nan=False)
    return atomic_write_bytes(path, (text + "\n").encode("utf-8"))
