"""Process-wide memory settings a dock may ask for (opt-in)."""

from __future__ import annotations

import gc

from napari_iaa import _env

__all__ = ["freeze_gc_once"]

_GC_FROZEN = False


def freeze_gc_once() -> bool:
    """Move every object alive now out of the cyclic garbage collector's reach (once).

    A napari process holds some 600,000 long-lived objects (Qt wrappers, napari models,
    torch, ...). Python's full (generation-2) collection walks all of them: ~240 ms with
    every thread stopped, triggered by allocations anywhere (a training step, a layer), and
    the viewer freezes that long. ``gc.collect()`` then ``gc.freeze()`` once, when a dock
    opens, leaves later full collections only the objects made since (~40 ms measured).
    Frozen objects are still freed by reference counting; only reference cycles among
    them are never reclaimed. Because that changes the whole napari process, not just
    this plugin, it is opt-in: ``NAPARI_IAA_GC_FREEZE=1`` turns it on. Returns True if it
    froze now.
    """
    global _GC_FROZEN
    if _GC_FROZEN or not _env.flag(_env.GC_FREEZE):
        return False
    _GC_FROZEN = True
    gc.collect()
    gc.freeze()
    return True
