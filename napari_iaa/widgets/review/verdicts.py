"""Verdicts in the review dock: the data set's review store, verdicts written and shown.

The store (:class:`napari_iaa.review.ReviewStore`) opens in a worker when a data set
opens: the dock's one opening of it. Every other part of the dock (edits, edit history,
mask notes, the final mask) uses this store once it is open (:meth:`Verdicts.when_open`),
never a connection of its own. A store that cannot be used (corrupt, locked for good,
not a store) opens read-only, says why, and offers a new store (the old file set aside
and kept). Verdicts are written in a worker too, one after the other in the order given (a
write may wait for another window's). The case tab shows the open case's verdict
(:class:`~.verdict_box.VerdictBox`); the data-set table gets the verdicts of every case
when the store opens, after each write, and on its Refresh button (another window's or a
script's verdicts appear then).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QMessageBox

from napari_iaa.review import ReviewStore, Verdict, aside_path, set_aside
from napari_iaa.widgets._common import notify_error, notify_info, start_worker

#: the review dock (:class:`~napari_iaa.widgets.review.ReviewWidget`); not imported: it
#: imports this module
ReviewWidget = Any

__all__ = ["Verdicts"]


def _open_store(root: Any, reviewer: str) -> ReviewStore:
    return ReviewStore.open(root, reviewer=reviewer)


def _read_verdicts(store: ReviewStore, ids: list[str]) -> tuple[ReviewStore, list[Verdict]]:
    return store, store.verdicts(ids)


class Verdicts(QObject):
    """The dock's review store and verdicts.

    Signals
    -------
    store_opened(object) : the data set's store is open (the :class:`ReviewStore`).
    store_replaced(str) : a new store was started; the old one is kept under this name.

    Attributes
    ----------
    new_store_policy : str
        What "start a new review store" does: ``"ask"`` (a message box, default),
        ``"yes"`` or ``"no"`` (tests and scripts set it).
    verdict_saved(object) : a verdict was written (the :class:`Verdict`).
    table_refreshed() : the data-set table shows the store's verdicts.
    """

    store_opened = Signal(object)
    store_replaced = Signal(str)
    verdict_saved = Signal(object)
    table_refreshed = Signal()

    def __init__(self, dock: ReviewWidget) -> None:
        super().__init__(dock)
        self.dock = dock
        self.box = dock.verdict_box
        self.store: ReviewStore | None = None
        self._opening = False
        self._root: Any = None
        #: callbacks waiting for the store that is opening (see :meth:`when_open`)
        self._waiting: list[Callable[[ReviewStore | None], None]] = []
        self.new_store_policy = "ask"
        self._queue: deque[tuple[ReviewStore, str, str, str | None]] = deque()
        self._writing = False
        self._gen = 0
        self._gone = False  # the dock was deleted: results arriving later touch no widget
        self.box.verdict_requested.connect(lambda s, c: self.set_verdict(s, c))
        self.box.comment_requested.connect(self.set_comment)
        dock.dataset_panel.review_refresh_requested.connect(self.refresh_table)
        self.box.new_store_requested.connect(self.start_new_store)

    # -- the store ---------------------------------------------------------------------
    def open_store(self, root: Any) -> None:
        """Open the store of the data set at ``root`` (in a worker); the old one closes."""
        self.close()
        self._run_waiting()  # writes meant for the store being replaced are not made
        self._gen += 1
        gen = self._gen
        self._root, self._opening = root, True
        self.box.show_store("opening the review store…")
        self.box.set_writable(False, "the review store is opening")
        self.box.offer_new_store(False)
        start_worker(
            _open_store, root, self.box.reviewer,
            on_return=lambda store: self._on_opened(gen, store),
            on_error=lambda exc: self._on_open_error(gen, exc),
        )

    @property
    def opening(self) -> bool:
        """Whether the data set's store is being opened now."""
        return self._opening

    def when_open(self, callback: Callable[[ReviewStore | None], None]) -> None:
        """Call ``callback(store)`` with the dock's store: now when it is open, else as soon
        as the opening finishes (``None`` when it failed or no data set is open).

        The one way the dock's panels get a store to write to: they never open their own
        (a second connection racing the store's creation).
        """
        if self.store is not None or not self._opening:
            callback(self.store)
        else:
            self._waiting.append(callback)

    def _run_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        for fn in waiting:
            with contextlib.suppress(RuntimeError):  # its widget was deleted meanwhile
                fn(self.store)

    def _on_opened(self, gen: int, store: ReviewStore) -> None:
        if gen != self._gen:  # another data set was opened meanwhile, or the dock is gone
            store.close()
            return
        self._opening = False
        self.store = store
        if store.problem:
            msg = f"review store read-only: {store.problem}"
            self.box.show_store(msg, problem=True)
            self.box.set_writable(False, msg)
            self.box.offer_new_store(store.replaceable, aside_path(store.path).name)
            notify_error(msg)
        elif store.read_only:
            self.box.show_store(f"review store read-only: {store.path}")
            self.box.set_writable(False, "the review store is read-only")
        else:
            self.box.show_store(f"review store {store.reason}: {store.path}")
            self.box.set_writable(True, "")
        self.show_current()
        self.refresh_table()
        self._run_waiting()
        self.store_opened.emit(store)

    def _on_open_error(self, gen: int, exc: BaseException) -> None:
        if gen == self._gen:
            self._opening = False
            msg = f"no review store: {exc}"
            self.box.show_store(msg, problem=True)
            self.box.set_writable(False, msg)
            notify_error(msg)
            self._run_waiting()

    # -- a new store in place of one that cannot be used --------------------------------
    def start_new_store(self) -> Path | None:
        """Set the unusable store aside (kept, renamed) and start a new one; returns the
        old file's new name (None: not done, e.g. declined)."""
        store, root = self.store, self._root
        if store is None or root is None or not store.replaceable or self.busy:
            return None
        kept = aside_path(store.path)
        text = (f"{store.problem}\n\nStart a new review store at {store.path}?\n"
                f"The old one is kept as {kept.name}; nothing is deleted.")
        if not self._confirm_new_store(text):
            return None
        path = store.path
        self.close()
        try:
            kept = set_aside(path, kept)
        except OSError as exc:
            notify_error(f"{path}: cannot set the review store aside ({exc})")
            self.open_store(root)
            return None
        notify_info(f"started a new review store {path}; the old one is kept as {kept}")
        self.open_store(root)
        self.store_replaced.emit(str(kept))
        return kept

    def _confirm_new_store(self, text: str) -> bool:
        policy = self.new_store_policy
        if policy != "ask":
            return policy == "yes"
        answer = QMessageBox.question(
            self.dock, "New review store", text, QMessageBox.Yes | QMessageBox.No,
            QMessageBox.No)
        return answer == QMessageBox.Yes

    def shutdown(self) -> None:
        """The dock is gone: drop results still on their way, close the store, touch no
        widget (Qt has deleted them)."""
        self._gen += 1
        self._gone = True
        self._opening, self._waiting = False, []
        store, self.store = self.store, None
        if store is not None and not any(s is store for s, *_ in self._queue):
            with contextlib.suppress(Exception):
                store.close()

    def close(self) -> None:
        """Close the store (queued writes still go to it)."""
        store, self.store = self.store, None
        if store is not None and not any(s is store for s, *_ in self._queue):
            with contextlib.suppress(Exception):
                store.close()
        self.box.show_verdict(None)

    @property
    def writable(self) -> bool:
        """Whether verdicts can be written now."""
        return self.store is not None and not self.store.read_only

    # -- writing -----------------------------------------------------------------------
    def set_verdict(self, status: str, comment: str | None = None,
                    case_id: str | None = None) -> bool:
        """Write a verdict of the open case (or ``case_id``); False when it cannot be."""
        cid = case_id or self.dock.case_id
        if cid is None or self.store is None:
            notify_error("open a data set and a case first")
            return False
        if self.store.read_only:
            notify_error(f"{self.store.path}: the review store is read-only; verdict not saved")
            return False
        if comment is None and cid == self.dock.case_id:
            comment = self.box.comment_edit.text()
        self._queue.append((self.store, cid, status, comment))
        if cid == self.dock.case_id:
            old = self.store.verdict(cid)
            self.box.show_verdict(Verdict(cid, status, self.box.reviewer, comment, old.updated),
                                  pending=True)
        self._write_next()
        return True

    def set_comment(self, comment: str) -> bool:
        """Save the open case's comment, keeping its status."""
        if self.store is None or self.dock.case_id is None:
            return False
        status = self.store.verdict(self.dock.case_id).status
        return self.set_verdict(status, comment)

    def _write_next(self) -> None:
        if self._writing or not self._queue:
            return
        self._writing = True
        store, cid, status, comment = self._queue[0]
        start_worker(
            store.set_verdict, cid, status, self.box.reviewer, comment,
            on_return=self._on_written, on_error=self._on_write_error,
            on_finish=self._on_write_finished,
        )

    def _on_written(self, verdict: Verdict) -> None:
        if self._gone:
            return
        if verdict.case_id == self.dock.case_id:
            self.box.show_verdict(verdict)
        self.dock.dataset_panel.set_verdicts([verdict])
        self.verdict_saved.emit(verdict)

    def _on_write_error(self, exc: BaseException) -> None:
        cid = self._queue[0][1] if self._queue else "?"
        notify_error(f"case {cid}: verdict not saved ({exc})")
        if not self._gone and cid == self.dock.case_id:
            self.show_current()

    def _on_write_finished(self) -> None:
        store = self._queue.popleft()[0] if self._queue else None
        self._writing = False
        if store is not None and store is not self.store and not any(
                s is store for s, *_ in self._queue):
            with contextlib.suppress(Exception):
                store.close()  # a data set closed while its last verdict was written
        if not self._gone:
            self._write_next()

    @property
    def busy(self) -> bool:
        """Whether verdicts are still being written."""
        return self._writing or bool(self._queue)

    # -- reading -----------------------------------------------------------------------
    def show_current(self) -> None:
        """Show the open case's verdict (a read: no waiting for writers)."""
        cid = self.dock.case_id
        if self.store is None or cid is None:
            self.box.show_verdict(None)
            return
        try:
            self.box.show_verdict(self.store.verdict(cid))
        except Exception as exc:  # noqa: BLE001 - a broken store must not break the dock
            self.box.status_label.setText(f"cannot read the verdict: {exc}")

    def refresh_table(self) -> None:
        """Read every case's verdict (in a worker) into the data-set table."""
        store, ds = self.store, self.dock.dataset
        if store is None or ds is None:
            return
        start_worker(
            _read_verdicts, store, list(ds.ids),
            on_return=self._on_read,
            on_error=lambda exc: notify_error(f"cannot read the review store: {exc}"),
        )

    def _on_read(self, result: tuple[ReviewStore, list[Verdict]]) -> None:
        store, verdicts = result
        if store is not self.store:
            return
        self.dock.dataset_panel.set_verdicts(verdicts)
        self.show_current()
        self.table_refreshed.emit()
