"""The one way the docks run background work.

Everything long (opening a large case, reliability, scoring a data set, predicting,
training) goes through :func:`start_worker`: a napari/superqt worker (a plain function or a
generator function) whose yields reach the dock on the GUI thread. Workers yield typed
messages (:mod:`.events`); a :class:`~.events.Progress` also moves a bar in napari's
activity dock when ``activity`` names the job. ``NAPARI_IAA_NO_THREADS=1`` runs the job
synchronously in the calling thread (tests, debugging).

Our workers run on thread pools of the plugin's own, never on Qt's global pool: Qt 5
converts a large ``QImage`` (napari's activity spinner, icons, screenshots) on the GUI
thread by splitting it over the global pool and waiting for the pieces, with the GIL held
(PyQt5 keeps it during such calls). Python workers filling the global pool (it has one
thread per core: two on a small laptop) then wait for the GIL while the GUI thread waits for
them: the viewer froze for good. Low-priority work (reliability) runs on a one-thread pool
at a lower OS priority, so it never slows the GUI thread.

A worker belongs to an ``owner`` (the dock that started it): when the owner is deleted
(its viewer closed) or taken out of its window (the dock closed), the worker is told to
stop (``worker.quit()``, and ``on_stop``, for example setting an event a training loop
checks) and the owner's slots are disconnected, so a job ending later calls nothing of a
deleted dock. A stopped generator job is closed in its own thread at the yield where it
stopped, so its ``finally`` blocks run then (:class:`_Closer`). When the application quits, every worker is told to stop and is waited for
(:func:`wait_for_workers`), so a script that quits while a job runs exits cleanly.

:class:`Relay` carries messages from a thread we do not own (a training callback) to the
GUI thread through a queued signal.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qtpy.QtCore import (
    QCoreApplication,
    QEvent,
    QObject,
    Qt,
    QThread,
    QThreadPool,
    Signal,
)

from napari_iaa import _env
from napari_iaa._priority import lower_thread_priority
from napari_iaa.widgets._common.activity import LONG_JOB_INTERVAL_S, SHOW_AFTER_MS, Activity
from napari_iaa.widgets._common.events import Progress

__all__ = [
    "LONG_JOB_INTERVAL_S", "SHOW_AFTER_MS", "Activity", "Relay", "lower_thread_priority", "no_threads", "start_worker", "stop_workers",
    "wait_for_workers",
]

#: how long quitting the application waits for the workers told to stop (seconds)
QUIT_WAIT_S = 30.0


@dataclass(eq=False)
class _Job:
    """A started worker: who owns it, how to tell it to stop, the owner's slots."""

    worker: Any
    owner_key: int | None = None
    on_stop: Callable[[], None] | None = None
    slots: list[tuple[Any, Callable[..., Any]]] = field(default_factory=list)
    stopped: bool = False

    def stop(self) -> None:
        """Tell the worker to stop and disconnect the owner's slots (GUI thread)."""
        if self.stopped:
            return
        self.stopped = True
        for signal, slot in self.slots:
            with contextlib.suppress(TypeError, RuntimeError):  # already gone with its owner
                signal.disconnect(slot)
        self.slots.clear()
        self.worker.quit()
        if self.on_stop is not None:
            self.on_stop()


_LIVE: dict[Any, _Job] = {}  # running workers (kept alive until they finish)
_POOL: QThreadPool | None = None
_LOW_POOL: QThreadPool | None = None
_WATCHERS: dict[int, QObject] = {}  # id(owner) -> its watcher (a child of the owner)
_QUIT_HOOKED: list[bool] = []


def no_threads() -> bool:
    """``NAPARI_IAA_NO_THREADS``: run background work synchronously (tests, debugging)."""
    return _env.flag(_env.NO_THREADS)


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


def _pool() -> QThreadPool:
    """The plugin's pool: enough threads that a long job (training) never queues a short one."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(max(8, 2 * QThread.idealThreadCount()))
    return _POOL


def _low_pool() -> QThreadPool:
    global _LOW_POOL
    if _LOW_POOL is None:
        _LOW_POOL = QThreadPool()
        _LOW_POOL.setMaxThreadCount(1)
    return _LOW_POOL


class _OwnerWatch(QObject):
    """Stops an owner's workers when it is deleted or taken out of its window."""

    def __init__(self, owner: QObject) -> None:
        super().__init__(owner)
        self.key = id(owner)
        owner.installEventFilter(self)
        # a plain function, not a method of the dying owner or of this child
        owner.destroyed.connect(functools.partial(_owner_gone, self.key))

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """A dock closed in napari: its widget loses its parent."""
        if event.type() == QEvent.Type.ParentChange and obj.parent() is None:
            stop_workers(obj)
        return False


def _owner_gone(key: int, *_args: Any) -> None:
    _WATCHERS.pop(key, None)
    for job in [j for j in _LIVE.values() if j.owner_key == key]:
        job.stop()


def _watch(owner: QObject) -> int:
    key = id(owner)
    if key not in _WATCHERS:
        _WATCHERS[key] = _OwnerWatch(owner)
    return key


def stop_workers(owner: QObject | None = None) -> int:
    """Tell the running workers of ``owner`` (all when None) to stop; returns how many.

    Each gets ``worker.quit()`` (a generator job stops at its next yield) and its
    ``on_stop``; the slots it was started with are disconnected, so nothing of the owner is
    called when it ends (its activity bar still closes).
    """
    key = None if owner is None else id(owner)
    jobs = [j for j in _LIVE.values() if key is None or j.owner_key == key]
    for job in jobs:
        job.stop()
    return len(jobs)


