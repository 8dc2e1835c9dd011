"""The review store: verdicts, mask notes, edit versions and adjudicated masks of a data set.

One SQLite file per data set (see :func:`~napari_iaa.review.location.store_location`)
holds the current state and an append-only history; every change and its history row are
written in one transaction. Several windows and scripts may use one store at the same time:
writers wait for each other (see :mod:`napari_iaa.review.connection`), readers see the
others' changes on their next read. The user's images and masks are never touched: the
store only records the paths of files written elsewhere.

>>> store = ReviewStore.open(dataset.root)                      # doctest: +SKIP
>>> store.set_verdict("ISIC_0000001", "accepted", comment="ok")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from napari_iaa.data import check_case_id
from napari_iaa.errors import ReviewStoreError
from napari_iaa.review import queries as q
from napari_iaa.review.base import StoreBase
from napari_iaa.review.location import utc_now
from napari_iaa.review.records import (
    Adjudication,
    EditVersion,
    HistoryEntry,
    MaskNote,
    Verdict,
    check_method,
    check_status,
)
from napari_iaa.review.schema import STATUSES

__all__ = ["ReviewStore"]


class ReviewStore(StoreBase):
    """A data set's review store (SQLite): verdicts, mask notes, edits, adjudicated masks.

    Open one with :meth:`ReviewStore.open` (where :func:`store_location` says) or
    ``ReviewStore(path)``; see :class:`~napari_iaa.review.base.StoreBase` for the
    parameters, the read-only mode and :attr:`problem`.
    """

    # ------------------------------------------------------------------ verdicts
    def set_verdict(
        self, case_id: str, status: str, reviewer: str | None = None, comment: str | None = None
    ) -> Verdict:
        """Set a case's status (and comment), recording who and when.

        Parameters
        ----------
        case_id : str
            The case.
        status : str
            ``unreviewed``, ``accepted``, ``reannotate`` or ``excluded``.
        reviewer : str, optional
            Who (default: :attr:`reviewer`).
        comment : str, optional
            The comment; None keeps the case's current comment, ``""`` clears it.

        Returns
        -------
        Verdict
            The case's new state.

        Raises
        ------
        ReviewStoreError
            Unknown status, read-only store, or a store locked for good.
        """
        check_status(status)
        check_case_id(case_id)
        who = reviewer or self.reviewer

        def change(conn: sqlite3.Connection) -> Verdict:
            when = utc_now()
            old = q.verdict_row(conn, case_id)
            text = (old.comment if old else None) if comment is None else (comment or None)
            new = Verdict(case_id, status, who, text, when)
            q.upsert_case(conn, new)
            self._log(conn, when, who, case_id, "verdict", old and old.to_dict(), new.to_dict())
            return new

        return self._write(change)

    def verdict(self, case_id: str) -> Verdict:
        """A case's current state (``unreviewed`` with no reviewer when never set)."""
        return self._read(lambda c: q.verdict_row(c, case_id)) or Verdict(case_id)

    def verdicts(self, case_ids: Iterable[str] | None = None) -> list[Verdict]:
        """Current states.

        Parameters
        ----------
        case_ids : iterable of str, optional
            The data set's cases, in order: one verdict each (``unreviewed`` where none
            was set). Default: every case in the store, in id order.

        Returns
        -------
        list of Verdict
        """
        stored = {v.case_id: v for v in self._read(q.all_verdicts)}
        if case_ids is None:
            return list(stored.values())
        return [stored.get(c) or Verdict(c) for c in case_ids]

    def verdicts_frame(self, case_ids: Iterable[str] | None = None):
        """:meth:`verdicts` as a :class:`pandas.DataFrame` (columns ``VERDICT_COLUMNS``)."""
        import pandas as pd

        from napari_iaa.review.records import VERDICT_COLUMNS

        rows = [v.to_dict() for v in self.verdicts(case_ids)]
        return pd.DataFrame(rows, columns=VERDICT_COLUMNS)

    def counts(self, case_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Number of cases per status, every status present (in :data:`STATUSES` order).

        Parameters
        ----------
        case_ids : iterable of str, optional
            Count these cases (those without a verdict as ``unreviewed``); default: the
            cases in the store.

        Returns
        -------
        dict
            Status -> count.
        """
        out = dict.fromkeys(STATUSES, 0)
        for v in self.verdicts(case_ids):
            out[v.status] += 1
        return out

    # ------------------------------------------------------------------ mask notes
    def set_mask_note(
        self, case_id: str, mask_id: str, note: str | None, reviewer: str | None = None
    ) -> MaskNote | None:
        """Set (or with an empty ``note`` remove) the note on one mask of a case.

        Returns
        -------
        MaskNote or None
            The new note (None when removed).
        """
        check_case_id(case_id)
        who = reviewer or self.reviewer

        def change(conn: sqlite3.Connection) -> MaskNote | None:
            when = utc_now()
            q.ensure_case(conn, case_id, when)
            old = q.mask_note_row(conn, case_id, mask_id)
            new = MaskNote(case_id, mask_id, note, who, when) if note else None
            q.put_mask_note(conn, case_id, mask_id, new)
            self._log(conn, when, who, case_id, "mask_note",
                      old and old.to_dict(), new and new.to_dict())
            return new

        return self._write(change)

    def mask_notes(self, case_id: str) -> dict[str, MaskNote]:
        """The notes on a case's masks, mask id -> note."""
        return {n.mask_id: n for n in self._read(lambda c: q.mask_note_rows(c, case_id))}

    def all_mask_notes(self) -> dict[str, dict[str, MaskNote]]:
        """Every case's mask notes: case id -> mask id -> note (cases without notes absent).

        Returns
        -------
        dict
            In case id, then mask id order.
        """
        out: dict[str, dict[str, MaskNote]] = {}
        for n in self._read(q.all_mask_note_rows):
            out.setdefault(n.case_id, {})[n.mask_id] = n
        return out

    # ------------------------------------------------------------------ edits
    def add_edit_version(
        self, case_id: str, mask_id: str, path: str | os.PathLike, reviewer: str | None = None
    ) -> EditVersion:
        """Record a saved edit of a mask and make it the current version.

        Parameters
        ----------
        case_id, mask_id : str
            The mask that was edited.
        path : path-like
            The file the edit was saved to (already written, atomically).
        reviewer : str, optional
            Who saved it (default: :attr:`reviewer`).

        Returns
        -------
        EditVersion
            The new, current version.
        """
        check_case_id(case_id)
        who, file = reviewer or self.reviewer, self._file(path)

        def change(conn: sqlite3.Connection) -> EditVersion:
            when = utc_now()
            q.ensure_case(conn, case_id, when)
            old = q.current_edit_row(conn, case_id, mask_id)
            new_id = q.insert_edit(conn, case_id, mask_id, file, who, when)
            new = q.edit_row(conn, new_id)
            self._log(conn, when, who, case_id, "edit", old and old.to_dict(), new.to_dict())
            return new

        return self._edit_with_path(self._write(change))

    def edit_versions(self, case_id: str, mask_id: str | None = None) -> list[EditVersion]:
        """Saved edits of a case (or of one mask), oldest first."""
        rows = self._read(lambda c: q.edit_rows(c, case_id, mask_id))
        return [self._edit_with_path(r) for r in rows]

    def current_edit(self, case_id: str, mask_id: str) -> EditVersion | None:
        """The version of a mask a reopened case loads (None: the original)."""
        row = self._read(lambda c: q.current_edit_row(c, case_id, mask_id))
        return self._edit_with_path(row) if row else None

    def current_edits(self, case_id: str) -> dict[str, EditVersion]:
        """Mask id -> current edit, for the masks of a case that have one."""
        return {e.mask_id: e for e in self.edit_versions(case_id) if e.is_current}

    def set_current_edit(
        self, case_id: str, mask_id: str, version_id: int | None, reviewer: str | None = None
    ) -> EditVersion | None:
        """Make an earlier version current, or with ``version_id=None`` the original.

        Raises
        ------
        ReviewStoreError
            ``version_id`` is not a version of that mask.
        """
        who = reviewer or self.reviewer

        def change(conn: sqlite3.Connection) -> EditVersion | None:
            old = q.current_edit_row(conn, case_id, mask_id)
            new = q.make_current(conn, case_id, mask_id, version_id)
            if new is None and version_id is not None:
                raise ReviewStoreError(
                    f"{self.path}: no edit version {version_id} of mask {mask_id!r} of case {case_id!r}"
                )
            self._log(conn, utc_now(), who, case_id, "current_edit",
                      old and old.to_dict(), new and new.to_dict())
            return new

        new = self._write(change)
        return self._edit_with_path(new) if new else None

    def _edit_with_path(self, e: EditVersion) -> EditVersion:
        return EditVersion(e.id, e.case_id, e.mask_id, e.file, self._abs(e.file), e.reviewer,
                           e.created, e.is_current)

    # ------------------------------------------------------------------ adjudication
    def set_adjudicated(
        self, case_id: str, method: str, path: str | os.PathLike, reviewer: str | None = None
    ) -> Adjudication:
        """Record the final mask a reviewer chose for a case (replacing an earlier choice).

        Parameters
        ----------
        case_id : str
            The case.
        method : str
            ``majority``, ``staple``, ``annotator:<id>``, ``edited`` or ``layer:<name>``.
        path : path-like
            The mask's file (already written, atomically).
        reviewer : str, optional
            Who chose it (default: :attr:`reviewer`).

        Returns
        -------
        Adjudication
            The new choice.
        """
        check_case_id(case_id)
        check_method(method)
        who, file = reviewer or self.reviewer, self._file(path)

        def change(conn: sqlite3.Connection) -> Adjudication:
            when = utc_now()
            q.ensure_case(conn, case_id, when)
            old = q.adjudicated_row(conn, case_id)
            new = Adjudication(case_id, method, file, Path(file), who, when)
            q.put_adjudicated(conn, new)
            self._log(conn, when, who, case_id, "adjudicated", old and old.to_dict(), new.to_dict())
            return new

        a = self._write(change)
        return Adjudication(a.case_id, a.method, a.file, self._abs(a.file), a.reviewer, a.created)

    def adjudicated(self, case_id: str) -> Adjudication | None:
        """The case's adjudicated mask (None when none was chosen)."""
        a = self._read(lambda c: q.adjudicated_row(c, case_id))
        if a is None:
            return None
        return Adjudication(a.case_id, a.method, a.file, self._abs(a.file), a.reviewer, a.created)

    # ------------------------------------------------------------------ history
    def history(self, case_id: str | None = None) -> list[HistoryEntry]:
        """Every recorded change (of one case, or of all), oldest first."""
        return self._read(lambda c: q.history_rows(c, case_id))


