"""Input preparation shared by training and prediction.

One function per input kind so that training and the plugin feed models identically:

- :func:`prepare_image`: any 2D grey/RGB/RGBA image
  (uint8, other integers, bool or float) -> ``(3, H, W)`` float32, resized with
  antialiasing, normalised with the card's mean/std.
- :func:`quality_input`: EvanySeg input: crop around the
  mask's bounding box with a margin (whole image if the mask is empty), blend the mask into
  the red channel, then as above.
- :func:`resize_map`, :func:`resize_mask`: maps and masks to a size (targets, outputs).

uint8 images (the usual case) take a faster route with the same arithmetic: large
reductions are block-averaged with exact integer sums (no float copy of the image), the
rest is resized by a compiled kernel with torch's filter and weights (:mod:`._fast_resize`,
equal to torch's float route within float32 rounding; without numba, converted in torch
and resized channels-last); ``quality_input`` converts only the
crop. Training imports these functions, so training and prediction see the same input.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from napari_iaa.errors import DatasetError
from napari_iaa.models._fast_resize import blend_u8_crop, resize_u8_chw
from napari_iaa.models.card import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "to_float_rgb",
    "prepare_image",
    "quality_crop_box",
    "blend_mask",
    "quality_input",
    "resize_map",
    "resize_mask",
    "normalise",
]

Size = int | Sequence[int]


def _size(size: Size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = (int(v) for v in size)
    return h, w


def _hwc(image: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` view with C in {1, 3, 4}; raises like :func:`to_float_rgb`."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise DatasetError(
            f"image of shape {np.asarray(image).shape} is not a 2D grey, RGB or RGBA image"
        )
    if arr.size == 0:
        raise DatasetError(f"image of shape {np.asarray(image).shape} is empty")
    return arr


def _reduce_factor(shape: Sequence[int], size: tuple[int, int]) -> int:
    """Block size of the integer pre-reduction (half the integer reduction factor)."""
    return min(shape[0] // max(1, size[0]), shape[1] // max(1, size[1])) // 2


def _resize_nchw(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of a ``(1, C, H, W)`` float tensor (any memory format)."""
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _area_reduce_u8(hwc: np.ndarray, f: int) -> np.ndarray:
    """Mean of ``f x f`` blocks of a uint8 ``(H, W, C)`` image as float32 in [0, 1].

    Exact integer sums (rows, then columns), so the result equals the float mean of
    :func:`_area_reduce` bit for bit without converting the image to float.
    """
    h, w = (hwc.shape[0] // f) * f, (hwc.shape[1] // f) * f
    c = hwc.shape[2]
    rows = hwc[:h].reshape(h // f, f, hwc.shape[1], c)
    acc = rows[:, 0].astype(np.uint16 if f <= 257 else np.uint32)
    for k in range(1, f):
        acc += rows[:, k]
    cols = acc[:, :w].reshape(h // f, w // f, f, c)
    out = cols[:, :, 0].astype(np.uint32)
    for k in range(1, f):
        out += cols[:, :, k]
    res = out.astype(np.float32)
    res /= np.float32(f * f)
    res /= np.float32(255.0)
    return res


def to_float_rgb(image: np.ndarray) -> np.ndarray:
    """Image -> ``(H, W, 3)`` float32 in [0, 1].

    Grey ``(H, W)`` or ``(H, W, 1)`` is repeated to three channels, RGBA drops alpha.
    uint8 is divided by 255, bool becomes 0/1, other integer or float images already in
    [0, 1] are kept and anything else is min-max scaled per image (NaN -> 0).

    Raises
    ------
    DatasetError
        If the array is not a 2D grey, RGB or RGBA image.
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    elif arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = arr[..., :3]
    else:
        raise DatasetError(
            f"image of shape {arr.shape} is not a 2D grey, RGB or RGBA image"
        )
    if arr.size == 0:
        raise DatasetError(f"image of shape {arr.shape} is empty")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == bool:
        return arr.astype(np.float32)
    out = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(out.min()), float(out.max())
    if lo >= 0.0 and hi <= 1.0:
        return out
    if hi > lo:
        return (out - lo) / (hi - lo)
    return np.zeros_like(out)


def _area_reduce(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Average ``f x f`` blocks of a large image (f = half the integer reduction factor).

    Strip by strip, so a big uint8 image is never converted to float all at once.
    """
    arr = np.asarray(image)
    if arr.ndim < 2:
        return arr
    f = min(arr.shape[0] // max(1, size[0]), arr.shape[1] // max(1, size[1])) // 2
    if f < 2:
        return arr
    h, w = (arr.shape[0] // f) * f, (arr.shape[1] // f) * f
    tail = arr.shape[2:]
    out = np.empty((h // f, w // f) + tail, np.float32)
    rows = max(1, 4096 // f)  # output rows per strip
    for r0 in range(0, h // f, rows):
        r1 = min(h // f, r0 + rows)
        strip = arr[r0 * f : r1 * f, :w].astype(np.float32)
        out[r0:r1] = strip.reshape((r1 - r0, f, w // f, f) + tail).mean(axis=(1, 3))
    if arr.dtype == np.uint8:
        out /= 255.0  # keep uint8 semantics: to_float_rgb sees a float image in [0, 1]
    return out


def normalise(
    x: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None
) -> torch.Tensor:
    """``(x - mean) / std`` over the channel axis of a ``(C, H, W)`` or ``(B, C, H, W)`` tensor."""
    if mean is None or std is None:
        return x
    shape = (-1, 1, 1)
    m = torch.as_tensor(tuple(mean), dtype=x.dtype, device=x.device).view(shape)
    s = torch.as_tensor(tuple(std), dtype=x.dtype, device=x.device).view(shape)
    return (x - m) / s


def _resize_chw(x: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    kwargs = {"align_corners": False, "antialias": True} if mode == "bilinear" else {}
    return F.interpolate(x[None], size=size, mode=mode, **kwargs)[0]


def prepare_image(
    image: np.ndarray,
    size: Size,
    mean: Sequence[float] | None = IMAGENET_MEAN,
    std: Sequence[float] | None = IMAGENET_STD,
) -> torch.Tensor:
    """Image -> normalised ``(3, H, W)`` float32 tensor at ``size``.

    Parameters
    ----------
    image : ndarray
        2D grey ``(H, W)``, RGB or RGBA; uint8, other integer, bool or float.
    size : int or (height, width)
        Output size (resized with antialiasing, aspect ratio not kept). Images more than
        4x larger are first block-averaged strip by strip, bounding memory.
    mean, std : sequence of float or None
        Normalisation after scaling to [0, 1]; ``None`` skips it.
    """
    size = _size(size)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        rgb = to_float_rgb(_area_reduce(arr, size))
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
        x = _resize_chw(x, size).clamp_(0.0, 1.0)
        return normalise(x, mean, std).contiguous()
    hwc = _hwc(arr)
    if hwc.shape[-1] == 4:
        hwc = hwc[..., :3]
    f = _reduce_factor(hwc.shape, size)
    if f >= 2:  # large reduction: exact block means, then the float filter on the small image
        small = _area_reduce_u8(hwc, f)
        x = torch.from_numpy(np.ascontiguousarray(small.transpose(2, 0, 1)))
        x = _resize_chw(x, size).clamp_(0.0, 1.0)
    else:
        fast = resize_u8_chw(hwc, size) if hwc.shape[:2] != size else None
        if fast is not None:  # compiled: the same filter on the bytes, 5x faster
            x = torch.from_numpy(fast)
        else:  # float32 as (H, W, C), resized as a channels-last view (no transposed copy)
            rgb = np.divide(hwc, np.float32(255.0), dtype=np.float32)  # == astype(f32) / 255
            x = _resize_nchw(torch.from_numpy(rgb).permute(2, 0, 1)[None], size)[0]
            x = x.clamp_(0.0, 1.0)
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return normalise(x, mean, std).contiguous()


def quality_crop_box(
    mask: np.ndarray, margin: float = 0.15
) -> tuple[int, int, int, int]:
    """Bounding box ``(y0, y1, x0, x1)`` of the mask grown by ``margin`` x its size.

    The box is clipped to the image; an empty mask gives the whole image.
    """
    m = np.asarray(mask).astype(bool)
    if m.ndim != 2:
        raise DatasetError(f"mask of shape {m.shape} is not 2D")
    h, w = m.shape
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return 0, h, 0, w
    cols = np.flatnonzero(m.any(axis=0))
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    my = int(round(margin * (y1 - y0))) + 1
    mx = int(round(margin * (x1 - x0))) + 1
    return max(0, y0 - my), min(h, y1 + my), max(0, x0 - mx), min(w, x1 + mx)


def blend_mask(rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a mask into the red channel: ``R = (1 - alpha) * R + alpha * mask``.

    ``rgb`` is ``(H, W, 3)`` float in [0, 1]; returns a new array.
    """
    out = np.array(rgb, dtype=np.float32, copy=True)
    out[..., 0] = (1.0 - alpha) * out[..., 0] + alpha * np.asarray(mask, dtype=np.float32)
    return out


def quality_input(
    image: np.ndarray,
    mask: np.ndarray,
    size: Size,
    margin: float = 0.15,
    mean: Sequence[float] | None = IMAGENET_MEAN,
    std: Sequence[float] | None = IMAGENET_STD,
    alpha: float = 0.5,
) -> torch.Tensor:
    """EvanySeg input: crop around the mask (+margin), mask blended into red -> ``(3, H, W)``.

    Raises
    ------
    DatasetError
        If the mask's shape differs from the image's spatial shape.
    """
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return _quality_input_u8(arr, mask, _size(size), margin, mean, std, alpha)
    rgb = to_float_rgb(arr)
    m, (y0, y1, x0, x1) = _mask_and_box(mask, rgb.shape[:2], margin)
    crop = blend_mask(rgb[y0:y1, x0:x1], m[y0:y1, x0:x1], alpha)
    x = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))
    x = _resize_chw(x, _size(size)).clamp_(0.0, 1.0)
    return normalise(x, mean, std).contiguous()


def _mask_and_box(
    mask: np.ndarray, shape: tuple[int, ...], margin: float
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The mask as bool (checked against the image's spatial shape) and its crop box."""
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise DatasetError(f"mask shape {m.shape} does not match image shape {tuple(shape)}")
    m = m.astype(bool)
    return m, quality_crop_box(m, margin)


def _quality_input_u8(
    image: np.ndarray,
    mask: np.ndarray,
    size: tuple[int, int],
    margin: float,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    alpha: float,
) -> torch.Tensor:
    """:func:`quality_input` for uint8 images, with the same arithmetic.

    Only the crop is converted to float (the whole image never is), in one pass through
    lookup tables (:func:`._fast_resize.blend_u8_crop`), and it is resized channels-last.
    """
    hwc = _hwc(image)
    m, (y0, y1, x0, x1) = _mask_and_box(mask, hwc.shape[:2], margin)
    rgb = blend_u8_crop(hwc[y0:y1, x0:x1], m[y0:y1, x0:x1], alpha)
    x = _resize_nchw(torch.from_numpy(rgb).permute(2, 0, 1)[None], size)[0].clamp_(0.0, 1.0)
    return normalise(x, mean, std).contiguous()


def resize_map(values: np.ndarray | torch.Tensor, size: Size) -> np.ndarray:
    """Resize a 2D float map (or ``(C, H, W)`` stack) bilinearly; returns float32 numpy."""
    t = torch.as_tensor(np.asarray(values, dtype=np.float32))
    squeeze = t.ndim == 2
    if squeeze:
        t = t[None]
    out = _resize_chw(t, _size(size), "bilinear")
    return (out[0] if squeeze else out).numpy()


def resize_mask(mask: np.ndarray, size: Size) -> np.ndarray:
    """Resize a 2D mask or label image with nearest-neighbour; keeps the dtype."""
    arr = np.asarray(mask)
    t = torch.as_tensor(arr.astype(np.float32))[None]
    out = _resize_chw(t, _size(size), "nearest")[0].numpy()
    return out.astype(arr.dtype)
