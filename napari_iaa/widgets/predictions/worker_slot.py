"""One running job of a kind (the case prediction, the quality scoring, the triage)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QObject

from napari_iaa.widgets._common import start_worker

__all__ = ["WorkerSlot"]


class WorkerSlot(QObject):
    """Holds the worker of one kind of job while it runs (``worker`` is None when idle).

    A child of the widget that starts the jobs: when the widget is deleted, a job that
    finishes later calls nothing of it. :func:`~napari_iaa.widgets._common.start_worker`
    may run the job synchronously (``NAPARI_IAA_NO_THREADS``), finishing it before it
    returns the worker; the slot is then idle again, as after a threaded run.
    """

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.worker: Any = None
        self._starting: object | None = None  # stands for the worker while it starts
        self._on_finish: Callable[[], None] | None = None

    @property
    def running(self) -> bool:
        """True while a job started here has not finished."""
        return self.worker is not None

    def start(self, job: Callable[..., Any], *args: Any,
              on_finish: Callable[[], None] | None = None, **kwargs: Any) -> None:
        """``start_worker(job, *args, **kwargs)``; ``on_finish`` runs once the slot is idle."""
        self.worker = self._starting = object()
        self._on_finish = on_finish
        # the tab owns its jobs: they stop when the dock closes, and the slot is idle again
        kwargs.setdefault("owner", self.parent())
        kwargs.setdefault("on_stop", self._stopped)
        worker = start_worker(job, *args, on_finish=self._finished, **kwargs)
        if self.worker is self._starting:
            self.worker = worker
        self._starting = None

    def _stopped(self) -> None:
        self.worker, self._on_finish = None, None

    def _finished(self) -> None:
        self.worker = None
        on_finish, self._on_finish = self._on_finish, None
        if on_finish is not None:
            on_finish()

    def quit(self) -> None:
        """Ask the running worker to stop (at its next yield)."""
        if self.worker is not None and self.worker is not self._starting:
            self.worker.quit()
