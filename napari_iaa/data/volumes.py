"""Medical volumes (NIfTI, NRRD, MetaImage) through SimpleITK.

Arrays are in numpy order: a 3D volume is ``(z, y, x)``, and so are its ``spacing``,
``origin`` and ``direction`` (SimpleITK keeps them in ``(x, y, z)`` order; they are
reversed here, and the direction matrix is reversed along both axes, so that
``world = origin + direction @ (spacing * index)`` holds for an array index).

Every failure is an :class:`~napari_iaa.errors.ImageReadError` naming the file: an
unknown or corrupt file, gzip data that does not decompress, a header whose size
disagrees with the data (a truncated ``.nii`` or ``.mha``), a 4D image, a vector-pixel
mask. SimpleITK itself reads a truncated ``.nii`` / ``.nii.gz`` without complaint, so the
data size is checked here against the header before SimpleITK decodes anything.
Writes are atomic (a hidden temporary file with the same suffix in the same folder,
fsync, rename).
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from napari_iaa.data._atomic import fsync_dir, replace_into
from napari_iaa.data._volume_checks import check_exists, check_nifti, check_nrrd, read_error
from napari_iaa.errors import ImageReadError

__all__ = [
    "VOLUME_SUFFIXES",
    "Volume",
    "VolumeHeader",
    "is_volume_path",
    "read_volume",
    "split_volume_suffix",
    "volume_header",
    "volume_suffix",
    "volume_image",
    "write_temp_volume",
    "write_volume",
]

#: File name endings read as volumes (lower case; ``.nii.gz`` is one suffix).
VOLUME_SUFFIXES: tuple[str, ...] = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
_BY_LENGTH = sorted(VOLUME_SUFFIXES, key=len, reverse=True)
#: Formats whose pixels live in a second file beside the header.
_TWO_FILE = (".nhdr", ".mhd")


def volume_suffix(path: str | os.PathLike) -> str | None:
    """The volume suffix of ``path`` (``".nii.gz"``, ``".nrrd"`` ...), None if it is not one."""
    name = os.path.basename(os.fspath(path)).lower()
    return next((s for s in _BY_LENGTH if name.endswith(s) and len(name) > len(s)), None)


def is_volume_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a NIfTI, NRRD or MetaImage file (by its suffix)."""
    return volume_suffix(path) is not None


def split_volume_suffix(name: str | os.PathLike) -> tuple[str, str]:
    """``"r0.nii.gz"`` -> ``("r0", ".nii.gz")``; other names split at their last dot."""
    base = os.path.basename(os.fspath(name))
    suffix = volume_suffix(base)
    if suffix is None:
        stem, ext = os.path.splitext(base)
        return stem, ext
    return base[: -len(suffix)], base[-len(suffix) :]


class VolumeHeader(NamedTuple):
    """What a volume's header says, in array axis order (nothing decoded)."""

    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]
    n_components: int
    pixel_type: str
    path: Path


