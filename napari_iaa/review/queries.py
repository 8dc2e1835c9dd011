"""The review store's SQL, one small function per statement (no transactions here).

The callers (:class:`~napari_iaa.review.store.ReviewStore`) open the transaction and write
the history row; these functions only read and change the current state.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from napari_iaa.review.records import Adjudication, EditVersion, HistoryEntry, MaskNote, Verdict

__all__ = [
    "adjudicated_row",
    "all_verdicts",
    "current_edit_row",
    "edit_row",
    "edit_rows",
    "ensure_case",
    "history_rows",
    "insert_edit",
    "make_current",
    "mask_note_row",
    "mask_note_rows",
    "put_adjudicated",
    "put_mask_note",
    "upsert_case",
    "verdict_row",
]

_EDIT_COLUMNS = "id, case_id, mask_id, file, reviewer, created, is_current"


# ----------------------------------------------------------------------------- cases
def verdict_row(conn: sqlite3.Connection, case_id: str) -> Verdict | None:
    """The stored state of a case, or None."""
    row = conn.execute(
        "SELECT case_id, status, reviewer, comment, updated FROM cases WHERE case_id = ?",
        (case_id,),
    ).fetchone()
    return Verdict(*row) if row else None


def all_verdicts(conn: sqlite3.Connection) -> list[Verdict]:
    """Every stored case state, by case id."""
    rows = conn.execute(
        "SELECT case_id, status, reviewer, comment, updated FROM cases ORDER BY case_id"
    ).fetchall()
    return [Verdict(*r) for r in rows]


def upsert_case(conn: sqlite3.Connection, v: Verdict) -> None:
    """Write a case's state."""
    conn.execute(
        "INSERT INTO cases (case_id, status, reviewer, comment, updated) VALUES (?,?,?,?,?) "
        "ON CONFLICT (case_id) DO UPDATE SET status = excluded.status, "
        "reviewer = excluded.reviewer, comment = excluded.comment, updated = excluded.updated",
        (v.case_id, v.status, v.reviewer, v.comment, v.updated),
    )


def ensure_case(conn: sqlite3.Connection, case_id: str, when: str) -> None:
    """Make sure a case row exists (``unreviewed``) so notes and edits can refer to it."""
    conn.execute(
        "INSERT OR IGNORE INTO cases (case_id, status, updated) VALUES (?, 'unreviewed', ?)",
        (case_id, when),
    )


# ----------------------------------------------------------------------------- notes
def mask_note_row(conn: sqlite3.Connection, case_id: str, mask_id: str) -> MaskNote | None:
    """The note on one mask, or None."""
    row = conn.execute(
        "SELECT case_id, mask_id, note, reviewer, updated FROM mask_notes "
        "WHERE case_id = ? AND mask_id = ?",
        (case_id, mask_id),
    ).fetchone()
    return MaskNote(*row) if row else None


def mask_note_rows(conn: sqlite3.Connection, case_id: str) -> list[MaskNote]:
    """The notes on a case's masks, by mask id."""
    rows = conn.execute(
        "SELECT case_id, mask_id, note, reviewer, updated FROM mask_notes "
        "WHERE case_id = ? ORDER BY mask_id",
        (case_id,),
    ).fetchall()
    return [MaskNote(*r) for r in rows]


def all_mask_note_rows(conn: sqlite3.Connection) -> list[MaskNote]:
    """Every note on every mask, by case id then mask id."""
    rows = conn.execute(
        "SELECT case_id, mask_id, note, reviewer, updated FROM mask_notes "
        "ORDER BY case_id, mask_id"
    ).fetchall()
    return [MaskNote(*r) for r in rows]


def put_mask_note(
    conn: sqlite3.Connection, case_id: str, mask_id: str, note: MaskNote | None
) -> None:
    """Write (or with None delete) the note on one mask."""
    if note is None:
        conn.execute(
            "DELETE FROM mask_notes WHERE case_id = ? AND mask_id = ?", (case_id, mask_id)
        )
        return
    conn.execute(
        "INSERT INTO mask_notes (case_id, mask_id, note, reviewer, updated) VALUES (?,?,?,?,?) "
        "ON CONFLICT (case_id, mask_id) DO UPDATE SET note = excluded.note, "
        "reviewer = excluded.reviewer, updated = excluded.updated",
        (note.case_id, note.mask_id, note.note, note.reviewer, note.updated),
    )


# ----------------------------------------------------------------------------- edits
def _edit(row: tuple) -> EditVersion:
    vid, case_id, mask_id, file, reviewer, created, current = row
    return EditVersion(int(vid), case_id, mask_id, file, Path(file), reviewer, created, bool(current))


