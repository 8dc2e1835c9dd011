"""Atomic writers: edited masks are new files beside the originals, never over them.

Volumes are written by :func:`napari_iaa.data.volumes.write_volume` under the same rules.

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

from napari_iaa.data._atomic import fsync_dir, replace_into
from napari_iaa.data.volumes import (
    split_volume_suffix,
    volume_header,
    volume_image,
    volume_suffix,
    write_temp_volume,
    write_volume,
)
from napari_iaa.errors import DatasetError

__all__ = [
    "atomic_write_json",
    "json_safe",
    "atomic_write_bytes",
    "atomic_write_png",
    "encode_png",
    "edited_mask_name",
    "adjudicated_mask_name",
    "save_adjudicated_mask",
    "edited_mask_suffix",
    "volume_mask_suffix",
    "write_mask_like",
    "save_edited_mask",
    "write_temp_file",
    "fsync_dir",
]


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


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
    return replace_into(write_temp_file(path, bytes(data)), path)


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


def edited_mask_name(
    original_path: str | os.PathLike, annotator: str, when: datetime, suffix: str = ".png",
    reviewer: str | None = None,
) -> str:
    """``<stem>_edited-<annotator>[-by-<reviewer>]-<YYYYmmdd-HHMMSS><suffix>`` for a mask path.

    The stem drops a volume's whole suffix (``r0.nii.gz`` -> ``r0``); the annotator is whose
    mask was edited, the reviewer who edited it (left out when not given).
    """
    stem = split_volume_suffix(original_path)[0]
    by = f"-by-{_safe_token(reviewer)}" if reviewer else ""
    return f"{stem}_edited-{_safe_token(annotator)}{by}-{when:%Y%m%d-%H%M%S}{suffix}"


def adjudicated_mask_name(case_id: str, reviewer: str | None, when: datetime, suffix: str) -> str:
    """``<case>_adjudicated-by-<reviewer>-<YYYYmmdd-HHMMSS><suffix>`` (``/`` in the id -> ``_``)."""
    stem = _safe_token(str(case_id).replace("/", "_"))
    return f"{stem}_adjudicated-by-{_safe_token(reviewer or 'anon')}-{when:%Y%m%d-%H%M%S}{suffix}"


#: Two-file volume formats are saved as their one-file twin (same format, same header).
_ONE_FILE = {".mhd": ".mha", ".nhdr": ".nrrd"}


def edited_mask_suffix(original_path: str | os.PathLike, ndim: int) -> str:
    """The file suffix an edit of ``original_path`` is saved with.

    A volume format keeps its format (``.nii.gz`` -> ``.nii.gz``; ``.mhd`` -> ``.mha`` and
    ``.nhdr`` -> ``.nrrd``, the one-file form of the same format); a 2D mask from any
    other file is a PNG (as always); a 3D one keeps ``.npy`` or TIFF, and is NIfTI
    otherwise.
    """
    vs = volume_suffix(original_path)
    if vs is not None:
        return _ONE_FILE.get(vs, vs)
    if ndim == 2:
        return ".png"
    ext = os.path.splitext(os.fspath(original_path))[1].lower()
    if ext == ".npy":
        return ".npy"
    return ".tif" if ext in (".tif", ".tiff") else ".nii.gz"


def volume_mask_suffix(image_path: str | os.PathLike, ndim: int) -> str | None:
    """The volume format a mask of ``image_path`` is written in (a consensus, say).

    The image's own format when it is a volume (``.mhd`` -> ``.mha``, ``.nhdr`` -> ``.nrrd``),
    NIfTI (``.nii.gz``) for any other 3D mask, None for a 2D mask of a 2D image (a PNG).
    """
    vs = volume_suffix(image_path)
    if vs is not None:
        return _ONE_FILE.get(vs, vs)
    return ".nii.gz" if ndim == 3 else None


def write_mask_like(
    path: str | os.PathLike, mask: np.ndarray, image_path: str | os.PathLike
) -> Path:
    """Write ``mask`` (uint8 0/1) as a volume at ``path`` with ``image_path``'s header, atomically.

    The header (spacing, origin, direction) is copied when ``image_path`` is a volume
    file; otherwise the volume has unit spacing. ``path`` is replaced only when complete.
    """
    like = volume_header(image_path) if volume_suffix(image_path) is not None else None
    return write_volume(path, np.asarray(mask) != 0, like=like)


def _encode_npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr != 0, dtype=np.uint8), allow_pickle=False)
    return buf.getvalue()


def _encode_tiff(arr: np.ndarray) -> bytes:
    frames = [Image.fromarray(np.asarray(p != 0, dtype=np.uint8) * 255) for p in arr]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:],
                   compression="tiff_deflate")
    return buf.getvalue()


def _volume_like(original: Path, shape: tuple[int, ...], like: Any) -> Any:
    """The header an edit copies: the original's when it is a readable volume, else ``like``."""
    if volume_suffix(original) is not None and original.is_file():
        header = volume_header(original)
        if tuple(header.shape) != tuple(shape):
            raise DatasetError(
                f"{original}: the edited mask ({'x'.join(map(str, shape))}) does not have the "
                f"original's shape ({'x'.join(map(str, header.shape))})"
            )
        return header
    return like


