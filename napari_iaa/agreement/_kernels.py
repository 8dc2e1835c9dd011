"""Compiled kernels (numba) for the two hot loops of the agreement counts.

1. :func:`hist_words`: the annotator-set code histogram of a full recompute. The masks are
   read once as 64-bit words (8 one-byte pixels each), block by block; each block's codes
   are built in a small accumulator that stays in L1 (one shift and one OR per mask and
   word, vectorised by LLVM), and only the words where annotators disagree are split into
   per-pixel codes and histogrammed. numpy needs two full passes over every mask chunk plus
   temporaries for the same work; fused, the kernel runs close to the speed of reading the
   masks once.
2. :func:`row_delta`: after a brush stroke, how many of the changed pixels every other mask
   holds: a gather over N masks without the temporaries of ``flat[idx]``.
3. :func:`box_delta`: the same for an edit given as a box (2D dab, 3D ball, a fill of a
   whole volume): the box is walked row by row (any number of dimensions) and the changed
   pixels gathered :data:`EDIT_CHUNK` at a time, so no box-sized index array is made.

Why numba and not a C extension: same speed for these loops, no compiler needed at
install time (wheels on PyPI for every platform napari supports), and the numpy fallback
in ``_counts`` keeps everything working when numba is missing or disabled with
``NAPARI_IAA_NUMBA=0``.
"""

from __future__ import annotations

from napari_iaa._jit import njit as _njit
from napari_iaa._jit import numba

try:  # pragma: no cover - exercised in both states by the test-suite through the flag
    if numba is None:
        raise ImportError("numba missing or disabled by NAPARI_IAA_NUMBA")
    import numpy as np
    from llvmlite import ir
    from numba.core import types as _nbtypes
    from numba.extending import intrinsic

    AVAILABLE = True
except ImportError:  # pragma: no cover
    AVAILABLE = False

_BLOCK = 512  # words per block: 4 KiB accumulators per half, in L1 with the mask reads
#: changed pixels of a box edit looked up in the other masks per pass (1 MiB of buffers)
EDIT_CHUNK = 1 << 16

