"""Process-wide memory settings a dock may ask for (opt-in).

``NAPARI_IAA_GC_FREEZE`` stays opt-in (decided in issue 16's fifth pass, BENCHMARKS.md).
The one full collection that every long data-set table run brought on (170-180 ms idle,
up to 510 ms under load) was ours: each run promoted ~30,000 objects (its cases'
``CaseScore`` objects, kept by the pool's futures to the run's end) to the oldest
generation, and CPython runs a full collection once the objects promoted since the last
one exceed a quarter of that generation (~500,000 objects in a napari process with the
review dock). A run now promotes next to nothing (0-7,100 objects; batches and table
rows are tuples of plain values, which the collector does not track, and a cancelled
run's chunks stop), and none of the benchmark's 6 measured runs (load 2-8) had a full
collection without freezing. The full collections left are napari's own (its start-up:
~70,000 objects promoted in a viewer's first 20 s), which freezing would shorten too,
but freezing changes the whole napari process (reference cycles among frozen objects are
never reclaimed), so a user asks for it.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

from napari_iaa import _env

__all__ = ["freeze_gc_once", "older_objects_frozen"]

_GC_FROZEN = False
_HOLDS = 0  # ``older_objects_frozen`` blocks running now (any thread)
_HOLDS_LOCK = threading.Lock()


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


@contextlib.contextmanager
def older_objects_frozen() -> Iterator[None]:
    """Within the block, the objects alive at its start are out of the collector's reach.

    For a long job that allocates all the time (a training run): CPython runs a full
    collection once the objects promoted since the last one exceed a quarter of the
    oldest generation, and a full collection walks the whole napari process (torch, Qt,
    napari: 240-400 ms measured on a 2-core Xeon, the viewer stopped throughout). With
    the older objects frozen (``gc.freeze``) the job's own collections walk only what it
    made. They are given back at the end (``gc.unfreeze``, when the last block running
    in any thread ends), so a reference cycle among them is reclaimed later, not never;
    garbage made during the block is collected as usual. Nothing is done when
    ``NAPARI_IAA_GC_FREEZE`` froze the process for good (:func:`freeze_gc_once`).
    """
    global _HOLDS
    with _HOLDS_LOCK:
        hold = not _GC_FROZEN
        if hold:
            _HOLDS += 1
            gc.freeze()
    try:
        yield
    finally:
        if hold:
            with _HOLDS_LOCK:
                _HOLDS -= 1
                if _HOLDS == 0 and not _GC_FROZEN:
                    gc.unfreeze()
