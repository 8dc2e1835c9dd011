"""MHR maps for display: block means, so that a large map stays cheap to refresh.

A large MHR map (more than :data:`MHR_DISPLAY_MAX_PIXELS` pixels) is shown as ``k x k``
block means (a layer scaled by ``k``); a paint updates only the display blocks its box
covers. The prediction maps of the predictions dock use the same :func:`block_mean`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MHR_DISPLAY_MAX_PIXELS", "block_mean", "mhr_display", "mhr_factor"]

#: MHR maps with more pixels than this are displayed as k x k block means (scaled layer).
MHR_DISPLAY_MAX_PIXELS = 1 << 21


def mhr_factor(shape: Sequence[int], max_pixels: int = MHR_DISPLAY_MAX_PIXELS) -> int:
    """Down-sampling factor ``k`` of the MHR display for masks of ``shape`` (2-D only).

    Parameters
    ----------
    shape : sequence of int
        Shape of the masks (the full-resolution map).
    max_pixels : int
        Largest number of pixels shown at full resolution.

    Returns
    -------
    int
        ``1`` (full resolution) when the masks have at most ``max_pixels`` pixels or are
        not 2-D, else the smallest ``k`` with at most about ``max_pixels`` blocks.

    Examples
    --------
    >>> mhr_factor((23, 17), 50)
    3
    """
    if len(shape) != 2:
        return 1
    n = int(shape[0]) * int(shape[1])
    if n <= max_pixels:
        return 1
    return int(np.ceil(np.sqrt(n / max_pixels)))


def block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """``k x k`` block means of a 2-D map, as float32.

    Parameters
    ----------
    a : (H, W) array
        The map.
    k : int
        Block size; ``k <= 1`` (or a map that is not 2-D) returns ``a`` as float32.

    Returns
    -------
    (ceil(H / k), ceil(W / k)) float32 array
        Each block's mean; edge blocks average their valid pixels only.
    """
    a = np.asarray(a, np.float32)
    if k <= 1 or a.ndim != 2:
        return a
    h, w = a.shape
    ph, pw = (-h) % k, (-w) % k
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw)))
    hb, wb = a.shape[0] // k, a.shape[1] // k
    sums = a.reshape(hb, k, wb, k).sum(axis=(1, 3), dtype=np.float32)
    cnt_r = np.minimum(k, h - np.arange(hb) * k).astype(np.float32)
    cnt_c = np.minimum(k, w - np.arange(wb) * k).astype(np.float32)
    return sums / (cnt_r[:, None] * cnt_c[None, :])


def mhr_display(votes: np.ndarray, n_masks: int, k: int, box: tuple[slice, ...] | None = None
                ) -> tuple[tuple[slice, ...], np.ndarray]:
    """MHR display values (float32) from vote counts, down-sampled by block means.

    Parameters
    ----------
    votes : (H, W) int array
        Number of masks that mark each pixel.
    n_masks : int
        Number of masks.
    k : int
        Block size (``1``: full resolution).
    box : tuple of slice, optional
        Only the display blocks covering this full-resolution box.

    Returns
    -------
    (display slices, values)
        Where to write ``values`` in the display array.
    """
    n = float(max(n_masks, 1))
    if box is None:
        box = tuple(slice(0, d) for d in votes.shape)
    if k == 1:
        return box, (votes[box] / n).astype(np.float32)
    (h, w) = votes.shape
    b0 = [int(s.start or 0) // k for s in box]
    b1 = [-(-int(s.stop if s.stop is not None else d) // k) for s, d in zip(box, (h, w), strict=True)]
    # the sub-image starts on a block boundary, so its edge blocks are the image's
    sub = votes[b0[0] * k:min(b1[0] * k, h), b0[1] * k:min(b1[1] * k, w)].astype(np.float32)
    vals = block_mean(sub, k) / np.float32(n)
    return (slice(b0[0], b1[0]), slice(b0[1], b1[1])), vals.astype(np.float32)