@dataclass(frozen=True)
class Volume:
    """A decoded volume.

    Attributes
    ----------
    array : np.ndarray
        ``(z, y, x)`` (or ``(y, x)`` for a 2D file; a trailing channel axis for RGB).
    spacing, origin : tuple of float
        Voxel size and position of the first voxel, array axis order (mm for medical files).
    direction : tuple of float
        Direction cosines, row-major ``ndim x ndim`` in array axis order.
    path : Path
        The file read.
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]
    path: Path

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return len(self.spacing)


# ---------------------------------------------------------------------- axis order
def _reverse_direction(direction: tuple[float, ...] | list[float], n: int) -> tuple[float, ...]:
    """Row-major ``n x n`` matrix reversed along both axes (its own inverse)."""
    m = np.asarray(direction, dtype=float).reshape(n, n)
    return tuple(float(v) for v in m[::-1, ::-1].ravel())


def _to_array_order(spacing, origin, direction) -> tuple[tuple[float, ...], ...]:
    n = len(spacing)
    return (
        tuple(float(s) for s in reversed(spacing)),
        tuple(float(o) for o in reversed(origin)),
        _reverse_direction(direction, n),
    )


# ---------------------------------------------------------------------- reading
def _reader(path: Path):
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise read_error(path, exc) from None
    return reader


def volume_header(path: str | os.PathLike) -> VolumeHeader:
    """Read only the header of a volume.

    Parameters
    ----------
    path : path-like
        A NIfTI, NRRD or MetaImage file.

    Returns
    -------
    VolumeHeader
        ``(shape, spacing, origin, direction, n_components, pixel_type, path)``, array
        axis order.

    Raises
    ------
    ImageReadError
        Missing, empty or not a readable volume header.
    """
    path = Path(path)
    check_exists(path)
    reader = _reader(path)
    size = tuple(int(s) for s in reader.GetSize())
    spacing, origin, direction = _to_array_order(
        reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection()
    )
    import SimpleITK as sitk

    pixel = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    shape = tuple(reversed(size))
    while len(shape) > 3 and shape[0] == 1:  # a 4D file with one time point is a volume
        n = len(shape)
        shape, spacing, origin = shape[1:], spacing[1:], origin[1:]
        direction = tuple(np.asarray(direction).reshape(n, n)[1:, 1:].ravel().tolist())
    return VolumeHeader(
        shape, spacing, origin, direction,
        int(reader.GetNumberOfComponents()), pixel, path,
    )


def _check_header(header: VolumeHeader, for_mask: bool, limit: int | None) -> None:
    path, shape = header.path, header.shape
    what = "mask" if for_mask else "image"
    if len(shape) > 3:
        raise ImageReadError(
            f"{path}: {len(shape)}D {what} ({' x '.join(map(str, shape))}); only 2D and 3D "
            "volumes are supported (a time series or multi-channel 4D file?)"
        )
    n_comp = header.n_components
    if n_comp != 1 and (for_mask or n_comp not in (3, 4)):
        rule = "a mask must have one value per voxel" if for_mask else (
            "an image must have one value per voxel, or 3/4 colour channels")
        raise ImageReadError(
            f"{path}: {what} with {n_comp} values per voxel (vector pixel type "
            f"{header.pixel_type}); {rule}"
        )
    if "complex" in header.pixel_type.lower():
        raise ImageReadError(f"{path}: complex pixel type {header.pixel_type} not supported")
    n = int(np.prod(shape, dtype=np.int64))
    if limit is not None and n > limit:
        raise ImageReadError(
            f"{path}: volume of {' x '.join(map(str, shape))} voxels ({n:,}) exceeds the limit "
            f"of {limit:,} pixels (NAPARI_IAA_MAX_PIXELS); refused before decoding"
        )


def read_volume(
    path: str | os.PathLike, for_mask: bool = False, max_pixels: int | None = None
) -> Volume:
    """Read a NIfTI, NRRD or MetaImage file with its header.

    Parameters
    ----------
    path : path-like
        ``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha`` or ``.mhd``.
    for_mask : bool
        Refuse vector pixels (an image may be RGB/RGBA).
    max_pixels : int, optional
        Refuse larger volumes before decoding.

    Returns
    -------
    Volume
        The ``(z, y, x)`` array and the header in array axis order.

    Raises
    ------
    ImageReadError
        Missing, empty, corrupt, truncated (header and data disagree), gzip that does not
        decompress, 4D, vector pixels in a mask, or too large; the message names the file.
    """
    import SimpleITK as sitk

    header = volume_header(path)
    path = header.path
    _check_header(header, for_mask, max_pixels)
    suffix = volume_suffix(path)
    if suffix in (".nii", ".nii.gz"):
        check_nifti(path, gz=suffix == ".nii.gz")
    elif suffix == ".nrrd":
        n_values = int(np.prod(header.shape, dtype=np.int64)) * header.n_components
        check_nrrd(path, n_values, header.pixel_type)
    try:
        image = sitk.ReadImage(str(path))
        array = sitk.GetArrayFromImage(image)
    except RuntimeError as exc:
        raise read_error(path, exc) from None
    spatial = array.shape if header.n_components == 1 else array.shape[:-1]
    if len(spatial) > len(header.shape):
        array = array.reshape(header.shape + array.shape[len(spatial) :])
    return Volume(array, header.spacing, header.origin, header.direction, path)


# ---------------------------------------------------------------------- writing
def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def volume_image(array, like=None, spacing=None, origin=None, direction=None):
    """A SimpleITK image of a numpy array with a header (array axis order; see write_volume)."""
    import SimpleITK as sitk

    arr = np.asarray(array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.ndim not in (2, 3):
        raise ValueError(f"cannot write an array of shape {arr.shape} as a volume (2D or 3D)")
    n = arr.ndim
    spacing = spacing if spacing is not None else getattr(like, "spacing", None)
    origin = origin if origin is not None else getattr(like, "origin", None)
    direction = direction if direction is not None else getattr(like, "direction", None)
    image = sitk.GetImageFromArray(np.ascontiguousarray(arr))
    if spacing is not None:
        image.SetSpacing([float(s) for s in reversed(tuple(spacing))])
    if origin is not None:
        image.SetOrigin([float(o) for o in reversed(tuple(origin))])
    if direction is not None:
        image.SetDirection(_reverse_direction(tuple(direction), n))
    return image


def write_temp_volume(path: str | os.PathLike, image, compress: bool = True) -> Path:
    """Write a SimpleITK image to a hidden, fsynced temporary file beside ``path``.

    The temporary file has ``path``'s suffix (SimpleITK picks the format from it); the
    caller renames or links it into place and removes it. Single-file formats only.
    """
    import SimpleITK as sitk

    path = Path(path)
    stem, suffix = split_volume_suffix(path)
    tmp = path.with_name(f".{stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{suffix}")
    try:
        sitk.WriteImage(image, str(tmp), bool(compress))
        _fsync_file(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _write_two_file(path: Path, image, compress: bool) -> None:
    """``.mhd`` / ``.nhdr``: write both files in a hidden folder, move the data, then the header."""
    import SimpleITK as sitk

    tmp_dir = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmpdir")
    tmp_dir.mkdir()
    try:
        sitk.WriteImage(image, str(tmp_dir / path.name), bool(compress))
        files = sorted(tmp_dir.iterdir(), key=lambda p: p.name == path.name)  # header last
        for f in files:
            _fsync_file(f)
            os.replace(f, path.parent / f.name)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_volume(
    path: str | os.PathLike,
    array: np.ndarray,
    like: Volume | VolumeHeader | None = None,
    spacing: tuple[float, ...] | None = None,
    origin: tuple[float, ...] | None = None,
    direction: tuple[float, ...] | None = None,
    compress: bool = True,
) -> Path:
    """Write an array as a volume, atomically.

    Parameters
    ----------
    path : path-like
        Destination; the format follows the suffix (``.nii.gz``, ``.nrrd``, ``.mha`` ...).
        Its folder must exist; an existing file there is replaced only when the new one
        is complete.
    array : np.ndarray
        ``(z, y, x)`` or ``(y, x)``; boolean masks are written as uint8 0/1.
    like : Volume or VolumeHeader, optional
        Copy its spacing, origin and direction.
    spacing, origin, direction : tuple of float, optional
        Array axis order; each overrides ``like``'s (default: unit spacing, zero origin,
        identity).
    compress : bool
        Gzip the pixels of NRRD and MetaImage files (``.nii.gz`` is always compressed,
        ``.nii`` never).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    suffix = volume_suffix(path)
    if suffix is None:
        raise ValueError(f"{path}: not a volume file name ({', '.join(VOLUME_SUFFIXES)})")
    image = volume_image(array, like, spacing, origin, direction)
    if suffix in _TWO_FILE:
        _write_two_file(path, image, compress)
    else:
        return replace_into(write_temp_volume(path, image, compress), path)
    fsync_dir(path.parent)
    return path