def edit_row(conn: sqlite3.Connection, version_id: int) -> EditVersion:
    """One edit version by id."""
    row = conn.execute(
        f"SELECT {_EDIT_COLUMNS} FROM edit_versions WHERE id = ?", (version_id,)
    ).fetchone()
    return _edit(row)


def edit_rows(conn: sqlite3.Connection, case_id: str, mask_id: str | None) -> list[EditVersion]:
    """The edit versions of a case (or of one of its masks), oldest first."""
    if mask_id is None:
        cur = conn.execute(
            f"SELECT {_EDIT_COLUMNS} FROM edit_versions WHERE case_id = ? ORDER BY id",
            (case_id,),
        )
    else:
        cur = conn.execute(
            f"SELECT {_EDIT_COLUMNS} FROM edit_versions WHERE case_id = ? AND mask_id = ? "
            "ORDER BY id",
            (case_id, mask_id),
        )
    return [_edit(r) for r in cur.fetchall()]


def current_edit_row(conn: sqlite3.Connection, case_id: str, mask_id: str) -> EditVersion | None:
    """The current edit of a mask, or None (the original is current)."""
    row = conn.execute(
        f"SELECT {_EDIT_COLUMNS} FROM edit_versions "
        "WHERE case_id = ? AND mask_id = ? AND is_current = 1",
        (case_id, mask_id),
    ).fetchone()
    return _edit(row) if row else None


def insert_edit(
    conn: sqlite3.Connection, case_id: str, mask_id: str, file: str, reviewer: str, when: str
) -> int:
    """Add an edit version as the current one; returns its id."""
    conn.execute(
        "UPDATE edit_versions SET is_current = 0 WHERE case_id = ? AND mask_id = ?",
        (case_id, mask_id),
    )
    cur = conn.execute(
        "INSERT INTO edit_versions (case_id, mask_id, file, reviewer, created, is_current) "
        "VALUES (?,?,?,?,?,1)",
        (case_id, mask_id, file, reviewer, when),
    )
    return int(cur.lastrowid)


def make_current(
    conn: sqlite3.Connection, case_id: str, mask_id: str, version_id: int | None
) -> EditVersion | None:
    """Make one version current (None: none, the original); None when it is not there."""
    if version_id is not None:
        found = conn.execute(
            "SELECT 1 FROM edit_versions WHERE id = ? AND case_id = ? AND mask_id = ?",
            (int(version_id), case_id, mask_id),
        ).fetchone()
        if not found:
            return None
    conn.execute(
        "UPDATE edit_versions SET is_current = 0 WHERE case_id = ? AND mask_id = ?",
        (case_id, mask_id),
    )
    if version_id is None:
        return None
    conn.execute("UPDATE edit_versions SET is_current = 1 WHERE id = ?", (int(version_id),))
    return edit_row(conn, int(version_id))


# ----------------------------------------------------------------------------- adjudication
def adjudicated_row(conn: sqlite3.Connection, case_id: str) -> Adjudication | None:
    """The adjudicated mask of a case, or None."""
    row = conn.execute(
        "SELECT case_id, method, file, reviewer, created FROM adjudicated WHERE case_id = ?",
        (case_id,),
    ).fetchone()
    if not row:
        return None
    cid, method, file, reviewer, created = row
    return Adjudication(cid, method, file, Path(file), reviewer, created)


def put_adjudicated(conn: sqlite3.Connection, a: Adjudication) -> None:
    """Write a case's adjudicated mask (replacing the earlier choice)."""
    conn.execute(
        "INSERT INTO adjudicated (case_id, method, file, reviewer, created) VALUES (?,?,?,?,?) "
        "ON CONFLICT (case_id) DO UPDATE SET method = excluded.method, file = excluded.file, "
        "reviewer = excluded.reviewer, created = excluded.created",
        (a.case_id, a.method, a.file, a.reviewer, a.created),
    )


# ----------------------------------------------------------------------------- history
def history_rows(conn: sqlite3.Connection, case_id: str | None) -> list[HistoryEntry]:
    """History entries (of one case or all), oldest first."""
    sql = "SELECT id, time, reviewer, case_id, kind, old, new FROM history"
    if case_id is None:
        rows = conn.execute(sql + " ORDER BY id").fetchall()
    else:
        rows = conn.execute(sql + " WHERE case_id = ? ORDER BY id", (case_id,)).fetchall()
    return [
        HistoryEntry(int(i), t, r, c, k, _load(old), _load(new)) for i, t, r, c, k, old, new in rows
    ]


def _load(text: str | None) -> dict | None:
    return None if text is None else json.loads(text)
