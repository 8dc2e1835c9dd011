"""Opening a review store's SQLite file safely, and waiting out other writers.

Every connection runs in autocommit mode with explicit transactions, WAL journaling,
``synchronous = FULL`` (a committed change survives a killed process and a power cut),
foreign keys on and a busy timeout. On top of SQLite's own busy handler, :func:`retry`
tries a locked operation again with growing pauses until ``lock_timeout`` seconds have
passed, so concurrent writers lose nothing; only a lock held longer than that is an error.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from napari_iaa.errors import ReviewStoreError
from napari_iaa.review.schema import current_version, migrate, schema_version

__all__ = ["DEFAULT_LOCK_TIMEOUT", "connect", "is_busy", "memory_store", "retry", "translate"]

#: Seconds a locked store is waited for before it counts as locked for good.
DEFAULT_LOCK_TIMEOUT = 30.0
_BUSY_MS = 2000  # SQLite's own busy handler, per attempt (at most)

T = TypeVar("T")


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "database is locked" / "busy" (worth trying again).

    Parameters
    ----------
    exc : BaseException
        An exception raised by :mod:`sqlite3`.

    Returns
    -------
    bool
        True for a lock held by another connection.
    """
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def retry(fn: Callable[[], T], lock_timeout: float) -> T:
    """Call ``fn`` until it does not fail with a lock, for at most ``lock_timeout`` seconds.

    Parameters
    ----------
    fn : callable
        One complete attempt (a whole transaction, rolled back on failure).
    lock_timeout : float
        Seconds to keep trying; the last lock error is raised after that.

    Returns
    -------
    object
        What ``fn`` returned.
    """
    deadline = time.monotonic() + max(0.0, lock_timeout)
    pause = 0.005
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause * (1.0 + random.random()))
        pause = min(pause * 2.0, 0.25)


def translate(exc: sqlite3.Error, path: Path, lock_timeout: float) -> ReviewStoreError:
    """A :class:`ReviewStoreError` that names the file and says what is wrong with it.

    Parameters
    ----------
    exc : sqlite3.Error
        What SQLite raised.
    path : Path
        The store's file.
    lock_timeout : float
        How long a lock was waited for (for the message).

    Returns
    -------
    ReviewStoreError
        To be raised ``from exc``.
    """
    text = str(exc)
    low = text.lower()
    if is_busy(exc):
        return ReviewStoreError(
            f"{path}: the review store is locked by another program "
            f"(waited {lock_timeout:g} s); the review can go on read-only"
        )
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return ReviewStoreError(
            f"{path}: the review store is corrupt or not an SQLite file ({text}); "
            "the review can go on read-only, or a new store can be started"
        )
    if "readonly" in low or "read-only" in low or "unable to open" in low:
        return ReviewStoreError(f"{path}: the review store cannot be opened for writing ({text})")
    return ReviewStoreError(f"{path}: review store error: {text}")


def _raw_connect(path: Path, read_only: bool, lock_timeout: float) -> sqlite3.Connection:
    if read_only:
        target, uri = f"{path.resolve().as_uri()}?mode=ro", True
    else:
        target, uri = str(path), False
    busy_ms = int(min(_BUSY_MS, max(lock_timeout, 0.0) * 1000))
    conn = sqlite3.connect(
        target, uri=uri, timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {busy_ms:d}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _check_integrity(conn: sqlite3.Connection, path: Path) -> int:
    """The store's schema version, after checking the file is a sound napari-iaa store."""
    result = conn.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise sqlite3.DatabaseError(f"database disk image is malformed: {result}")
    version = schema_version(conn)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version == 0 and tables:
        raise ReviewStoreError(
            f"{path}: an SQLite file but not a napari-iaa review store "
            f"(tables {', '.join(sorted(tables))}); the review can go on read-only"
        )
    if version >= 1 and "cases" not in tables:
        raise ReviewStoreError(f"{path}: not a napari-iaa review store (no cases table)")
    return version


def _open_writable(path: Path, lock_timeout: float) -> sqlite3.Connection:
    conn = _raw_connect(path, False, lock_timeout)
    try:
        version = _check_integrity(conn, path)
        if version > current_version():
            raise ReviewStoreError(
                f"{path}: the review store was written by a newer napari-iaa (schema "
                f"v{version}, this one knows v{current_version()}); it can be read but not written"
            )
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise ReviewStoreError(f"{path}: the review store cannot use WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _open_read_only(path: Path, lock_timeout: float) -> sqlite3.Connection:
    """A read-only connection; an older schema is migrated in a copy in memory."""
    if not path.is_file():
        return memory_store()
    conn = _raw_connect(path, True, lock_timeout)
    try:
        version = _check_integrity(conn, path)
        if version >= current_version():
            return conn
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.backup(memory)
    except BaseException:
        conn.close()
        raise
    conn.close()
    migrate(memory)
    return memory


def connect(path: Path, read_only: bool, lock_timeout: float) -> sqlite3.Connection:
    """Open (and create or migrate) a store's file.

    Parameters
    ----------
    path : Path
        The SQLite file; its folder must exist for a writable store.
    read_only : bool
        Open without writing anything (a missing file gives an empty store in memory; an
        older schema is migrated in memory, the file stays as it is).
    lock_timeout : float
        Seconds to wait for other programs' locks.

    Returns
    -------
    sqlite3.Connection
        In autocommit mode, usable from any thread (the caller serialises access).

    Raises
    ------
    ReviewStoreError
        The file is corrupt, not a store, written by a newer version, or locked for good
        (the message names it).
    """
    opener = _open_read_only if read_only else _open_writable
    try:
        return retry(lambda: opener(path, lock_timeout), lock_timeout)
    except sqlite3.Error as exc:
        raise translate(exc, path, lock_timeout) from exc


def memory_store() -> sqlite3.Connection:
    """An empty store in memory with the current schema (the read-only fallback's)."""
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    migrate(conn)
    return conn