def wait_for_workers(timeout: float = QUIT_WAIT_S) -> bool:
    """Wait up to ``timeout`` seconds for the plugin's pools to run dry; True when they did.

    Sleeps in short steps (the GIL is free meanwhile, so the workers can finish); queued
    signals of the finishing workers are delivered by the event loop afterwards, if any.
    """
    deadline = time.monotonic() + timeout
    pools = [p for p in (_POOL, _LOW_POOL) if p is not None]
    while any(p.activeThreadCount() for p in pools):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _on_quit() -> None:
    """The application quits: stop every worker and wait for them."""
    if _LIVE:
        stop_workers()
        for pool in (_POOL, _LOW_POOL):
            if pool is not None:
                pool.clear()  # jobs not started yet never start
        wait_for_workers()


def _hook_quit() -> None:
    """Once: stop and wait for the workers when the application quits or, for a script
    that never ran the event loop, when Python exits (before Qt's objects go)."""
    if _QUIT_HOOKED:
        return
    _QUIT_HOOKED.append(True)
    atexit.register(_on_quit)
    app = QCoreApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(_on_quit)


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


class _Closer:
    """The running generator of a generator job, closed in its own thread when stopped.

    superqt's worker stops calling a quit generator at its next yield and drops it
    without closing it, so its ``finally`` and ``with`` blocks (a process pool's
    shutdown, an open file) wait for the garbage collector, and its suspended frame keeps
    everything it refers to alive meanwhile. Connected to ``aborted`` (emitted in the
    worker's thread, direct connection), :meth:`close` runs them at once, off the GUI.
    """

    def __init__(self) -> None:
        self.gen: Any = None

    def wrap(self, job: Callable[..., Any]) -> Callable[..., Any]:
        """``job`` (a generator function) with its generator kept here while it runs."""

        @functools.wraps(job)
        def gen(*args: Any, **kwargs: Any) -> Any:
            self.gen = job(*args, **kwargs)
            try:
                return (yield from self.gen)
            finally:
                self.gen = None

        return gen

    def close(self) -> None:
        """Close the job's generator (its cleanup runs now, in the calling thread)."""
        gen, self.gen = self.gen, None
        if gen is not None:
            try:
                gen.close()
            except Exception as exc:  # noqa: BLE001 - a job's cleanup must not kill the pool thread
                import warnings

                warnings.warn(f"closing a stopped job raised {exc!r}", RuntimeWarning, stacklevel=2)


def start_worker(
    job: Callable[..., Any],
    *args: Any,
    on_yield: Callable[[Any], None] | None = None,
    on_return: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_finish: Callable[[], None] | None = None,
    activity: str | Activity | None = None,
    activity_after_ms: int = SHOW_AFTER_MS,
    low_priority: bool = False,
    sync: bool | None = None,
    owner: QObject | None = None,
    on_stop: Callable[[], None] | None = None,
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
        When given, a bar in napari's activity dock that closes when the job ends: a
        description (the bar follows the job's yielded :class:`~.events.Progress`
        messages) or an :class:`Activity` the caller feeds itself. The bar appears
        ``activity_after_ms`` later (default :data:`SHOW_AFTER_MS`), not in this call, and
        only if the job still runs then (see :class:`Activity`).
    low_priority
        Run on the plugin's one-thread pool at a lower OS priority (for work whose result
        is informative, such as reliability, and must never compete with the GUI).
    sync
        Run in the calling thread; default ``NAPARI_IAA_NO_THREADS``.
    owner
        The dock (or a child of it) the job works for: when it is deleted or taken out of
        its window the worker is stopped (see :func:`stop_workers`) and the slots above
        are disconnected.
    on_stop
        Called on the GUI thread when the worker is told to stop (owner gone, application
        quitting), for a job that polls a flag rather than yielding.
    """
    from napari.qt.threading import create_worker

    if low_priority:
        job = _niced(job)
    closer = _Closer() if inspect.isgeneratorfunction(job) else None
    if closer is not None:
        job = closer.wrap(job)
    worker = create_worker(job, *args, _start_thread=False, _ignore_errors=True, **kwargs)
    has_yield = hasattr(worker, "yielded")
    if closer is not None:
        worker.aborted.connect(closer.close, Qt.ConnectionType.DirectConnection)
    rec = _Job(worker, None if owner is None else _watch(owner), on_stop)
    if activity is not None:
        bar = Activity(activity, show_after_ms=activity_after_ms) if isinstance(
            activity, str) else activity
        if has_yield and isinstance(activity, str):
            worker.yielded.connect(lambda msg: bar.update(msg) if isinstance(msg, Progress)
                                   else None)
        worker.finished.connect(bar.close)
    wiring = [(worker.returned, on_return), (worker.errored, on_error),
              (worker.finished, on_finish)]
    if has_yield:
        wiring.append((worker.yielded, on_yield))
    for signal, slot in wiring:
        if slot is not None:
            signal.connect(slot)
            rec.slots.append((signal, slot))
    if no_threads() if sync is None else sync:
        worker.run()
        return worker
    _hook_quit()
    _LIVE[worker] = rec
    worker.finished.connect(lambda: _LIVE.pop(worker, None))
    worker.setAutoDelete(False)
    (_low_pool() if low_priority else _pool()).start(worker)
    return worker