if AVAILABLE:

    _LO7 = np.uint64(0x7F7F7F7F7F7F7F7F)
    _HI1 = np.uint64(0x8080808080808080)
    _B = np.uint64(0xFF)
    _REP = np.uint64(0x0101010101010101)

    @_njit
    def _nonzero_bytes(x):  # pragma: no cover - compiled
        # 0x01 in every byte of x that is nonzero, 0x00 elsewhere (no carry across bytes)
        return ((((x & _LO7) + _LO7) | x) & _HI1) >> np.uint64(7)

    @_njit
    def hist_words(words, n, start, stop, is_bool, hist):  # pragma: no cover - compiled
        """Add the code histogram of words ``start:stop`` into ``hist``; return (zeros, fulls).

        ``words`` is a tuple of N uint64 arrays (N <= 16), each the word view of one mask
        of one-byte pixels; with ``is_bool`` the bytes are already 0/1. Bit ``i`` of a
        pixel's code is set where mask ``i`` is nonzero. Words where every pixel has code 0
        (or all N bits) are only counted, as ``zeros`` (``fulls``) words of 8 pixels.
        """
        n_lo = min(n, 8)
        n_hi = n - n_lo
        full_lo = np.uint64(0)
        for _ in range(8):
            full_lo = (full_lo << np.uint64(8)) | np.uint64((1 << n_lo) - 1)
        full_hi = np.uint64(0)
        for _ in range(8):
            full_hi = (full_hi << np.uint64(8)) | np.uint64((1 << n_hi) - 1)
        acc_lo = np.empty(_BLOCK, np.uint64)
        acc_hi = np.empty(_BLOCK, np.uint64)
        zeros = 0
        fulls = 0
        one = np.uint64(1)
        two = np.uint64(2)
        for b0 in range(start, stop, _BLOCK):
            b1 = min(stop, b0 + _BLOCK)
            m = b1 - b0
            acc_lo[:m] = 0
            acc_hi[:m] = 0
            # Horner order, highest mask first (two per pass): byte k of the accumulator
            # ends up with bit i set where pixel k of mask i (8 + i: high half) is nonzero.
            # The masks are read through views of the block, indexed by the loop counter
            # alone: indexed as ``w[b0 + k]`` (a sum numba cannot prove non-negative, so it
            # keeps the negative-index wrap), LLVM vectorised the loads as gathers, which
            # made the kernel 2.6x slower on an AMD EPYC (Zen 5) and slower on Intel too.
            i = n - 1
            while i >= 0:
                acc = acc_hi if i >= 8 else acc_lo
                if i - 1 >= (8 if i >= 8 else 0):  # two masks of the same half per pass
                    w1 = words[i][b0:b1]
                    w0 = words[i - 1][b0:b1]
                    if is_bool:
                        for k in range(m):
                            acc[k] = (acc[k] << two) | (w1[k] << one) | w0[k]
                    else:
                        for k in range(m):
                            acc[k] = (
                                (acc[k] << two)
                                | (_nonzero_bytes(w1[k]) << one)
                                | _nonzero_bytes(w0[k])
                            )
                    i -= 2
                else:
                    w = words[i][b0:b1]
                    if is_bool:
                        for k in range(m):
                            acc[k] = (acc[k] << one) | w[k]
                    else:
                        for k in range(m):
                            acc[k] = (acc[k] << one) | _nonzero_bytes(w[k])
                    i -= 1
            for k in range(m):
                lo = acc_lo[k]
                hi = acc_hi[k]
                if (lo | hi) == 0:
                    zeros += 1
                elif lo == full_lo and hi == full_hi:
                    fulls += 1
                elif lo == (lo & _B) * _REP and hi == (hi & _B) * _REP:
                    # 8 pixels with the same code (inside a band where one subset of
                    # annotators agrees): one increment
                    hist[(lo & _B) | ((hi & _B) << np.uint64(8))] += 8
                else:
                    for s in range(0, 64, 8):
                        sh = np.uint64(s)
                        code = ((lo >> sh) & _B) | (((hi >> sh) & _B) << np.uint64(8))
                        hist[code] += 1
        return zeros, fulls

    @_njit
    def row_delta(arrays, skip, gained, lost, out):  # pragma: no cover - compiled
        """``out[j] += #(mask j nonzero at gained) - #(at lost)`` for every ``j != skip``.

        ``arrays`` is a tuple of flat one-byte masks (uint8 views).
        """
        _gather_pm(arrays, skip, gained, 1, gained.size, out)
        _gather_pm(arrays, skip, lost, -1, lost.size, out)

    @intrinsic
    def _load_u8(typingctx, addr):  # pragma: no cover - compiled
        """The byte at address ``addr`` (an intp): one load, no array bookkeeping."""
        sig = _nbtypes.uint8(_nbtypes.intp)

        def codegen(context, builder, signature, args):
            return builder.load(builder.inttoptr(args[0], ir.IntType(8).as_pointer()))

        return sig, codegen

    @_njit
    def _data_addresses(arrays):  # pragma: no cover - compiled
        # the first byte's address of every mask (the tuple keeps the arrays alive)
        ptrs = np.empty(len(arrays), np.intp)
        for j in range(len(arrays)):
            ptrs[j] = arrays[j].ctypes.data
        return ptrs

    @_njit
    def _gather_pm(arrays, skip, idx, sign, k, out):  # pragma: no cover - compiled
        """``out[j] += sign * #(mask j nonzero at idx[:k])`` for every ``j != skip``.

        Pixel-major: each pixel is looked up in all N masks before the next one. Those N
        loads lie on N different pages and do not depend on each other, so their cache
        and TLB misses overlap; walking one mask at a time kept about one miss in flight
        (a brush row of 200 pixels is more work than the CPU looks ahead). The loads go
        through the masks' addresses (``idx`` is in bounds: the callers derive it from
        the masks' shape), which keeps the per-load work as small as the mask-major loop's.
        """
        n = len(arrays)
        ptrs = _data_addresses(arrays)
        acc = np.zeros(n, np.int64)
        for q in range(k):
            p = idx[q]
            for j in range(n):
                acc[j] += _load_u8(ptrs[j] + p) != 0
        for j in range(n):
            if j != skip:
                out[j] += sign * acc[j]

    @_njit
    def _gather(arrays, ptrs, skip, idx, sgn, k, out):  # pragma: no cover - compiled
        """``out[j] += sum(sgn[q] * (mask j nonzero at idx[q]))`` for every ``j != skip``.

        Pixel-major, as :func:`_gather_pm`; ``ptrs`` is ``_data_addresses(arrays)``.
        """
        n = len(arrays)
        acc = np.zeros(n, np.int64)
        for q in range(k):
            p = idx[q]
            s = sgn[q]
            for j in range(n):
                acc[j] += s * (_load_u8(ptrs[j] + p) != 0)
        for j in range(n):
            if j != skip:
                out[j] += acc[j]

    @_njit
    def box_delta(arrays, skip, row_off, col_step, n_cols, rm, old, new, new_is_scalar,
                  chunk, out):  # pragma: no cover - compiled
        """Count changes of a box edit of mask ``skip`` into ``out`` without index arrays.

        The box is any number of dimensions, seen as rows of ``n_cols`` pixels (all axes
        but the last make the rows): pixel (r, c) is flat index ``row_off[r] + c *
        col_step`` of every mask. ``rm`` says which pixels were written, shape (rows,
        n_cols), or is empty: the whole box. ``old``/``new`` hold the values of the written
        pixels in C order (``new`` may be one scalar). Adds, for every other mask ``j``,
        #(mask j nonzero where the pixel became foreground) minus #(where it became
        background) to ``out[j]``, and gained - lost to ``out[skip]``.

        The changed pixels are gathered ``chunk`` at a time (then looked up in every other
        mask), so the memory used is bounded whatever the box: a 3D fill of a whole volume
        needs no box-sized index array.
        """
        n_rows = row_off.size
        whole = rm.size == 0
        ptrs = _data_addresses(arrays)
        cap = max(1, min(n_rows * n_cols, chunk))
        idx = np.empty(cap, np.int64)
        sgn = np.empty(cap, np.int64)
        k = 0
        t = 0
        total = 0
        for r in range(n_rows):
            base = row_off[r]
            for c in range(n_cols):
                if whole or rm[r, c]:
                    was = old[t] != 0
                    now = (new[0] if new_is_scalar else new[t]) != 0
                    t += 1
                    if was != now:
                        idx[k] = base + c * col_step
                        s = 1 if now else -1
                        sgn[k] = s
                        total += s
                        k += 1
                        if k == cap:
                            _gather(arrays, ptrs, skip, idx, sgn, k, out)
                            k = 0
        if k:
            _gather(arrays, ptrs, skip, idx, sgn, k, out)
        out[skip] += total

    _LOOKUP_BLOCK = 4096  # pixels whose codes are built at a time (8 KiB of uint16, in L1)

    @_njit
    def lookup_codes(arrays, table, out):  # pragma: no cover - compiled
        """``out[p] = table[code of pixel p]`` (bit ``j``: ``arrays[j][p]`` nonzero).

        ``arrays`` is a tuple of N flat one-byte masks, ``out`` flat of their size. The
        codes of a block are built mask by mask in a small buffer (each mask read once,
        through a view of the block: no gathers), then looked up.
        """
        size = out.size
        code = np.empty(_LOOKUP_BLOCK, np.uint16)
        for s in range(0, size, _LOOKUP_BLOCK):
            e = min(s + _LOOKUP_BLOCK, size)
            m = e - s
            c = code[:m]
            c[:] = 0
            for j in range(len(arrays)):
                a = arrays[j][s:e]
                bit = np.uint16(1 << j)
                for k in range(m):
                    if a[k] != 0:
                        c[k] |= bit
            o = out[s:e]
            for k in range(m):
                o[k] = table[c[k]]
