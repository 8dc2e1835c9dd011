"""Opening a review store's SQLite file safely, and waiting out other writers.

Every connection runs in autocommit mode with explicit transactions, WAL journaling,
``synchronous = FULL`` (a committed change survives a killed process and a power cut),
foreign keys on and a busy timeout. On top of SQLite's own busy handler, :func:`retry`
tries a locked operation again with growing pauses while other writers make progress,
so concurrent writers lose nothing; only a lock held for ``lock_timeout`` seconds with
nothing committed meanwhile is an error ("locked for good").
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

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "MAX_WAIT_FACTOR",
    "PROBLEM_KINDS",
    "REPLACEABLE_KINDS",
    "SchemaBeingCreated",
    "StoreProblem",
    "connect",
    "file_token",
    "is_busy",
    "memory_store",
    "retry",
    "translate",
]

#: Seconds a locked store is waited for before it counts as locked for good.
DEFAULT_LOCK_TIMEOUT = 30.0
_BUSY_MS = 2000  # SQLite's own busy handler, per attempt (at most)

T = TypeVar("T")


class SchemaBeingCreated(sqlite3.OperationalError):
    """A store whose tables are there but whose schema version is not yet (being created).

    Migrations commit their tables and ``user_version`` together, so a consistent read
    never sees this from another napari-iaa; it is treated as a lock (waited out by
    :func:`retry`), not as a foreign file.
    """


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "database is locked" / "busy" (worth trying again).

    Also a schema being created (:class:`SchemaBeingCreated`) and WAL's rare "locking
    protocol" error under heavy load, both of which go away when tried again.

    Parameters
    ----------
    exc : BaseException
        An exception raised by :mod:`sqlite3`.

    Returns
    -------
    bool
        True for a lock held by another connection.
    """
    if isinstance(exc, SchemaBeingCreated):
        return True
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text or "locking protocol" in text)


#: However much others write, one operation waits at most this many lock timeouts.
MAX_WAIT_FACTOR = 10


def retry(
    fn: Callable[[], T], lock_timeout: float, progress: Callable[[], object] | None = None
) -> T:
    """Call ``fn`` until it does not fail with a lock.

    It gives up when the lock has been waited for ``lock_timeout`` seconds with no sign
    that the store is moving: with ``progress`` (a token that changes whenever another
    connection commits, e.g. ``PRAGMA data_version``) the clock starts again each time
    someone else commits, so a writer queued behind many busy ones (several windows and
    scripts on a loaded machine) keeps its place instead of failing; only a lock held
    with nothing committed for ``lock_timeout`` seconds (a program stuck in a
    transaction) is "locked for good". Never longer than :data:`MAX_WAIT_FACTOR` times
    ``lock_timeout`` in all. Pauses between attempts grow (with jitter) up to 0.25 s.

    Parameters
    ----------
    fn : callable
        One complete attempt (a whole transaction, rolled back on failure).
    lock_timeout : float
        Seconds without progress after which the last lock error is raised.
    progress : callable, optional
        Returns a token that changes when the store changes (read between attempts;
        a failure to read it counts as no progress).

    Returns
    -------
    object
        What ``fn`` returned.
    """
    start = time.monotonic()
    limit = max(0.0, lock_timeout)
    deadline, hard = start + limit, start + limit * MAX_WAIT_FACTOR
    pause = 0.005
    token = _token(progress)
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            now = time.monotonic()
            seen = _token(progress)
            if seen is not None and seen != token:  # someone committed: the queue moves
                token, deadline = seen, min(now + limit, hard)
            if now >= deadline:
                raise
        time.sleep(pause * (1.0 + random.random()))
        pause = min(pause * 2.0, 0.25)


def file_token(path: Path) -> tuple[int, ...]:
    """Size and modification time of a store's file and of its WAL.

    They change with every commit: a sign of progress for :func:`retry` where no
    connection can be kept (while opening).

    Parameters
    ----------
    path : Path
        The store's file.

    Returns
    -------
    tuple of int
        Zeros for files that are not there.
    """
    out: list[int] = []
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = p.stat()
        except OSError:
            out += [0, 0]
            continue
        out += [st.st_size, st.st_mtime_ns]
    return tuple(out)


def _token(progress: Callable[[], object] | None) -> object:
    if progress is None:
        return None
    try:
        return progress()
    except (sqlite3.Error, OSError):  # busy even for reading: no sign of progress
        return None


