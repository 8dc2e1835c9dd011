"""Checks SimpleITK does not make: data size against the header, gzip integrity; its errors.

SimpleITK reads a truncated ``.nii`` or ``.nii.gz`` without complaint (the missing voxels
come back as zeros), so the NIfTI header is parsed here and the data size compared with
it before SimpleITK decodes anything. A ``.nii.gz`` is checked through its gzip trailer
(the uncompressed size, four bytes at the end); only when that disagrees is the whole
stream decompressed to tell a multi-member file from a broken one.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np

from napari_iaa.errors import ImageReadError

__all__ = [
    "GRID_TOLERANCE", "check_exists", "check_nifti", "check_nrrd", "grid_difference", "read_error",
]


# ---------------------------------------------------------------------- errors
_HEX = re.compile(r"\(0x[0-9a-f]+\)")


def _itk_reason(exc: Exception) -> str:
    """The informative line of a SimpleITK/ITK error (its last ERROR or nrrd line)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if "ERROR" in ln or ln.startswith("[nrrd]")]
    line = (useful or lines or [type(exc).__name__])[-1]
    line = _HEX.sub("", line.split("ERROR:", 1)[-1]).strip()
    return line.replace("[nrrd] ", "")


def read_error(path: Path, exc: Exception) -> ImageReadError:
    """The :class:`ImageReadError` for a SimpleITK failure on ``path``: one line, no ITK noise."""
    if path.name.lower().endswith(".gz"):
        try:
            _gunzip_size(path)
        except (zlib.error, EOFError) as gz_exc:
            return ImageReadError(f"{path}: gzip data does not decompress ({gz_exc})")
        except OSError:
            pass
    reason = _itk_reason(exc).replace(str(path), path.name)
    if "Unable to determine ImageIO reader" in str(exc):
        reason = "not a readable NIfTI/NRRD/MetaImage file (corrupt, or not that format)"
    elif "cannot be read" in reason or "not read completely" in str(exc):
        reason = f"the data is shorter than the header says, or missing ({reason})"
    return ImageReadError(f"{path}: cannot read volume: {reason}")


def check_exists(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found") from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot access file ({exc.strerror or exc})") from None
    if not path.is_file():
        raise ImageReadError(f"{path}: not a file")
    if size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")


# ---------------------------------------------------------------------- NIfTI sizes
def _nifti_layout(head: bytes) -> tuple[int, int] | None:
    """``(vox_offset, data bytes)`` from a NIfTI-1/2 header, None if it is not one."""
    for order in "<>":
        if len(head) >= 348 and struct.unpack(order + "i", head[:4])[0] == 348:
            dims = struct.unpack(order + "8h", head[40:56])
            bitpix = struct.unpack(order + "h", head[72:74])[0]
            offset = max(int(struct.unpack(order + "f", head[108:112])[0]), 352)
            break
        if len(head) >= 540 and struct.unpack(order + "i", head[:4])[0] == 540:
            bitpix = struct.unpack(order + "h", head[14:16])[0]
            dims = struct.unpack(order + "8q", head[16:80])
            offset = max(int(struct.unpack(order + "q", head[168:176])[0]), 544)
            break
    else:
        return None
    n = max(1, min(int(dims[0]), 7))
    count = int(np.prod([max(1, int(d)) for d in dims[1 : n + 1]], dtype=np.int64))
    return offset, count * max(int(bitpix), 8) // 8


def _gunzip_size(path: Path, offset: int = 0) -> int:
    """Uncompressed size of the gzip data from ``offset`` on, reading it all.

    Raises ``zlib.error`` on corrupt data and ``EOFError`` on a stream that stops early.
    """
    total = 0
    d = zlib.decompressobj(31)
    with open(path, "rb") as fh:
        fh.seek(offset)
        while chunk := fh.read(1 << 20):
            total += len(d.decompress(chunk))
            while d.eof and d.unused_data:  # another gzip member
                rest = d.unused_data
                d = zlib.decompressobj(31)
                total += len(d.decompress(rest))
    if not d.eof:
        raise EOFError("compressed stream ends early (truncated)")
    return total


