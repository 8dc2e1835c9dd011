"""2.5D input for slice data sets: the neighbouring slices of the same lesion as channels.

A grey slice normally fills all three input channels with itself. With slice context the
channels are slices ``n - 1``, ``n`` and ``n + 1`` of the same nodule (the slice itself
where a neighbour does not exist), so the network sees whether the lesion continues above
and below: an end slice, where some readers stop marking, looks different from a middle
one. Neighbours come from the case ids (``patient/nodule/slice-N``, the LIDC slices
layout) or the ``nodule`` / ``slice`` metadata; RGB data sets (no slices) are left as they
are, and so is a cache that already carries its context (three channels).
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from training.datasets import CaseCache

__all__ = ["SLICE_CONTEXT_TEXT", "slice_neighbours", "with_slice_context"]

#: what a card's ``extra["input"]`` says of a model trained with slice context
SLICE_CONTEXT_TEXT = "2.5D: channels = slices n-1, n, n+1 of the same nodule (n where missing)"

_SLICE = re.compile(r"^(?P<stack>.*?)[/\\]?slice[-_](?P<n>-?\d+)$")


def _stack_and_slice(case_id: str, meta: dict) -> tuple[str, int] | None:
    """``(stack key, slice number)`` of a case, or None when it is not a slice of a stack."""
    if "slice" in meta and isinstance(meta.get("slice"), int):
        key = f"{meta.get('patient', '')}/{meta.get('nodule', '')}"
        return key, int(meta["slice"])
    m = _SLICE.match(case_id)
    if m is None:
        return None
    return m.group("stack"), int(m.group("n"))


def slice_neighbours(cache: CaseCache) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the previous and the next slice of every case (the case itself if none).

    Parameters
    ----------
    cache : CaseCache
        Cached cases; slices of one stack share a patient/nodule key.

    Returns
    -------
    prev, nxt : ndarray of int
        ``(n,)`` each.
    """
    n = len(cache)
    prev = np.arange(n)
    nxt = np.arange(n)
    where: dict[tuple[str, int], int] = {}
    keys: list[tuple[str, int] | None] = []
    for i, cid in enumerate(cache.case_ids):
        meta = cache.meta[i] if i < len(cache.meta) else {}
        k = _stack_and_slice(str(cid), meta)
        keys.append(k)
        if k is not None:
            where[k] = i
    for i, k in enumerate(keys):
        if k is None:
            continue
        prev[i] = where.get((k[0], k[1] - 1), i)
        nxt[i] = where.get((k[0], k[1] + 1), i)
    return prev, nxt


def with_slice_context(cache: CaseCache) -> CaseCache:
    """A copy of a grey ``cache`` whose images are ``(prev, slice, next)`` in three channels.

    Masks, targets and ids are shared with ``cache``; a three-channel cache (RGB, or one
    that has its context already) is returned unchanged.
    """
    if cache.images.shape[-1] != 1:
        return cache
    prev, nxt = slice_neighbours(cache)
    grey = cache.images[..., 0]
    images = np.stack([grey[prev], grey, grey[nxt]], axis=-1)
    return replace(cache, images=images)
