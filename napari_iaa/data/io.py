"""Reading images and masks from disk.

Every failure becomes an :class:`~napari_iaa.errors.ImageReadError` (or
:class:`~napari_iaa.errors.ShapeMismatchError`) whose message names the file. Images whose
header announces more than :data:`MAX_PIXELS` pixels are refused before any pixel is
decoded, so a hostile or mistaken 20000 x 20000 file cannot exhaust memory.

Volumes
-------
NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``) and MetaImage (``.mha``,
``.mhd``) are read through SimpleITK (:mod:`napari_iaa.data.volumes`) as ``(z, y, x)``
arrays; multi-page TIFF and 3D ``.npy`` are volumes too, without a header.
:func:`read_image_grid` gives the image with its header (spacing, origin, direction) and
:func:`read_mask` with ``grid=`` refuses a mask on another grid.

Masks are decoded here and turned into booleans by :mod:`napari_iaa.data.mask_encoding`
(its docstring: every encoding read, and how).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from napari_iaa import _env
from napari_iaa.data._volume_checks import grid_difference
from napari_iaa.data.mask_encoding import (
    LOSSY_MASK_SUFFIXES,
    MaskEncodingWarning,
    mask_warnings_to,
    threshold_lossy,
    to_bool_mask,
)
from napari_iaa.data.volumes import (
    VOLUME_SUFFIXES,
    VolumeHeader,
    is_volume_path,
    read_volume,
    volume_header,
)
from napari_iaa.errors import ImageReadError, ShapeMismatchError

__all__ = [
    "MAX_PIXELS",
    "ExifOrientationWarning",
    "MaskEncodingWarning",
    "IMAGE_EXTENSIONS",
    "VOLUME_SUFFIXES",
    "get_max_pixels",
    "has_image_suffix",
    "image_shape",
    "mask_warnings_to",
    "read_image",
    "read_image_grid",
    "read_mask",
    "to_bool_mask",
]

#: Default limit on the number of pixels of one image (override: ``NAPARI_IAA_MAX_PIXELS``).
MAX_PIXELS: int = 10**8

#: File name extensions recognised as images or masks (lower case).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".npy"}
)


def has_image_suffix(name: str | os.PathLike) -> bool:
    """Whether ``name`` ends in a suffix :func:`read_image` reads (``.png``, ``.nii.gz`` ...)."""
    return is_volume_path(name) or os.path.splitext(os.fspath(name))[1].lower() in IMAGE_EXTENSIONS


def get_max_pixels() -> int:
    """The pixel limit in force: ``NAPARI_IAA_MAX_PIXELS`` if set, else :data:`MAX_PIXELS`."""
    limit = _env.integer(_env.MAX_PIXELS)
    return MAX_PIXELS if limit is None else limit


def _check_file(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found") from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot access file ({exc.strerror or exc})") from None
    if not path.is_file():
        raise ImageReadError(f"{path}: not a file")
    if st.st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")


def _refuse_if_large(path: Path, n_pixels: int, shape_text: str, limit: int) -> None:
    if n_pixels > limit:
        raise ImageReadError(
            f"{path}: image of {shape_text} pixels ({n_pixels:,}) exceeds the limit of "
            f"{limit:,} pixels (NAPARI_IAA_MAX_PIXELS); refused before decoding"
        )


def _read_npy(path: Path, limit: int) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a read error
        raise ImageReadError(f"{path}: not a readable .npy array ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise ImageReadError(f"{path}: unsupported array dtype {arr.dtype}")
    n = int(np.prod(arr.shape[:-1] if arr.ndim >= 3 and arr.shape[-1] in (3, 4) else arr.shape))
    _refuse_if_large(path, n, " x ".join(map(str, arr.shape)), limit)
    return np.array(arr)


class _NotForPil(ImageReadError):
    """PIL does not recognise the file (a TIFF may still be read by tifffile)."""


_TIFF_SUFFIXES = (".tif", ".tiff")


def _tiff_series(path: Path, exc: ImageReadError, limit: int, decode: bool
                 ) -> tuple[tuple[int, ...], np.ndarray | None]:
    """Read a TIFF that PIL cannot (float64 samples ...) through tifffile.

    Returns the spatial shape (samples axis left out) and, with ``decode``, the array.
    Raises ``exc`` (PIL's verdict) when tifffile is missing or cannot read it either.
    """
    try:
        import tifffile
    except ImportError:
        raise exc from None
    try:
        with tifffile.TiffFile(path) as tf:
            series = tf.series[0]
            shape = tuple(int(v) for v in series.shape)
            spatial = shape[:-1] if series.axes.endswith("S") else shape
            _refuse_if_large(path, int(np.prod(spatial)), " x ".join(map(str, spatial)), limit)
            arr = np.asarray(series.asarray()) if decode else None
    except ImageReadError:
        raise
    except Exception:  # noqa: BLE001 - not a TIFF tifffile reads either: PIL's message
        raise exc from None
    if arr is not None and arr.dtype.kind not in "biuf":
        raise ImageReadError(f"{path}: unsupported TIFF sample type {arr.dtype}")
    return spatial, arr


def _pil_narrows(im: Image.Image) -> bool:
    """Whether PIL will cut 16-bit colour samples to their high byte (0/1 reads as 0)."""
    return im.mode in ("RGB", "RGBA") and any(
        ";16" in str(t[3][0] if isinstance(t[3], tuple) else t[3]) for t in im.tile)


class ExifOrientationWarning(UserWarning):
    """An image's EXIF orientation says to turn it for display; it is read as stored."""


#: EXIF orientation -> what a photo viewer does with the stored pixels
_ORIENTATIONS = {2: "mirrored", 3: "turned 180 degrees", 4: "flipped upside down",
                 5: "mirrored and turned 90 degrees", 6: "turned 90 degrees clockwise",
                 7: "mirrored and turned 90 degrees", 8: "turned 90 degrees counter-clockwise"}


def _warn_orientation(im: Image.Image, path: Path) -> None:
    """Warn when ``im``'s EXIF orientation is not the stored order (a phone's photo).

    Not applied: PIL, imageio and scikit-image read the stored order, and masks are drawn
    on it (ISIC's, and any tool's that reads images with them); turning the image alone
    would move it off its masks. A user whose masks were drawn on the turned view should
    turn the files themselves (``exiftran -ai``, or PIL's ``ImageOps.exif_transpose``).
    """
    # only where PIL reads the stored order (its TIFF reader turns an oriented TIFF itself)
    if im.format not in ("JPEG", "MPO", "PNG", "WEBP") or "exif" not in im.info:
        return
    try:
        value = im.getexif().get(0x0112)  # Orientation
    except Exception:  # noqa: BLE001 - a damaged EXIF block: the pixels are still good
        return
    if value in _ORIENTATIONS:
        warnings.warn(ExifOrientationWarning(
            f"{path}: its EXIF orientation ({value}: shown {_ORIENTATIONS[value]} by photo "
            "viewers) is not applied; read in its stored pixel order, on which masks are "
            "drawn. If its masks were drawn on the turned view, turn the image files "
            "first (e.g. exiftran -ai)"), stacklevel=4)


def _open_pil(path: Path, limit: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(
            f"{path}: image too large ({exc}); refused before decoding"
        ) from None
    except UnidentifiedImageError:
        raise _NotForPil(f"{path}: not an image file (or an unsupported format)") from None
    except Exception as exc:  # noqa: BLE001
        raise ImageReadError(f"{path}: cannot open image ({exc})") from None
    w, h = im.size
    n_frames = int(getattr(im, "n_frames", 1) or 1)
    shape_text = f"{w} x {h}" + (f" x {n_frames}" if n_frames > 1 else "")
    try:
        _refuse_if_large(path, w * h * n_frames, shape_text, limit)
    except ImageReadError:
        im.close()
        raise
    return im


def _frame_array(im: Image.Image, path: Path, for_mask: bool) -> np.ndarray:
    mode = im.mode
    if mode == "P" or mode == "PA":
        im = im.convert("RGBA" if ("transparency" in im.info or mode == "PA") else "RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    elif mode == "1":
        im = im.convert("L")
    elif mode in ("RGBa", "La"):
        im = im.convert("RGBA" if mode == "RGBa" else "LA")
    arr = np.asarray(im)
    if not for_mask:
        if arr.ndim == 3 and arr.shape[-1] == 2:  # grey + alpha: keep grey
            arr = arr[..., 0]
        elif arr.ndim == 3 and arr.shape[-1] == 4:  # drop alpha
            arr = arr[..., :3]
    return arr


def _decode(path: Path, for_mask: bool, max_pixels: int | None) -> np.ndarray:
    path = Path(path)
    _check_file(path)
    limit = get_max_pixels() if max_pixels is None else int(max_pixels)
    if is_volume_path(path):
        return read_volume(path, for_mask=for_mask, max_pixels=limit).array
    if path.suffix.lower() == ".npy":
        return _read_npy(path, limit)
    try:
        im = _open_pil(path, limit)
        narrows = _pil_narrows(im)
        if narrows and path.suffix.lower() in _TIFF_SUFFIXES:
            im.close()
            raise _NotForPil(f"{path}: 16-bit colour TIFF that PIL reads as 8 bits")
    except _NotForPil as exc:
        if path.suffix.lower() not in _TIFF_SUFFIXES:
            raise
        arr = _tiff_series(path, exc, limit, decode=True)[1]
        if not for_mask and arr.ndim == 3 and arr.shape[-1] in (2, 4):  # drop alpha
            arr = arr[..., 0] if arr.shape[-1] == 2 else arr[..., :3]
        return arr
    if not for_mask:
        _warn_orientation(im, path)
    if narrows and for_mask:  # a PNG: no other decoder at hand
        warnings.warn(MaskEncodingWarning(
            f"{path}: 16-bit colour image read at 8 bits (values below 256 read as 0); "
            "save the mask as a grey or 8-bit image"), stacklevel=3)
    try:
        n_frames = int(getattr(im, "n_frames", 1) or 1)
        frames = []
        for k in range(n_frames):
            if n_frames > 1:
                im.seek(k)
            im.load()
            frames.append(np.array(_frame_array(im, path, for_mask)))
    except ImageReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt data in any codec
        msg = str(exc) or type(exc).__name__
        raise ImageReadError(f"{path}: cannot decode image, file truncated or corrupt ({msg})") from None
    finally:
        im.close()
    if n_frames == 1:
        return frames[0]
    try:
        return np.stack(frames)
    except ValueError:
        raise ImageReadError(f"{path}: frames of a multi-page image differ in shape") from None


def image_shape(path: str | os.PathLike) -> tuple[int, ...]:
    """Spatial shape ``(H, W)`` (or ``(D, H, W)``) from the file header, without decoding."""
    path = Path(path)
    _check_file(path)
    if is_volume_path(path):
        return volume_header(path).shape
    if path.suffix.lower() == ".npy":
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        return tuple(arr.shape[:-1] if arr.ndim >= 3 and arr.shape[-1] in (3, 4) else arr.shape)
    try:
        im = _open_pil(path, 2**62)
    except _NotForPil as exc:
        if path.suffix.lower() not in _TIFF_SUFFIXES:
            raise
        return _tiff_series(path, exc, 2**62, decode=False)[0]
    try:
        w, h = im.size
        n = int(getattr(im, "n_frames", 1) or 1)
    finally:
        im.close()
    return (n, h, w) if n > 1 else (h, w)


def read_image(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file.

    Parameters
    ----------
    path : path-like
        PNG, JPEG, TIFF (multi-page -> 3D), BMP, ..., ``.npy`` (never unpickled), or a
        NIfTI / NRRD / MetaImage volume (``(z, y, x)``).
    max_pixels : int, optional
        Refuse larger images before decoding (default :func:`get_max_pixels`).

    Returns
    -------
    np.ndarray
        H x W (grey) or H x W x 3 (RGB; alpha dropped), in the file's dtype.

    Raises
    ------
    ImageReadError
        Missing, empty, truncated, not an image, or too large; the message names the file.
    """
    return _decode(Path(path), for_mask=False, max_pixels=max_pixels)


def read_image_grid(
    path: str | os.PathLike, max_pixels: int | None = None
) -> tuple[np.ndarray, VolumeHeader | None]:
    """Read an image with its grid: ``(array, header)``.

    ``header`` (spacing, origin, direction in array axis order) comes from a NIfTI, NRRD
    or MetaImage file; it is None for PNG, TIFF, ``.npy`` ... (unknown: unit voxels).

    Raises
    ------
    ImageReadError
        As :func:`read_image`.
    """
    path = Path(path)
    if not is_volume_path(path):
        return read_image(path, max_pixels=max_pixels), None
    _check_file(path)
    limit = get_max_pixels() if max_pixels is None else int(max_pixels)
    vol = read_volume(path, max_pixels=limit)
    shape = vol.array.shape[: vol.ndim]
    header = VolumeHeader(shape, vol.spacing, vol.origin, vol.direction, 1, "", path)
    return vol.array, header


def read_mask(
    path: str | os.PathLike,
    shape: tuple[int, ...] | None = None,
    max_pixels: int | None = None,
    grid: VolumeHeader | None = None,
) -> np.ndarray:
    """Read a mask file as a boolean array (foreground = nonzero).

    Parameters
    ----------
    path : path-like
        The mask file (any encoding, see the module docstring).
    shape : tuple of int, optional
        The image's spatial shape; a mask of another shape raises.
    max_pixels : int, optional
        Refuse larger files before decoding.
    grid : VolumeHeader, optional
        The image's header (anything with ``spacing``, ``origin``, ``direction``); a volume
        mask whose header places it elsewhere raises (a mask without a header, ``.npy`` or
        TIFF, is compared by shape only).

    Returns
    -------
    np.ndarray
        Boolean array of the mask's spatial shape.

    Raises
    ------
    ImageReadError
        The file cannot be read (a vector-pixel or 4D volume included).
    ShapeMismatchError
        ``shape`` is given and the mask's shape differs, or its grid differs from ``grid``.
    """
    path = Path(path)
    header = None
    if is_volume_path(path):
        _check_file(path)
        limit = get_max_pixels() if max_pixels is None else int(max_pixels)
        header = read_volume(path, for_mask=True, max_pixels=limit)
        arr = header.array
    else:
        arr = _decode(path, for_mask=True, max_pixels=max_pixels)
        if path.suffix.lower() in LOSSY_MASK_SUFFIXES:
            arr = threshold_lossy(arr, path)
    mask = to_bool_mask(arr, path)
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if mask.shape != shape:
            raise ShapeMismatchError(
                f"{path}: mask shape {'x'.join(map(str, mask.shape))} does not match the "
                f"image shape {'x'.join(map(str, shape))}"
            )
    if grid is not None and header is not None:
        diff = grid_difference(header, grid)
        if diff is not None:
            where = f" {grid.path}" if getattr(grid, "path", None) is not None else ""
            raise ShapeMismatchError(f"{path}: mask on another grid than the image{where}: {diff}")
    return mask
