"""The one way the docks run background work.

Everything long (opening a large case, reliability, scoring a data set, predicting,
training) goes through :func:`start_worker`: a napari/superqt worker (a plain function or a
generator function) whose yields reach the dock on the GUI thread. Workers yield typed
messages (:mod:`.events`); a :class:`~.events.Progress` also moves a bar in napari's
activity dock when ``activity`` names the job. ``NAPARI_IAA_NO_THREADS=1`` runs the job
synchronously in the calling thread (tests, debugging). Low-priority work (reliability)
runs on a one-thread pool of its own at a lower OS priority, so it never holds a thread of
napari's pool nor slows the GUI thread.

:class:`Relay` carries messages from a thread we do not own (a training callback) to the
GUI thread through a queued signal.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QObject, QThreadPool, Signal

from napari_iaa import _env
from napari_iaa.widgets._common.events import Progress

__all__ = ["Activity", "Relay", "lower_thread_priority", "no_threads", "start_worker"]

_LIVE: set[Any] = set()  # workers on our own pool: kept alive until they finish
_LOW_POOL: QThreadPool | None = None


def no_threads() -> bool:
    """``NAPARI_IAA_NO_THREADS``: run background work synchronously (tests, debugging)."""
    return _env.flag(_env.NO_THREADS)


def lower_thread_priority(niceness: int = 10) -> None:
    """Lower the OS scheduling priority of the calling thread (Linux; else a no-op)."""
    try:
        import os

        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):
        pass


class Relay(QObject):
    """Carries messages from any thread to the GUI thread (a queued signal)."""

    message = Signal(object)

    def send(self, msg: Any) -> bool:
        """Emit ``msg``; False when the receiving dock has been deleted meanwhile."""
        try:
            self.message.emit(msg)
        except RuntimeError:
            return False
        return True


class Activity:
    """A progress bar in napari's activity dock, fed by :class:`Progress` messages.

    Updates are applied at most every ``min_interval`` seconds (a repaint of the activity
    dock on a software-GL display recomposes the window), the last one when it closes.
    """

    def __init__(self, desc: str, total: int = 0, min_interval: float = 0.2) -> None:
        from napari.utils import progress

        self._bar = progress(total=total, desc=desc)
        self._min = min_interval
        self._last = 0.0
        self._pending: Progress | None = None

    def update(self, msg: Progress) -> None:
        """Note ``msg``; shown now unless the last update was under ``min_interval`` ago."""
        self._pending = msg
        now = time.monotonic()
        if now - self._last >= self._min:
            self._apply()
            self._last = now

    def _apply(self) -> None:
        msg, self._pending = self._pending, None
        if msg is None:
            return
        bar = self._bar
        if msg.total and bar.total != msg.total:
            bar.total = msg.total
        if msg.text:
            bar.set_description(msg.text)
        bar.n = min(msg.done, msg.total) if msg.total else msg.done
        bar.refresh()

    def close(self) -> None:
        """Show the last message and remove the bar."""
        self._apply()
        self._bar.close()


def _low_pool() -> QThreadPool:
    global _LOW_POOL
    if _LOW_POOL is None:
        _LOW_POOL = QThreadPool()
        _LOW_POOL.setMaxThreadCount(1)
    return _LOW_POOL


def _niced(job: Callable[..., Any]) -> Callable[..., Any]:
    """``job`` run at a lower OS priority (the pool thread stays niced: it is ours)."""
    if inspect.isgeneratorfunction(job):

        @functools.wraps(job)
        def gen(*args: Any, **kwargs: Any) -> Any:
            lower_thread_priority()
            return (yield from job(*args, **kwargs))

        return gen

    @functools.wraps(job)
    def fn(*args: Any, **kwargs: Any) -> Any:
        lower_thread_priority()
        return job(*args, **kwargs)

    return fn


def start_worker(
    job: Callable[..., Any],
    *args: Any,
    on_yield: Callable[[Any], None] | None = None,
    on_return: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_finish: Callable[[], None] | None = None,
    activity: str | None = None,
    low_priority: bool = False,
    sync: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Run ``job(*args, **kwargs)`` in a worker thread and return the started worker.

    Parameters
    ----------
    job
        A function (its return value goes to ``on_return``) or a generator function (each
        yield goes to ``on_yield`` on the GUI thread; ``worker.quit()`` stops it at its
        next yield, so long loops should yield often).
    on_yield, on_return, on_error, on_finish
        Slots connected before the worker starts. ``on_finish`` runs after success, error
        and quit alike. Without ``on_error`` an exception is dropped silently, so docks
        always pass one (usually a notification naming the job).
    activity
        When given, a bar with this description in napari's activity dock follows the
        job's :class:`~.events.Progress` messages and closes when it finishes.
    low_priority
        Run on the plugin's one-thread pool at a lower OS priority (for work whose result
        is informative, such as reliability, and must never compete with the GUI).
    sync
        Run in the calling thread; default ``NAPARI_IAA_NO_THREADS``.
    """
    from napari.qt.threading import create_worker

    if low_priority:
        job = _niced(job)
    worker = create_worker(job, *args, _start_thread=False, _ignore_errors=True, **kwargs)
    has_yield = hasattr(worker, "yielded")
    if activity is not None:
        bar = Activity(activity)
        if has_yield:
            worker.yielded.connect(lambda msg: bar.update(msg) if isinstance(msg, Progress)
                                   else None)
        worker.finished.connect(bar.close)
    if on_yield is not None and has_yield:
        worker.yielded.connect(on_yield)
    if on_return is not None:
        worker.returned.connect(on_return)
    if on_error is not None:
        worker.errored.connect(on_error)
    if on_finish is not None:
        worker.finished.connect(on_finish)
    if no_threads() if sync is None else sync:
        worker.run()
    elif low_priority:
        _LIVE.add(worker)
        worker.finished.connect(lambda: _LIVE.discard(worker))
        worker.setAutoDelete(False)
        _low_pool().start(worker)
    else:
        worker.start()
    return worker