def _temp_edit(folder: Path, base: str, original: Path, arr: np.ndarray, like: Any) -> Path:
    """The finished (fsynced, hidden) temporary file of an edit, in its final format."""
    suffix = split_volume_suffix(base)[1]
    if volume_suffix(base) is not None:
        image = volume_image(arr != 0, like=_volume_like(original, arr.shape, like))
        return write_temp_volume(folder / base, image)
    if suffix == ".npy":
        return write_temp_file(folder / base, _encode_npy(arr))
    if suffix == ".tif":
        return write_temp_file(folder / base, _encode_tiff(arr))
    return write_temp_file(folder / base, encode_png(arr != 0))


def _link_new(tmp: Path, folder: Path, base: str, original: Path) -> Path:
    """Give ``tmp`` a name that does not exist yet: ``base``, then ``<stem>-2<suffix>`` ..."""
    stem, suffix = split_volume_suffix(base)
    for k in range(1, 10_000):
        target = folder / (base if k == 1 else f"{stem}-{k}{suffix}")
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
    raise DatasetError(f"{folder}: no free name for the edited mask {base}")


def save_edited_mask(
    mask: np.ndarray,
    original_path: str | os.PathLike,
    annotator: str,
    when: datetime | None = None,
    like: Any = None,
    reviewer: str | None = None,
) -> Path:
    """Save an edited mask as a new file beside the original, atomically.

    The new file is ``<stem>_edited-<annotator>-by-<reviewer>-<YYYYmmdd-HHMMSS><suffix>``
    (without ``-by-<reviewer>`` when no reviewer is given) in the original's folder, with ``-2``, ``-3``, ... appended to the stem when that name
    exists. The original (and any existing file) is never overwritten: the finished
    temporary file is hard-linked to a name that does not exist yet (or renamed after a
    check where links are unsupported).

    The format follows :func:`edited_mask_suffix`: a 2D mask from a PNG, TIFF or ``.npy``
    is a 0/255 grey PNG (as always); a mask from a NIfTI, NRRD or MetaImage file is
    written in that format as uint8 0/1 with the original's header (spacing, origin,
    direction), so ``r0.nii.gz`` gives ``r0_edited-<annotator>-<time>.nii.gz``.

    Parameters
    ----------
    mask : np.ndarray
        2D or 3D mask; nonzero = foreground.
    original_path : path-like
        The mask file that was edited (it need not exist, its folder must).
    annotator : str
        Who edited it (made safe for a file name).
    when : datetime, optional
        Time stamp for the name (default: now, local time).
    like : optional
        A header (``spacing``, ``origin``, ``direction``, e.g. the case's image header) for
        a volume edit whose original is not a readable volume file.
    reviewer : str, optional
        Who saved the edit (made safe for a file name).

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
    if arr.ndim not in (2, 3):
        raise DatasetError(f"{original}: edited mask must be 2D or 3D, got shape {arr.shape}")
    base = edited_mask_name(original, annotator, when or datetime.now(),
                            edited_mask_suffix(original, arr.ndim), reviewer=reviewer)
    tmp = _temp_edit(folder, base, original, arr, like)
    try:
        return _link_new(tmp, folder, base, original)
    finally:
        tmp.unlink(missing_ok=True)


def save_adjudicated_mask(
    mask: np.ndarray,
    folder: str | os.PathLike,
    case_id: str,
    reviewer: str | None,
    image_path: str | os.PathLike | None = None,
    when: datetime | None = None,
    like: Any = None,
) -> Path:
    """Save a case's adjudicated (final) mask as a new file in ``folder``, atomically.

    Named by :func:`adjudicated_mask_name`; in the format a consensus of the case is
    written in (:func:`volume_mask_suffix` of its image: the image's volume format with
    its header, NIfTI for other 3D masks, a 0/255 PNG in 2D). Never over an existing file
    (``-2``, ``-3`` ... are appended as for edits).

    Parameters
    ----------
    mask : np.ndarray
        2D or 3D mask; nonzero = foreground.
    folder : path-like
        Where to write (created).
    case_id : str
        The case (its ``/`` become ``_`` in the name).
    reviewer : str or None
        Who chose it.
    image_path : path-like, optional
        The case's image (its format and header are copied for a volume).
    when : datetime, optional
        Time stamp for the name (default: now, local time).
    like : optional
        A header (``spacing``, ``origin``, ``direction``) when the image is not a volume file.

    Returns
    -------
    Path
        The file written.
    """
    arr = np.asarray(mask)
    if arr.ndim not in (2, 3):
        raise DatasetError(f"case {case_id}: the adjudicated mask must be 2D or 3D, "
                           f"got shape {arr.shape}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    image = Path(image_path) if image_path is not None else out / "image"
    suffix = volume_mask_suffix(image, arr.ndim) or ".png"
    base = adjudicated_mask_name(case_id, reviewer, when or datetime.now(), suffix)
    tmp = _temp_edit(out, base, image, arr, like)
    try:
        return _link_new(tmp, out, base, image)
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
