"""Strict CSV reading and metadata cleaning shared by the layout readers."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

from napari_iaa.data.case import Problem
from napari_iaa.errors import DatasetError

__all__ = ["clean_meta", "read_csv_rows"]


def read_csv_rows(
    path: str | os.PathLike, required: tuple[str, ...] = ()
) -> tuple[list[str], list[tuple[int, dict[str, str]]], list[Problem]]:
    """Read a CSV strictly: UTF-8 (BOM allowed), balanced quotes, known columns.

    Returns
    -------
    header, rows, problems
        Column names (stripped; unnamed columns, such as Excel's trailing separators or R's
        row names, left out), ``(line_number, {column: value})`` per data row, and a
        problem per row whose number of fields is wrong (that row is left out).

    Raises
    ------
    DatasetError
        Naming the CSV: not UTF-8, broken quoting, empty, or a required column missing.
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
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
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
            f"{path}: line {reader.line_num}: malformed CSV ({exc}); check for a stray quote"
        ) from None
    if header is None:
        raise DatasetError(f"{path}: empty CSV (no header row)")
    # unnamed columns (Excel's trailing separators, R's row names) are left out
    header = [h for h in header if h]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise DatasetError(f"{path}: duplicate column(s) {', '.join(dup)}")
    missing = [c for c in required if c not in header]
    if missing:
        raise DatasetError(
            f"{path}: missing required column(s) {', '.join(repr(m) for m in missing)} "
            f"(found: {', '.join(header)})"
        )
    return header, rows, problems


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


def _parse_scalar(text: str) -> Any:
    t = text.strip()
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
) -> dict[str, Any]:
    """Turn CSV strings into meta values.

    Missing values are left out, numbers parsed, NaN and out-of-range values dropped with
    a problem naming the CSV, line and column.
    """
    out: dict[str, Any] = {}
    where = f"line {line}: " if line is not None else ""
    for key, text in values.items():
        if text is None:
            continue
        t = str(text).strip()
        if t.lower() in _MISSING:
            continue
        v = _parse_scalar(t)
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