def _check_gzip(path: Path, offset: int, expected: int, trailer: int) -> int:
    """Uncompressed size of the gzip data at ``offset``.

    Trusted from the gzip trailer when it says ``expected`` (mod 2**32), else counted by
    decompressing it all.
    """
    if trailer == expected % 2**32:
        return expected
    try:
        return _gunzip_size(path, offset)
    except (zlib.error, EOFError) as exc:
        raise ImageReadError(f"{path}: gzip data does not decompress ({exc})") from None


def _too_short(path: Path, expected: int, actual: int) -> None:
    if actual < expected:
        raise ImageReadError(
            f"{path}: the header announces {expected:,} bytes of data but the file holds "
            f"{actual:,} (truncated?)"
        )


def _trailer(fh) -> int:
    fh.seek(-4, os.SEEK_END)
    return int.from_bytes(fh.read(4), "little")


def check_nifti(path: Path, gz: bool) -> None:
    """Refuse a NIfTI whose data is shorter than its header says, or whose gzip is broken."""
    with open(path, "rb") as fh:
        raw_head = fh.read(1024)
        if gz and raw_head[:2] != b"\x1f\x8b":
            raise ImageReadError(f"{path}: not gzip-compressed data (a .nii.gz must be gzip)")
        trailer = _trailer(fh) if gz else 0
    try:
        head = zlib.decompressobj(31).decompress(raw_head, 1024) if gz else raw_head
    except zlib.error as exc:
        raise ImageReadError(f"{path}: gzip data does not decompress ({exc})") from None
    layout = _nifti_layout(head)
    if layout is None:
        return  # not a NIfTI header: SimpleITK's own message follows
    expected = layout[0] + layout[1]
    actual = _check_gzip(path, 0, expected, trailer) if gz else path.stat().st_size
    _too_short(path, expected, actual)


_BITS = re.compile(r"(\d+)-bit")


def check_nrrd(path: Path, n_values: int, pixel_type: str) -> None:
    """Refuse an attached-data NRRD whose gzip data is broken or shorter than its header says.

    ``n_values``: voxels x components; ``pixel_type``: SimpleITK's name (``"16-bit signed
    integer"``). Raw and detached data are left to SimpleITK, which checks their size.
    """
    bits = _BITS.search(pixel_type)
    with open(path, "rb") as fh:
        head = fh.read(65536)
        end = head.find(b"\n\n")
        if bits is None or end < 0 or not re.search(rb"\nencoding:\s*(gzip|gz)\s*\n", head[:end + 1]):
            return
        offset = end + 2
        if head[offset : offset + 2] != b"\x1f\x8b":
            raise ImageReadError(f"{path}: NRRD data said to be gzip is not gzip-compressed")
        trailer = _trailer(fh)
    expected = n_values * int(bits.group(1)) // 8
    _too_short(path, expected, _check_gzip(path, offset, expected, trailer))


#: Grids are the same when spacings agree to this relative tolerance, origins to this
#: fraction of the smallest voxel and direction cosines to this absolute tolerance (loose
#: enough for a header stored once in float32 (NIfTI) and once in double (NRRD)).
GRID_TOLERANCE = 1e-4


def _fmt(values) -> str:
    return " x ".join(f"{float(v):g}" for v in values)


def grid_difference(mask, image) -> str | None:
    """How the mask's grid differs from the image's, None when they agree.

    Both arguments have ``spacing``, ``origin`` and ``direction`` (array axis order);
    the shapes are compared by the caller.
    """
    sm, si = np.asarray(mask.spacing, float), np.asarray(image.spacing, float)
    if sm.shape != si.shape:
        return f"{len(sm)}D header against a {len(si)}D image"
    if not np.allclose(sm, si, rtol=GRID_TOLERANCE, atol=0):
        return f"voxel spacing {_fmt(sm)} differs from the image's {_fmt(si)}"
    om, oi = np.asarray(mask.origin, float), np.asarray(image.origin, float)
    if np.abs(om - oi).max(initial=0) > 10 * GRID_TOLERANCE * float(si.min(initial=1)):
        return f"origin {_fmt(om)} differs from the image's {_fmt(oi)}"
    dm, di = np.asarray(mask.direction, float), np.asarray(image.direction, float)
    if dm.shape != di.shape or np.abs(dm - di).max(initial=0) > GRID_TOLERANCE:
        return f"direction {_fmt(dm)} differs from the image's {_fmt(di)}"
    return None
