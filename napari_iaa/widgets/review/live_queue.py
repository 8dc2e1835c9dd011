"""Heavy edits of the live agreement, applied in order in a worker (bucket fills, undos).

A bucket fill or an undo can change millions of pixels of a 24-megapixel mask: telling
the tracker (O(changed pixels x masks)), the votes and the MHR display then takes
0.1-1 s, and the resynchronisation after an undo compares whole masks. An
:class:`EditQueue` runs such jobs in one worker, one after another in the order they
came; while any job is queued or running, every later edit of the case joins the queue
too, so the mirrors, the tracker and the votes always take the edits in the order the
layers did. The GUI thread is left with writing the MHR display values the worker
computed and telling the dock (:meth:`LiveAgreement._finish_jobs
<napari_iaa.widgets.review.live.LiveAgreement>`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qtpy.QtCore import QObject

from napari_iaa.widgets._common import notify_error, start_worker

__all__ = ["EditQueue", "JobResult", "bbox"]

Box = tuple[slice, ...]


@dataclass
class JobResult:
    """What one job changed (filled in by the worker, read on the GUI thread).

    Attributes
    ----------
    edited : set of str
        Masks whose mirror changed.
    boxes : list of tuple of slice
        The boxes that changed (full resolution).
    mhr : list of (slices, values)
        The MHR display values of those boxes, computed right after the job.
    resync : set of str
        Masks whose paint payload did not fit (to resynchronise in full).
    clean : set of str
        Masks found equal to their baseline (no unsaved edits) by a resync job.
    resynced : bool
        A resync job that changed something (undo, redo, replaced data).
    """

    edited: set[str] = field(default_factory=set)
    boxes: list[Box] = field(default_factory=list)
    mhr: list[tuple[Box, np.ndarray]] = field(default_factory=list)
    resync: set[str] = field(default_factory=set)
    clean: set[str] = field(default_factory=set)
    resynced: bool = False


class EditQueue(QObject):
    """Jobs applied in order in one worker thread.

    Parameters
    ----------
    apply : callable
        ``apply(job) -> JobResult``; runs in the worker (or in :meth:`flush`), one job
        at a time.
    finish : callable
        ``finish(results, fresh)`` on the GUI thread after the worker emptied the queue;
        ``fresh`` is False when a :meth:`flush` ran meanwhile (the results' MHR values may
        then be older than the flushed jobs': recompute them).
    failed : callable
        ``failed(exc)`` on the GUI thread when a job raised (the state must be rebuilt).
    """

    def __init__(self, apply: Callable[[Any], JobResult],
                 finish: Callable[[list[JobResult], bool], None],
                 failed: Callable[[BaseException], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._apply = apply
        self._finish = finish
        self._failed = failed
        self._jobs: deque = deque()
        self._lock = threading.Lock()
        self._worker: Any = None
        self._flushes = 0
        self.closed = False

    @property
    def busy(self) -> bool:
        """Whether a job is queued or running (later edits must queue behind it)."""
        return self._worker is not None or bool(self._jobs)

    def submit(self, job: Any) -> None:
        """Queue ``job``; start the worker unless it runs (GUI thread)."""
        self._jobs.append(job)
        if self._worker is None:
            self._start()

    def _start(self) -> None:
        flushes = self._flushes
        self._worker = start_worker(
            self._drain, on_return=lambda res: self._done(res, flushes), on_error=self._error,
            sync=False)

    def _drain(self) -> list[JobResult]:
        """The worker: apply jobs until the queue is empty."""
        out = []
        while True:
            with self._lock:
                if not self._jobs:
                    return out
                out.append(self._apply(self._jobs.popleft()))

    def _done(self, results: list[JobResult], flushes: int) -> None:
        self._worker = None
        if self.closed:
            return
        self._finish(results, flushes == self._flushes)
        if self._jobs:  # queued after the worker found the queue empty
            self._start()

    def _error(self, exc: BaseException) -> None:
        self._worker = None
        self._jobs.clear()
        if self.closed:
            return
        notify_error(f"live agreement: an edit could not be applied ({type(exc).__name__}: "
                     f"{exc}); recounting")
        self._failed(exc)

    def flush(self) -> None:
        """Apply the queued jobs now, on this thread (waits for the running one)."""
        with self._lock:
            results = []
            while self._jobs:
                results.append(self._apply(self._jobs.popleft()))
        if results:
            self._flushes += 1
            self._finish(results, True)

    def close(self) -> None:
        """Drop the queued jobs; results still to come are ignored."""
        self.closed = True
        self._jobs.clear()

def bbox(sel: np.ndarray) -> Box | None:
    """The bounding box of the True pixels of ``sel`` (None: there are none)."""
    if not sel.any():
        return None
    out = []
    for axis in range(sel.ndim):
        other = tuple(a for a in range(sel.ndim) if a != axis)
        hit = np.flatnonzero(sel.any(axis=other) if other else sel)
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(out)