class StoreProblem(ReviewStoreError):
    """A store that cannot be used for writing, and what kind of problem it has.

    ``kind`` is one of :data:`PROBLEM_KINDS`: ``corrupt`` (damaged, not an SQLite file, or
    an incomplete schema), ``locked`` (held by another program longer than the lock
    timeout), ``foreign`` (an SQLite file that is not a review store), ``newer`` (written
    by a newer napari-iaa), ``unwritable`` (no permission) or ``other``. A new store can
    help with the first three (see :func:`~napari_iaa.review.base.set_aside`).
    """

    def __init__(self, message: str, kind: str = "other") -> None:
        super().__init__(message)
        self.kind = kind if kind in PROBLEM_KINDS else "other"


#: What can be wrong with a store (:attr:`StoreProblem.kind`).
PROBLEM_KINDS = ("corrupt", "locked", "foreign", "newer", "unwritable", "other")
#: The kinds of problem a new store (the old one set aside) solves.
REPLACEABLE_KINDS = ("corrupt", "locked", "foreign")


def translate(exc: sqlite3.Error, path: Path, lock_timeout: float) -> StoreProblem:
    """A :class:`StoreProblem` that names the file and says what is wrong with it.

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
    StoreProblem
        To be raised ``from exc``.
    """
    text = str(exc)
    low = text.lower()
    if isinstance(exc, SchemaBeingCreated):
        return StoreProblem(
            f"{path}: the review store's schema is incomplete ({text}); it was not made by "
            "napari-iaa or its creation was cut off; the review can go on read-only, or a "
            "new store can be started", "corrupt")
    if is_busy(exc):
        return StoreProblem(
            f"{path}: the review store is locked by another program "
            f"(waited {lock_timeout:g} s); the review can go on read-only", "locked")
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return StoreProblem(
            f"{path}: the review store is corrupt or not an SQLite file ({text}); "
            "the review can go on read-only, or a new store can be started", "corrupt")
    if "readonly" in low or "read-only" in low or "unable to open" in low:
        return StoreProblem(
            f"{path}: the review store cannot be opened for writing ({text})", "unwritable")
    return StoreProblem(f"{path}: review store error: {text}")


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


#: The tables a napari-iaa store has (any version); a file with only some of these and no
#: schema version is a store being created, not a foreign file.
_OWN_TABLES = frozenset(
    {"meta", "cases", "mask_notes", "edit_versions", "adjudicated", "history", "sqlite_sequence"})


def _schema_snapshot(conn: sqlite3.Connection) -> tuple[int, set[str]]:
    """The schema version and the tables, read in one transaction.

    One consistent view: read separately, another process's migration could commit in
    between (version 0 read before it, its tables after).
    """
    conn.execute("BEGIN")
    try:
        version = schema_version(conn)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
    return version, tables


def _check_integrity(conn: sqlite3.Connection, path: Path) -> int:
    """The store's schema version, after checking the file is a sound napari-iaa store."""
    result = conn.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise sqlite3.DatabaseError(f"database disk image is malformed: {result}")
    version, tables = _schema_snapshot(conn)
    if version == 0 and tables and tables <= _OWN_TABLES:
        raise SchemaBeingCreated(f"tables {', '.join(sorted(tables))} but no schema version")
    if version == 0 and tables:
        raise StoreProblem(
            f"{path}: an SQLite file but not a napari-iaa review store "
            f"(tables {', '.join(sorted(tables))}); the review can go on read-only", "foreign")
    if version >= 1 and "cases" not in tables:
        raise StoreProblem(f"{path}: not a napari-iaa review store (no cases table)", "foreign")
    return version


def _open_writable(path: Path, lock_timeout: float) -> sqlite3.Connection:
    conn = _raw_connect(path, False, lock_timeout)
    try:
        version = _check_integrity(conn, path)
        if version > current_version():
            raise StoreProblem(
                f"{path}: the review store was written by a newer napari-iaa (schema "
                f"v{version}, this one knows v{current_version()}); it can be read but not "
                "written", "newer")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreProblem(f"{path}: the review store cannot use WAL mode (got {mode})")
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
    StoreProblem
        The file is corrupt, not a store, written by a newer version, or locked for good
        (the message names it; ``kind`` says which).
    """
    opener = _open_read_only if read_only else _open_writable
    try:
        return retry(lambda: opener(path, lock_timeout), lock_timeout,
                     progress=lambda: file_token(path))
    except sqlite3.Error as exc:
        raise translate(exc, path, lock_timeout) from exc


def memory_store() -> sqlite3.Connection:
    """An empty store in memory with the current schema (the read-only fallback's)."""
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    migrate(conn)
    return conn
