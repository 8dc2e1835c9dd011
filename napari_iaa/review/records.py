"""What the review store hands out: plain, frozen records, and the checks on values."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from napari_iaa.errors import ReviewStoreError
from napari_iaa.review.schema import STATUSES

__all__ = [
    "ADJUDICATION_METHODS",
    "Adjudication",
    "EditVersion",
    "HistoryEntry",
    "MaskNote",
    "NOTES_COLUMN",
    "VERDICT_COLUMNS",
    "Verdict",
    "check_method",
    "check_status",
    "notes_text",
]

#: Columns of a verdict table (``napari-iaa review export`` starts with these).
VERDICT_COLUMNS = ["case_id", "status", "reviewer", "comment", "updated"]
#: The column of the notes on a case's masks (``napari-iaa review export``'s last one).
NOTES_COLUMN = "mask_notes"

#: Ways an adjudicated mask can be made; ``annotator:`` and ``layer:`` take a name.
ADJUDICATION_METHODS = ("majority", "staple", "annotator:<id>", "edited", "layer:<name>")
_METHOD = re.compile(r"^(majority|staple|edited|annotator:\S.*|layer:\S.*)$")


def check_status(status: str) -> str:
    """Return ``status`` if it is a review status, else raise.

    Parameters
    ----------
    status : str
        One of :data:`~napari_iaa.review.schema.STATUSES`.

    Returns
    -------
    str
        ``status``.

    Raises
    ------
    ReviewStoreError
        Naming the value and the statuses there are.
    """
    if status not in STATUSES:
        raise ReviewStoreError(f"unknown review status {status!r}: use one of {', '.join(STATUSES)}")
    return status


def check_method(method: str) -> str:
    """Return ``method`` if it names a way to adjudicate, else raise.

    Parameters
    ----------
    method : str
        ``majority``, ``staple``, ``annotator:<id>``, ``edited`` or ``layer:<name>``.

    Returns
    -------
    str
        ``method``.

    Raises
    ------
    ReviewStoreError
        Naming the value and the methods there are.
    """
    if not isinstance(method, str) or not _METHOD.match(method):
        raise ReviewStoreError(
            f"unknown adjudication method {method!r}: use one of {', '.join(ADJUDICATION_METHODS)}"
        )
    return method


@dataclass(frozen=True)
class Verdict:
    """The current review state of one case.

    Attributes
    ----------
    case_id : str
        The case.
    status : str
        ``unreviewed``, ``accepted``, ``reannotate`` or ``excluded``.
    reviewer : str or None
        Who set it (None for a case nobody reviewed).
    comment : str or None
        The reviewer's comment.
    updated : str or None
        When, ISO 8601 in UTC (None for a case nobody reviewed).
    """

    case_id: str
    status: str = "unreviewed"
    reviewer: str | None = None
    comment: str | None = None
    updated: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as a dict (the columns of :data:`VERDICT_COLUMNS`)."""
        return asdict(self)


@dataclass(frozen=True)
class MaskNote:
    """A reviewer's note on one mask of a case ("r2 missed the spiculation").

    Attributes
    ----------
    case_id, mask_id : str
        The mask.
    note : str
        The text.
    reviewer : str or None
        Who wrote it.
    updated : str
        When, ISO 8601 in UTC.
    """

    case_id: str
    mask_id: str
    note: str
    reviewer: str | None
    updated: str

    def to_dict(self) -> dict[str, Any]:
        """The record as a dict."""
        return asdict(self)


@dataclass(frozen=True)
class EditVersion:
    """One saved edit of a mask.

    Attributes
    ----------
    id : int
        The version's number in the store (increasing with time).
    case_id, mask_id : str
        The mask that was edited.
    file : str
        The edit's file, relative to the data-set root (POSIX separators), or absolute
        when it lies outside the data set.
    path : Path
        The file as an absolute path.
    reviewer : str or None
        Who saved it.
    created : str
        When, ISO 8601 in UTC.
    is_current : bool
        Whether this version is the one a reopened case loads.
    """

    id: int
    case_id: str
    mask_id: str
    file: str
    path: Path
    reviewer: str | None
    created: str
    is_current: bool

    def to_dict(self) -> dict[str, Any]:
        """The record as a dict (``path`` as a string)."""
        out = asdict(self)
        out["path"] = str(self.path)
        return out


@dataclass(frozen=True)
class Adjudication:
    """The final mask a reviewer chose for a case.

    Attributes
    ----------
    case_id : str
        The case.
    method : str
        ``majority``, ``staple``, ``annotator:<id>``, ``edited`` or ``layer:<name>``.
    file : str
        The mask's file, relative to the data-set root where it lies inside it.
    path : Path
        The file as an absolute path.
    reviewer : str or None
        Who chose it.
    created : str
        When, ISO 8601 in UTC.
    """

    case_id: str
    method: str
    file: str
    path: Path
    reviewer: str | None
    created: str

    def to_dict(self) -> dict[str, Any]:
        """The record as a dict (``path`` as a string)."""
        out = asdict(self)
        out["path"] = str(self.path)
        return out


@dataclass(frozen=True)
class HistoryEntry:
    """One change, as the append-only history recorded it.

    Attributes
    ----------
    id : int
        Increasing with time.
    time : str
        ISO 8601 in UTC.
    reviewer : str or None
        Who made the change.
    case_id : str or None
        The case it concerns.
    kind : str
        ``verdict``, ``mask_note``, ``edit``, ``current_edit`` or ``adjudicated``.
    old, new : dict or None
        The state before and after (None where there was none).
    """

    id: int
    time: str
    reviewer: str | None
    case_id: str | None
    kind: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None


def notes_text(notes: dict[str, MaskNote]) -> str:
    """A case's mask notes as one cell: ``r2: missed the spiculation | r3: too wide``.

    Parameters
    ----------
    notes : dict
        Mask id -> note (:meth:`ReviewStore.mask_notes`).

    Returns
    -------
    str
        In mask id order; empty without notes.
    """
    return " | ".join(f"{mid}: {notes[mid].note}" for mid in sorted(notes))
