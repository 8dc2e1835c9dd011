"""The review store's plumbing: opening (with a read-only fallback), transactions, history.

:class:`~napari_iaa.review.store.ReviewStore` adds the verdict, note, edit and
adjudication API on top of :class:`StoreBase`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from napari_iaa.errors import ReviewStoreError
from napari_iaa.review.connection import (
    DEFAULT_LOCK_TIMEOUT,
    REPLACEABLE_KINDS,
    StoreProblem,
    connect,
    memory_store,
    retry,
    translate,
)
from napari_iaa.review.location import default_reviewer, store_location, utc_now

__all__ = ["StoreBase", "aside_path", "set_aside"]

T = TypeVar("T")
S = TypeVar("S", bound="StoreBase")


class StoreBase:
    """A data set's review store (SQLite).

    Parameters
    ----------
    path : path-like
        The store's file (created with its folder when missing, unless ``read_only``).
    dataset_root : path-like, optional
        The data set's root: edit and adjudicated files are recorded relative to it.
        Default: the folder above ``.napari-iaa`` when the store lies there, else none
        (paths are recorded as given).
    read_only : bool
        Read without writing anything; every write raises :class:`ReviewStoreError`.
    reviewer : str, optional
        Recorded with every change that names nobody (default: the OS user name).
    lock_timeout : float
        Seconds to wait for other writers before a write fails.

    Raises
    ------
    ReviewStoreError
        The file is corrupt, not a store, newer than this napari-iaa, or locked for good;
        :meth:`open` turns this into a read-only store instead.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        dataset_root: str | os.PathLike | None = None,
        read_only: bool = False,
        reviewer: str | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        *,
        _connection: sqlite3.Connection | None = None,
    ) -> None:
        self.path = Path(path)
        if dataset_root is None and self.path.parent.name == ".napari-iaa":
            dataset_root = self.path.parent.parent
        # absolute, so that recorded files keep their meaning when the working folder changes
        self.dataset_root = (Path(dataset_root).expanduser().absolute()
                             if dataset_root is not None else None)
        self.read_only = bool(read_only)
        self.reviewer = reviewer or default_reviewer()
        self.lock_timeout = float(lock_timeout)
        #: Why the store is read-only when it was meant to be writable (else None).
        self.problem: str | None = None
        #: What kind of problem (:data:`~napari_iaa.review.connection.PROBLEM_KINDS`).
        self.problem_kind: str | None = None
        #: Why the store is where it is (set by :meth:`open`).
        self.reason = ""
        self._lock = threading.RLock()
        if _connection is None and not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = _connection or connect(self.path, self.read_only, self.lock_timeout)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls: type[S],
        dataset_root: str | os.PathLike,
        read_only: bool = False,
        reviewer: str | None = None,
        fallback: bool = True,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> S:
        """The store of a data set, where :func:`store_location` says it is.

        Parameters
        ----------
        dataset_root : path-like
            The data set's root folder (:attr:`napari_iaa.data.Dataset.root`).
        read_only : bool
            Open without writing.
        reviewer : str, optional
            Default reviewer of changes (the OS user name when None).
        fallback : bool
            When the store cannot be opened (corrupt, locked for good, newer schema),
            return a read-only store instead of raising: the same file read-only if it
            can be read, else an empty one in memory. :attr:`problem` says why.
        lock_timeout : float
            Seconds to wait for other writers.

        Returns
        -------
        ReviewStore
            With :attr:`reason` saying where it is and why.
        """
        root = Path(dataset_root)
        path, reason = store_location(root)
        base = root.parent if root.is_file() else root
        try:
            store = cls(path, base, read_only, reviewer, lock_timeout)
        except ReviewStoreError as exc:
            if not fallback:
                raise
            kind = exc.kind if isinstance(exc, StoreProblem) else "other"
            store = cls._fallback(path, base, reviewer, lock_timeout, str(exc), kind)
        store.reason = reason
        return store

    @classmethod
    def _fallback(
        cls: type[S], path: Path, root: Path, reviewer: str | None, lock_timeout: float,
        problem: str, kind: str,
    ) -> S:
        """The same file read-only if it can be read, else an empty read-only store."""
        try:
            store = cls(path, root, True, reviewer, min(lock_timeout, 2.0))
        except ReviewStoreError:
            store = cls(path, root, True, reviewer, lock_timeout, _connection=memory_store())
        store.problem = problem
        store.problem_kind = kind
        return store

    @property
    def replaceable(self) -> bool:
        """Whether a new store would help.

        True when this one could not be opened for writing because it is corrupt, locked
        for good or not a review store (see :func:`set_aside`).
        """
        return self.problem is not None and self.problem_kind in REPLACEABLE_KINDS

    def close(self) -> None:
        """Close the connection (the store's data is already on disk)."""
        with self._lock:
            self._conn.close()

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"ReviewStore({str(self.path)!r}, {mode})"

    # ------------------------------------------------------------------ plumbing
    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                return retry(lambda: fn(self._conn), self.lock_timeout)
            except sqlite3.Error as exc:
                raise translate(exc, self.path, self.lock_timeout) from exc

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one ``BEGIN IMMEDIATE`` transaction, retried while locked."""
        if self.read_only:
            why = f" ({self.problem})" if self.problem else ""
            raise ReviewStoreError(f"{self.path}: the review store is open read-only{why}")
        conn = self._conn

        def attempt() -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return out

        with self._lock:
            try:
                return retry(attempt, self.lock_timeout, progress=self._data_version)
            except sqlite3.Error as exc:
                raise translate(exc, self.path, self.lock_timeout) from exc

    def _data_version(self) -> int:
        """Changes whenever another connection commits (:func:`retry`'s sign of progress)."""
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def _log(
        self, conn: sqlite3.Connection, when: str, reviewer: str, case_id: str | None,
        kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None,
    ) -> None:
        """Append one history row (in the caller's transaction)."""
        conn.execute(
            "INSERT INTO history (time, reviewer, case_id, kind, old, new) VALUES (?,?,?,?,?,?)",
            (when, reviewer, case_id, kind, _dump(old), _dump(new)),
        )

    def _file(self, path: str | os.PathLike) -> str:
        """A file as recorded: relative to the data-set root inside it, else absolute.

        A relative ``path`` is a path from the working folder, as everywhere else (a data
        set opened as ``data`` gives edits at ``data/masks/...``).
        """
        p = Path(path).expanduser().resolve()
        if self.dataset_root is not None:
            try:
                return p.relative_to(self.dataset_root.resolve()).as_posix()
            except ValueError:
                pass
        return p.as_posix()

    def _abs(self, file: str) -> Path:
        p = Path(file)
        if p.is_absolute() or self.dataset_root is None:
            return p
        return self.dataset_root / p


def _dump(value: dict[str, Any] | None) -> str | None:
    """A history cell: the record as JSON (the absolute ``path`` left out, ``file`` kept)."""
    if value is None:
        return None
    return json.dumps({k: v for k, v in value.items() if k != "path"}, sort_keys=True, default=str)


def aside_path(path: str | os.PathLike) -> Path:
    """The name :func:`set_aside` gives a store now: ``<name>.broken-<UTC time>``.

    Parameters
    ----------
    path : path-like
        The store's file.

    Returns
    -------
    Path
        Beside it; a name not taken yet.
    """
    src = Path(path)
    stamp = utc_now().replace(":", "").replace("-", "").replace(".", "")
    dest = src.with_name(f"{src.name}.broken-{stamp}")
    k = 1
    while dest.exists():
        k += 1
        dest = src.with_name(f"{src.name}.broken-{stamp}-{k}")
    return dest


def set_aside(path: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """Move a store that cannot be used out of the way, so a new one can be started.

    The file (with its ``-wal`` and ``-shm`` companions) is renamed to
    ``<name>.broken-<UTC time>`` (:func:`aside_path`), kept for inspection; nothing is
    deleted.

    Parameters
    ----------
    path : path-like
        The store's file (:attr:`StoreBase.path`); close every connection to it first.
    dest : path-like, optional
        The new name (default: :func:`aside_path`).

    Returns
    -------
    Path
        The new name of the file.
    """
    src = Path(path)
    dest = Path(dest) if dest is not None else aside_path(src)
    for suffix in ("-wal", "-shm"):
        companion = src.with_name(src.name + suffix)
        if companion.exists():
            os.replace(companion, dest.with_name(dest.name + suffix))
    os.replace(src, dest)
    return dest
