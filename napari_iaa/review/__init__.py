"""The review's outcome, kept: verdicts, comments, edits and adjudicated masks per data set.

A :class:`ReviewStore` (SQLite, one per data set, see :func:`store_location`) holds each
case's status (``unreviewed``, ``accepted``, ``reannotate``, ``excluded``), reviewer,
comment and time, notes on masks, the saved versions of edited masks (which one is
current), the adjudicated mask of a case, and an append-only history of every change.
:func:`export_consensus` writes one consensus mask per case and ``consensus.csv``.

No Qt, napari or torch here: the dock, the command line and scripts share this room.
"""

from __future__ import annotations

from napari_iaa.review.base import aside_path, set_aside
from napari_iaa.review.connection import (
    DEFAULT_LOCK_TIMEOUT,
    PROBLEM_KINDS,
    REPLACEABLE_KINDS,
    StoreProblem,
)
from napari_iaa.review.consensus_export import (
    CONSENSUS_COLUMNS,
    CONSENSUS_METHODS,
    EXPORT_SELECTIONS,
    FLAG_THRESHOLD,
    MASK_WRITERS,
    ConsensusExport,
    MaskWriter,
    consensus_mask,
    export_consensus,
    mask_writer_for,
    register_mask_writer,
)
from napari_iaa.review.location import (
    dataset_key,
    default_reviewer,
    store_location,
    user_store_dir,
    utc_now,
)
from napari_iaa.review.records import (
    ADJUDICATION_METHODS,
    NOTES_COLUMN,
    VERDICT_COLUMNS,
    Adjudication,
    EditVersion,
    HistoryEntry,
    MaskNote,
    Verdict,
    check_method,
    check_status,
    notes_text,
)
from napari_iaa.review.schema import MIGRATIONS, SCHEMA_VERSION, STATUSES
from napari_iaa.review.store import ReviewStore

__all__ = [
    "ADJUDICATION_METHODS",
    "CONSENSUS_COLUMNS",
    "CONSENSUS_METHODS",
    "DEFAULT_LOCK_TIMEOUT",
    "EXPORT_SELECTIONS",
    "FLAG_THRESHOLD",
    "MASK_WRITERS",
    "MIGRATIONS",
    "NOTES_COLUMN",
    "PROBLEM_KINDS",
    "REPLACEABLE_KINDS",
    "SCHEMA_VERSION",
    "STATUSES",
    "VERDICT_COLUMNS",
    "Adjudication",
    "ConsensusExport",
    "EditVersion",
    "HistoryEntry",
    "MaskNote",
    "MaskWriter",
    "ReviewStore",
    "StoreProblem",
    "Verdict",
    "aside_path",
    "check_method",
    "check_status",
    "consensus_mask",
    "dataset_key",
    "default_reviewer",
    "export_consensus",
    "mask_writer_for",
    "notes_text",
    "register_mask_writer",
    "set_aside",
    "store_location",
    "user_store_dir",
    "utc_now",
]
