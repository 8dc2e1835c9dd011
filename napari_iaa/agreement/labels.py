"""External label tables (a diagnosis, a malignancy rating) joined to cases by their id.

Shared by ``napari-iaa cohort --labels`` and the review dock's Cohort tab. Ids are compared
without an image suffix (``ISIC_0000004.JPG`` == ``ISIC_0000004``), so IMA++'s ``img_id``
joins with the ISIC ``isic_id``; a label row also applies to the cases below its id in a
``/`` hierarchy (a label of ``LIDC-IDRI-0001/nodule-0`` to its slices
``LIDC-IDRI-0001/nodule-0/slice-12``; the most specific row wins).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_iaa.errors import DatasetError

if TYPE_CHECKING:  # pandas is imported on use (the CLI starts without it)
    import pandas as pd

__all__ = [
    "ID_CANDIDATES", "join_labels", "normalise_case_id", "pick_column", "read_label_columns",
    "read_label_table", "read_table",
]

_IMAGE_SUFFIX = re.compile(r"\.(jpe?g|png|tiff?|bmp|gif|webp)$", re.IGNORECASE)
#: the names a case id column goes by, in order of preference
ID_CANDIDATES = ("case_id", "img_id", "isic_id", "ISIC_id", "image_id", "image", "id")


def normalise_case_id(value: Any) -> str:
    """A case id as compared in joins: stripped, without an image file suffix."""
    return _IMAGE_SUFFIX.sub("", str(value).strip())


def pick_column(columns: Sequence[str], wanted: str | None, candidates: Sequence[str],
                path: Path, what: str) -> str:
    """``wanted`` if the table has it, else the first of ``candidates`` it has (any case).

    Raises
    ------
    DatasetError
        Naming ``path`` and the columns when none fits.
    """
    if wanted is not None:
        if wanted not in columns:
            raise DatasetError(f"{path}: no column {wanted!r} ({what}); columns are "
                               f"{', '.join(map(str, columns))}")
        return wanted
    for c in candidates:
        if c in columns:
            return c
    lower = {str(c).lower(): c for c in columns}
    for c in candidates:
        if c.lower() in lower:
            return lower[c.lower()]
    raise DatasetError(
        f"{path}: cannot tell which column holds the {what} (looked for "
        f"{', '.join(candidates)}); columns are {', '.join(map(str, columns))}"
    )


def read_table(path: str | Path, what: str) -> pd.DataFrame:
    """A CSV file as a DataFrame; a clear :class:`DatasetError` when it cannot be read."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: {what} not found")
    from napari_iaa.data import header_delimiter

    try:  # the separator as the data readers take it: ',', ';' (European Excel, whose
        # decimal mark is then ',') or tab, from the header line
        with path.open(encoding="utf-8-sig", errors="replace") as fh:
            sep = header_delimiter(fh.readline())
        frame = pd.read_csv(path, low_memory=False, sep=sep, decimal="," if sep == ";" else ".")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not a readable CSV ({' '.join(str(exc).split())})") from exc
    if frame.empty:
        raise DatasetError(f"{path}: {what} has no rows")
    return frame


def read_label_table(path: str | Path, by: str, id_column: str | None = None) -> pd.DataFrame:
    """``case_id, group`` from a label table; one group per case (duplicates must agree).

    Parameters
    ----------
    path
        The label CSV.
    by
        Its group column (e.g. ``benign_malignant``, ``malignancy``).
    id_column
        Its case id column (default: detected from :data:`ID_CANDIDATES`).

    Returns
    -------
    pandas.DataFrame
        Columns ``case_id`` (normalised) and ``group``, one row per case.
    """
    import pandas as pd

    path = Path(path)
    right = read_table(path, "label table")
    if by not in right.columns:
        raise DatasetError(f"{path}: no column {by!r}; columns are "
                           f"{', '.join(map(str, right.columns))}")
    rid = pick_column(list(right.columns), id_column, ID_CANDIDATES, path, "case id")
    right = pd.DataFrame({"case_id": right[rid].map(normalise_case_id), "group": right[by]})
    dup = right["case_id"].duplicated(keep=False)
    if dup.any():
        conflicting = right[dup].groupby("case_id")["group"].nunique()
        bad = conflicting[conflicting > 1]
        if len(bad):
            raise DatasetError(f"{path}: case {bad.index[0]} has conflicting {by!r} values")
        right = right.drop_duplicates("case_id")
    return right.reset_index(drop=True)


def read_label_columns(path: str | Path, id_column: str | None = None,
                       ) -> tuple[str, list[str]]:
    """The case id column of a label CSV and its other columns.

    Returns
    -------
    (str, list of str)
    """
    path = Path(path)
    frame = read_table(path, "label table")
    rid = pick_column(list(frame.columns), id_column, ID_CANDIDATES, path, "case id")
    return rid, [str(c) for c in frame.columns if c != rid]


def join_labels(case_ids: Iterable[str], labels: pd.DataFrame) -> pd.Series:
    """The ``group`` of each case: its own label row, else its nearest ``/`` ancestor's.

    Parameters
    ----------
    case_ids
        The data set's case ids.
    labels
        ``case_id, group`` as :func:`read_label_table` returns.

    Returns
    -------
    pandas.Series
        One value per case id (index: the ids as given), None without a label.
    """
    import pandas as pd

    ids = [str(c) for c in case_ids]
    lookup = dict(zip(labels["case_id"], labels["group"], strict=True))
    out = []
    for cid in ids:
        key = normalise_case_id(cid)
        while key not in lookup and "/" in key:
            key = key.rsplit("/", 1)[0]
        out.append(lookup.get(key))
    return pd.Series(out, index=ids, dtype=object)
