"""The data-set table as CSV, with the command line's column names.

The table shows short headers ("IAA", "min pair", "flagged by"); its CSV export writes
the names of ``napari-iaa review export`` instead: the verdict columns of
:mod:`napari_iaa.review`, then the agreement columns of ``napari-iaa score`` from
:mod:`napari_iaa.scoring` (the one source of both; composed as the CLI composes them, a
test keeps the two equal: widgets may not import the CLI package), the values of a scored case being the very
score row the CLI writes. Then ``flagged`` and ``flagged_by`` (the table's flag rules),
then the data set's metadata columns that have no such name already.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from napari_iaa.review import VERDICT_COLUMNS
from napari_iaa.scoring import DETECTION_COLUMNS, SCORE_COLUMNS, SURFACE_COLUMNS
from napari_iaa.widgets.dataset.table_model import AGREEMENT_COLUMNS as TABLE_AGREEMENT
from napari_iaa.widgets.dataset.table_model import FLAGGED_BY

__all__ = ["AGREEMENT_COLUMNS", "FLAG_COLUMNS", "csv_columns", "csv_frame"]

#: CLI columns a case not scored yet takes from the table (the same thing under the same
#: name in the metadata; not ``annotators``, which lists annotators there, mask ids here)
_FROM_TABLE = ("n_annotators", "n_masks", "group")

#: the table's own columns after the CLI's: is a case flagged, and by which rule
FLAG_COLUMNS = ["flagged", "flagged_by"]
#: ``napari-iaa score``'s columns after ``case_id`` (as ``napari_iaa.cli.review``'s)
AGREEMENT_COLUMNS = [c for c in SCORE_COLUMNS if c != "case_id"] + DETECTION_COLUMNS \
    + SURFACE_COLUMNS


def csv_columns(surface: bool) -> list[str]:
    """The CLI's columns the export starts with (no mask notes: the table has none).

    Parameters
    ----------
    surface : bool
        Whether HD95 and ASSD were computed (their columns are left out otherwise, as
        ``napari-iaa score --no-surface`` does).
    """
    agreement = [c for c in AGREEMENT_COLUMNS if surface or c not in SURFACE_COLUMNS]
    return VERDICT_COLUMNS + agreement + FLAG_COLUMNS


def csv_frame(table: pd.DataFrame, score_rows: Mapping[str, Mapping[str, Any] | None],
              case_ids: Sequence[str]) -> pd.DataFrame:
    """The rows ``case_ids`` of the table (:meth:`CaseTableModel.frame`) with CLI names.

    Parameters
    ----------
    table : pandas.DataFrame
        The table model's frame (display names, ``flagged`` and ``flagged by``).
    score_rows : mapping
        Case id -> its row of :func:`napari_iaa.scoring.score_id` (None: unreadable);
        cases not scored yet are absent and get empty agreement cells.
    case_ids : sequence of str
        The rows, in order.

    Returns
    -------
    pandas.DataFrame
        :func:`csv_columns`, then the remaining metadata columns.
    """
    surface = any(row and any(k in row for k in SURFACE_COLUMNS) for row in score_rows.values())
    columns = csv_columns(surface)
    own = set(columns) | set(TABLE_AGREEMENT) | {FLAGGED_BY}
    extra = [c for c in table.columns if c not in own]
    indexed = table.set_index("case_id")
    records = []
    for cid in case_ids:
        shown = indexed.loc[cid]
        row = score_rows.get(cid) or {}
        rec: dict[str, Any] = {"case_id": cid}
        rec.update({c: shown[c] for c in VERDICT_COLUMNS[1:]})
        for c in AGREEMENT_COLUMNS:
            if c in columns:
                fallback = shown[c] if c in _FROM_TABLE and c in shown.index and not row \
                    else math.nan
                rec[c] = row.get(c, fallback)
        rec["flagged"] = bool(shown["flagged"])
        rec["flagged_by"] = shown[FLAGGED_BY]
        rec.update({c: shown[c] for c in extra})
        records.append(rec)
    return pd.DataFrame.from_records(records, columns=columns + extra).astype(object)
