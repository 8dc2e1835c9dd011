"""Exact foreground and pairwise intersection counts for N masks, fast.

For N <= 16 masks every pixel's annotator set is encoded as an N-bit code and the codes
are histogrammed; all N foreground counts and the N x N intersections follow from that
histogram with exact integer arithmetic. The masks are read once, chunk by chunk, as
64-bit words holding 8 pixels each (a bool is one byte, 0 or 1), so building the codes of
8 pixels costs one shift and one OR per mask. Chunks where every annotator agrees (code 0
or all ones, the bulk of a real image) are counted without a histogram. For N > 16 the
masks are bit-packed and each pair is AND-ed and popcounted.

With numba (``_kernels``) the code building and the histogram are one fused pass that
reads every mask once (any one-byte dtype, nonzero = foreground); the numpy version below
is the fallback for other dtypes, for missing numba and for ``NAPARI_IAA_NUMBA=0``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from napari_iaa import _env
from napari_iaa.agreement import _kernels

_CHUNK = 1 << 18  # pixels per chunk (a multiple of 8); 256 KiB of bools per mask
_PARALLEL_MIN_PIXELS = 1 << 22
_POOL: ThreadPoolExecutor | None = None
_LO, _HI = (0, 1) if sys.byteorder == "little" else (1, 0)  # byte order of a uint16


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a 1-D index array.

    A sort and a neighbour comparison: numpy >= 2.3's ``np.unique`` takes a hash-table path
    that is ~10x slower on a brush stroke's 10^4 indices; sorted indices also make the
    gathers from the other masks walk memory in order.
    """
    if a.size < 2:
        return a
    if (a[1:] > a[:-1]).all():  # already sorted and distinct (a brush dab's rows, in order)
        return a
    a = np.sort(a)
    keep = np.empty(a.size, dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a if keep.all() else a[keep]


def _n_threads() -> int:
    return _env.integer(_env.THREADS, default=max(1, min(2, os.cpu_count() or 1)), minimum=1)


def _pool(n: int) -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL._max_workers < n:
        _POOL = ThreadPoolExecutor(max_workers=n, thread_name_prefix="napari-iaa-counts")
    return _POOL


def _repeat_byte(b: int) -> np.uint64:
    return np.uint64(int.from_bytes(bytes([b]) * 8, "little"))


def _flat(m: np.ndarray) -> np.ndarray:
    """A 1-D view of ``m`` (a copy only when ``m`` is not contiguous)."""
    m = np.asarray(m)
    return m.reshape(-1)


def _words(flat: np.ndarray, s: int, e: int, buf: np.ndarray) -> np.ndarray:
    """Pixels ``s:e`` of ``flat`` as uint64 words of 8 bools (0/1 bytes), zero padded."""
    n = e - s
    if flat.dtype == np.bool_ and n % 8 == 0:
        return flat[s:e].view(np.uint64)
    padded = -(-n // 8) * 8
    np.not_equal(flat[s:e], 0, out=buf[:n])
    buf[n:padded] = False
    return buf[:padded].view(np.uint64)


def _hist_range(flats: Sequence[np.ndarray], start: int, stop: int) -> np.ndarray:
    """Histogram of annotator-set codes of pixels ``start:stop`` (N <= 16)."""
    n = len(flats)
    n_lo = min(n, 8)
    n_hi = n - n_lo
    hist = np.zeros(1 << n, np.int64)
    full_code = (1 << n) - 1
    full_lo = _repeat_byte((1 << n_lo) - 1)
    full_hi = _repeat_byte((1 << n_hi) - 1) if n_hi else None
    nw_max = _CHUNK // 8
    lo = np.empty(nw_max, np.uint64)
    hi = np.empty(nw_max, np.uint64) if n_hi else None
    tmp = np.empty(nw_max, np.uint64)
    zero = np.empty(nw_max, np.bool_)
    full = np.empty(nw_max, np.bool_)
    buf = np.empty(_CHUNK, np.bool_)
    pad_total = 0
    for s in range(start, stop, _CHUNK):
        e = min(stop, s + _CHUNK)
        nw = -(-(e - s) // 8)
        pad_total += nw * 8 - (e - s)
        lo_c, tmp_c = lo[:nw], tmp[:nw]
        hi_c = hi[:nw] if hi is not None else None
        # Horner order: the highest mask of each byte goes in first, then the
        # accumulator is doubled and OR-ed with the next mask (bit k <- mask 8b+k)
        for i in range(n - 1, -1, -1):
            w = _words(flats[i], s, e, buf)
            dst = lo_c if i < 8 else hi_c
            if i == (n_lo - 1 if i < 8 else n - 1):
                np.copyto(dst, w)
            else:
                np.add(dst, dst, out=dst)
                np.bitwise_or(dst, w, out=dst)
        z, fu = zero[:nw], full[:nw]
        if hi_c is None:
            np.equal(lo_c, 0, out=z)
            np.equal(lo_c, full_lo, out=fu)
        else:
            np.bitwise_or(lo_c, hi_c, out=tmp_c)
            np.equal(tmp_c, 0, out=z)
            np.equal(lo_c, full_lo, out=fu)
            fu &= hi_c == full_hi
        n_zero = int(np.count_nonzero(z))
        n_full = int(np.count_nonzero(fu))
        hist[0] += 8 * n_zero
        hist[full_code] += 8 * n_full
        if n_zero + n_full < nw:
            z |= fu
            idx = np.flatnonzero(~z)
            if hi_c is None:
                code = lo_c[idx].view(np.uint8)
            else:  # interleave the low and high bytes into uint16 codes
                code = np.empty(idx.size * 8, np.uint16)
                pairs = code.view(np.uint8).reshape(-1, 2)
                pairs[:, _LO] = lo_c[idx].view(np.uint8)
                pairs[:, _HI] = hi_c[idx].view(np.uint8)
            hist += np.bincount(code, minlength=1 << n)
    hist[0] -= pad_total  # padding pixels are empty in every mask
    return hist


def _compiled_ok(flats: Sequence[np.ndarray]) -> bool:
    return _kernels.AVAILABLE and all(f.dtype.itemsize == 1 and f.dtype.kind in "biu" for f in flats)


def _hist_compiled(flats: Sequence[np.ndarray], threads: int) -> np.ndarray:
    """``code_histogram`` through the fused numba kernel (one-byte masks)."""
    n = len(flats)
    size = flats[0].size
    n_words = size // 8
    is_bool = all(f.dtype == np.bool_ for f in flats)
    words = tuple(f[: n_words * 8].view(np.uint8).view(np.uint64) for f in flats)
    hist = np.zeros(1 << n, np.int64)
    if n_words:
        block = _kernels._BLOCK
        n_blocks = -(-n_words // block)
        if threads == 1 or size < _PARALLEL_MIN_PIXELS:
            bounds = [0, n_words]
        else:
            bounds = [min(n_words, (n_blocks * t // threads) * block) for t in range(threads + 1)]
        hists = [hist] + [np.zeros(1 << n, np.int64) for _ in bounds[2:]]
        jobs = [
            (words, n, bounds[t], bounds[t + 1], is_bool, hists[t]) for t in range(len(bounds) - 1)
        ]
        if len(jobs) == 1:
            results = [_kernels.hist_words(*jobs[0])]
        else:
            futures = [_pool(len(jobs)).submit(_kernels.hist_words, *job) for job in jobs]
            results = [f.result() for f in futures]
        for h in hists[1:]:
            hist += h
        hist[0] += 8 * sum(z for z, _ in results)
        hist[(1 << n) - 1] += 8 * sum(f for _, f in results)
    tail = size - n_words * 8
    if tail:  # the last < 8 pixels
        code = np.zeros(tail, np.int64)
        for i, f in enumerate(flats):
            code |= (f[n_words * 8 :] != 0).astype(np.int64) << i
        hist += np.bincount(code, minlength=1 << n)
    return hist


def code_histogram(flats: Sequence[np.ndarray], threads: int | None = None) -> np.ndarray:
    """Histogram (length 2**N) of per-pixel annotator-set codes, N <= 16.

    Code bit ``i`` is set where mask ``i`` is nonzero.
    """
    n = len(flats)
    if n > 16:
        raise ValueError("code_histogram handles at most 16 masks")
    size = flats[0].size if n else 0
    if n == 0 or size == 0:
        h = np.zeros(1 << n, np.int64)
        return h
    threads = _n_threads() if threads is None else max(1, threads)
    if _compiled_ok(flats):
        return _hist_compiled(flats, threads)
    if threads == 1 or size < _PARALLEL_MIN_PIXELS:
        return _hist_range(flats, 0, size)
    # split on chunk boundaries so every worker sees whole words
    n_chunks = -(-size // _CHUNK)
    bounds = [min(size, (n_chunks * t // threads) * _CHUNK) for t in range(threads + 1)]
    futures = [
        _pool(threads).submit(_hist_range, flats, bounds[t], bounds[t + 1])
        for t in range(threads)
        if bounds[t + 1] > bounds[t]
    ]
    return sum((f.result() for f in futures), np.zeros(1 << n, np.int64))


def counts_from_histogram(hist: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Foreground counts (N,) and intersections (N, N), int64, from a code histogram."""
    codes = np.flatnonzero(hist)
    bits = (codes[:, None] >> np.arange(n)) & 1  # (K, N) int64 0/1
    weighted = bits * hist[codes][:, None]
    inter = bits.T @ weighted
    inter = np.ascontiguousarray(inter, dtype=np.int64)
    return np.diag(inter).copy(), inter


def _packed_words(m: np.ndarray) -> np.ndarray:
    f = _flat(m)
    if f.dtype != np.bool_:
        f = f != 0
    p = np.packbits(f)
    pad = (-p.size) % 8
    if pad:
        p = np.concatenate([p, np.zeros(pad, np.uint8)])
    return p.view(np.uint64)


def pairwise_counts(
    masks: Sequence[np.ndarray], threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact foreground counts (N,) and pairwise intersection counts (N, N), int64.

    Foreground is nonzero. All masks must have the same shape (not checked here).
    """
    n = len(masks)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.int64)
    if n <= 16:
        flats = [_flat(m) for m in masks]
        return counts_from_histogram(code_histogram(flats, threads), n)
    words = [_packed_words(m) for m in masks]
    inter = np.zeros((n, n), np.int64)
    tmp = np.empty_like(words[0])
    for i in range(n):
        inter[i, i] = int(np.bitwise_count(words[i]).sum(dtype=np.int64))
        for j in range(i + 1, n):
            np.bitwise_and(words[i], words[j], out=tmp)
            inter[i, j] = inter[j, i] = int(np.bitwise_count(tmp).sum(dtype=np.int64))
    return np.diag(inter).copy(), inter


def row_counts(masks: Sequence[np.ndarray], i: int) -> np.ndarray:
    """Intersections of mask ``i`` with every mask (row ``i`` of the matrix), int64."""
    a = _flat(masks[i])
    if a.dtype != np.bool_:
        a = a != 0
    row = np.zeros(len(masks), np.int64)
    for j, m in enumerate(masks):
        if j == i:
            row[j] = int(np.count_nonzero(a))
            continue
        b = _flat(m)
        row[j] = int(np.count_nonzero(np.logical_and(a, b)))
    return row
