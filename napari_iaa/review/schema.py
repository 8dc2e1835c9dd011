"""The review store's schema: a list of migrations applied in order.

``PRAGMA user_version`` is the number of migrations a store has had. Migration ``k`` (1-based)
is ``MIGRATIONS[k - 1]``: a function that gets an executor (``execute``, ``executescript``)
inside one transaction and changes the schema from version ``k - 1`` to ``k``. A new version is one function appended
to :data:`MIGRATIONS`; existing ones are never edited, so every store, however old, is
brought up to date by running the ones it has not had.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STATUSES",
    "current_version",
    "migrate",
    "schema_version",
]

#: A case's review status; ``unreviewed`` is the default of every case.
STATUSES = ("unreviewed", "accepted", "reannotate", "excluded")


class _Executor(Protocol):
    """What a migration gets: ``execute`` and ``executescript`` inside one transaction."""

    def execute(self, sql: str, params: tuple | dict = ...) -> sqlite3.Cursor: ...

    def executescript(self, script: str) -> None: ...


Migration = Callable[[_Executor], None]


def _v1_initial(conn: _Executor) -> None:
    """Version 1: current state per case and per mask, edit versions, adjudication, history."""
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    conn.executescript(
        f"""
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE cases (
            case_id TEXT PRIMARY KEY,
            status TEXT NOT NULL DEFAULT 'unreviewed' CHECK (status IN ({statuses})),
            reviewer TEXT,
            comment TEXT,
            updated TEXT NOT NULL
        );
        CREATE TABLE mask_notes (
            case_id TEXT NOT NULL REFERENCES cases(case_id),
            mask_id TEXT NOT NULL,
            note TEXT NOT NULL,
            reviewer TEXT,
            updated TEXT NOT NULL,
            PRIMARY KEY (case_id, mask_id)
        );
        CREATE TABLE edit_versions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            case_id TEXT NOT NULL REFERENCES cases(case_id),
            mask_id TEXT NOT NULL,
            file TEXT NOT NULL,
            reviewer TEXT,
            created TEXT NOT NULL,
            is_current INTEGER NOT NULL DEFAULT 0 CHECK (is_current IN (0, 1))
        );
        CREATE INDEX edit_versions_mask ON edit_versions (case_id, mask_id);
        CREATE UNIQUE INDEX edit_versions_one_current
            ON edit_versions (case_id, mask_id) WHERE is_current = 1;
        CREATE TABLE adjudicated (
            case_id TEXT PRIMARY KEY REFERENCES cases(case_id),
            method TEXT NOT NULL,
            file TEXT NOT NULL,
            reviewer TEXT,
            created TEXT NOT NULL
        );
        CREATE TABLE history (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time TEXT NOT NULL,
            reviewer TEXT,
            case_id TEXT,
            kind TEXT NOT NULL,
            old TEXT,
            new TEXT
        );
        CREATE INDEX history_case ON history (case_id);
        CREATE TRIGGER history_no_update BEFORE UPDATE ON history
            BEGIN SELECT RAISE(ABORT, 'the review history is append-only'); END;
        CREATE TRIGGER history_no_delete BEFORE DELETE ON history
            BEGIN SELECT RAISE(ABORT, 'the review history is append-only'); END;
        """
    )


#: Migration ``k`` is ``MIGRATIONS[k - 1]``; append, never edit.
MIGRATIONS: list[Migration] = [_v1_initial]
#: The schema version this napari-iaa writes.
SCHEMA_VERSION = len(MIGRATIONS)


def current_version() -> int:
    """The schema version this napari-iaa writes: the number of migrations it knows.

    Returns
    -------
    int
        ``len(MIGRATIONS)``.
    """
    return len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The store's ``PRAGMA user_version`` (0 for a new, empty file).

    Parameters
    ----------
    conn : sqlite3.Connection
        An open connection.

    Returns
    -------
    int
        The number of migrations the store has had.
    """
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: list[Migration] | None = None) -> int:
    """Apply the migrations a store has not had yet, each in its own transaction.

    ``executescript`` commits on its own, so each step runs inside an explicit
    ``BEGIN EXCLUSIVE`` ... ``COMMIT`` that also sets ``user_version``: a step is applied
    completely or not at all, and by one connection only (a second one opening the store
    at the same moment waits, then finds it done); readers see the tables and the version
    together or neither.

    Parameters
    ----------
    conn : sqlite3.Connection
        Open in autocommit mode (``isolation_level=None``).
    migrations : list of callables, optional
        Default :data:`MIGRATIONS` (tests pass a shorter list to build an old store).

    Returns
    -------
    int
        The version the store has now.
    """
    steps = MIGRATIONS if migrations is None else migrations
    version = schema_version(conn)
    while version < len(steps):
        conn.execute("BEGIN EXCLUSIVE")
        try:
            version = schema_version(conn)  # another process may have migrated meanwhile
            if version < len(steps):
                _run_step(conn, steps[version])
                version += 1
                conn.execute(f"PRAGMA user_version = {version:d}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return version


def _run_step(conn: sqlite3.Connection, step: Migration) -> None:
    """Run one migration without letting ``executescript`` commit half of it."""
    step(_NoCommit(conn))


class _NoCommit:
    """A connection whose ``executescript`` stays inside the open transaction.

    ``sqlite3.Connection.executescript`` would COMMIT first; this one runs the script
    statement by statement.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        """Run one statement."""
        return self._conn.execute(sql, params)

    def executescript(self, script: str) -> None:
        """Run each complete statement of ``script`` in the open transaction."""
        statement = ""
        for line in script.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                self._conn.execute(statement)
                statement = ""
        if statement.strip():
            self._conn.execute(statement)
