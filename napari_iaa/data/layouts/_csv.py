"""Strict CSV reading and metadata cleaning shared by the layout readers."""

from __future__ import annotations

import csv
import io
import math
import os
import re
from pathlib import Path
from typing import Any, NamedTuple

from napari_iaa.data.case import Problem
from napari_iaa.errors import DatasetError

__all__ = ["CsvTable", "clean_meta", "header_delimiter", "read_csv_rows", "read_csv_table"]

_DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "tab"}


def header_delimiter(line: str) -> str:
    """The separator of a CSV from its header line: ``,``, ``;`` or tab.

    The one found most often outside quotes (European Excel writes ``;``, other tools
    tab); a comma when none is found or on a tie with it.
    """
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])  # first (the comma) on a tie
    return best if counts[best] > counts[","] else ","


class CsvTable(NamedTuple):
    """A CSV read by :func:`read_csv_table`."""

    header: list[str]
    rows: list[tuple[int, dict[str, str]]]
    problems: list[Problem]
    delimiter: str


def read_csv_rows(
    path: str | os.PathLike, required: tuple[str, ...] = ()
) -> tuple[list[str], list[tuple[int, dict[str, str]]], list[Problem]]:
    """``header, rows, problems`` of :func:`read_csv_table`."""
    header, rows, problems, _ = read_csv_table(path, required)
    return header, rows, problems


def read_csv_table(path: str | os.PathLike, required: tuple[str, ...] = ()) -> CsvTable:
    """Read a CSV strictly: UTF-8 (BOM allowed), balanced quotes, known columns.

    The separator (``,``, ``;`` or tab) is taken from the header line
    (:func:`header_delimiter`); commas inside quoted fields stay in their field.

    Returns
    -------
    CsvTable
        Column names (stripped; unnamed columns, such as Excel's trailing separators or R's
        row names, left out), ``(line_number, {column: value})`` per data row, a problem
        per row whose number of fields is wrong (that row is left out), and the separator.

    Raises
    ------
    DatasetError
        Naming the CSV (and the separator seen): not UTF-8, broken quoting, empty, or a
        required column missing.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: CSV file not found") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read CSV ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the CSV as UTF-8"
        ) from None
    if "\x00" in text:
        raise DatasetError(f"{path}: contains NUL bytes, not a text CSV")
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delim = header_delimiter(first)
    seen = f"separator {_DELIMITER_NAMES[delim]}"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True)
    problems: list[Problem] = []
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        header = None
        for fields in reader:
            if header is None:
                if not fields or all(not f.strip() for f in fields):
                    continue
                header = [f.strip() for f in fields]
                continue
            if not fields or all(not f.strip() for f in fields):
                continue
            line = reader.line_num
            if not _fields_fit(header, fields):
                problems.append(
                    Problem(
                        path,
                        f"line {line}: {len(fields)} fields where the header has "
                        f"{len(header)}; row skipped",
                    )
                )
                continue
            rows.append((line, {h: v.strip() for h, v in zip(header, fields) if h}))
    except csv.Error as exc:
        raise DatasetError(
            f"{path}: line {reader.line_num}: malformed CSV ({exc}; {seen}); check for a stray quote"
        ) from None
    if header is None:
        raise DatasetError(f"{path}: empty CSV (no header row)")
    # unnamed columns (Excel's trailing separators, R's row names) are left out
    header = [h for h in header if h]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise DatasetError(f"{path}: duplicate column(s) {', '.join(dup)} ({seen})")
    missing = [c for c in required if c not in header]
    if missing:
        raise DatasetError(
            f"{path}: missing required column(s) {', '.join(repr(m) for m in missing)} "
            f"(found with {seen}: {', '.join(header)}); the header is read as "
            "comma-, semicolon- or tab-separated"
        )
    return CsvTable(header, rows, problems, delim)


def _fields_fit(header: list[str], fields: list[str]) -> bool:
    """Whether a row has the header's columns.

    As many fields, or fewer or more only where the header has no name and the row
    nothing (Excel's trailing separators).
    """
    if len(fields) == len(header):
        return True
    if len(fields) < len(header):
        return not any(header[len(fields):])
    return not any(f.strip() for f in fields[len(header):])


_MISSING = {"", "nan", "na", "n/a", "none", "null"}
_RANGES: dict[str, tuple[float, float]] = {
    "age_approx": (0, 120),
    "age": (0, 120),
    "clin_size_long_diam_mm": (0, 1000),
    "mel_thick_mm": (0, 100),
    "pixels_x": (1, 10**6),
    "pixels_y": (1, 10**6),
    "fitzpatrick_skin_type": (1, 6),
}
_BM_VALUES = {
    "benign",
    "malignant",
    "indeterminate",
    "indeterminate/benign",
    "indeterminate/malignant",
}


_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")


def _parse_scalar(text: str, decimal_comma: bool = False) -> Any:
    t = text.strip()
    if decimal_comma and _DECIMAL_COMMA.fullmatch(t):
        t = t.replace(",", ".")
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def clean_meta(
    values: dict[str, str],
    source: Path,
    line: int | None,
    problems: list[Problem],
    case_id: str | None,
    decimal_comma: bool = False,
) -> dict[str, Any]:
    """Turn CSV strings into meta values.

    Missing values are left out, numbers parsed (``3,5`` as 3.5 with ``decimal_comma``:
    a CSV separated by ``;`` or tab), NaN and out-of-range values dropped with a problem
    naming the CSV, line and column.
    """
    out: dict[str, Any] = {}
    where = f"line {line}: " if line is not None else ""
    for key, text in values.items():
        if text is None:
            continue
        t = str(text).strip()
        if t.lower() in _MISSING:
            continue
        v = _parse_scalar(t, decimal_comma)
        if isinstance(v, float) and not math.isfinite(v):
            problems.append(Problem(source, f"{where}column {key!r}: {t!r} is not a finite number; ignored", case_id))
            continue
        if key in _RANGES:
            lo, hi = _RANGES[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                problems.append(Problem(source, f"{where}column {key!r}: {t!r} is not a number; ignored", case_id))
                continue
            if not lo <= v <= hi:
                problems.append(
                    Problem(source, f"{where}column {key!r}: {v} is out of range [{lo}, {hi}]; ignored", case_id)
                )
                continue
        if key == "benign_malignant":
            v = t.lower()
            if v not in _BM_VALUES:
                problems.append(
                    Problem(
                        source,
                        f"{where}column 'benign_malignant': unexpected value {t!r} "
                        f"(expected one of {', '.join(sorted(_BM_VALUES))}); ignored",
                        case_id,
                    )
                )
                continue
        out[key] = v
    return out

