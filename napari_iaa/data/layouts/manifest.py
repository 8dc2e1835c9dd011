"""The manifest layout: a CSV with one row per mask, ``case_id,image,annotator,mask``."""

from __future__ import annotations

import csv
import os
from pathlib import Path, PureWindowsPath
from typing import Any

from napari_iaa.data.case import CaseEntry, Problem
from napari_iaa.data.dataset import Dataset
from napari_iaa.data.layouts._csv import clean_meta, header_delimiter, read_csv_table
from napari_iaa.data.layouts._scan import (
    assign_mask_ids,
    nfc,
    note_case_variants,
    other_normal_form,
    scandir,
)
from napari_iaa.errors import DatasetError

__all__ = ["MANIFEST_COLUMNS", "detect_manifest", "has_manifest_columns", "read_manifest"]

MANIFEST_COLUMNS = ("case_id", "image", "annotator", "mask")
_MANIFEST_NAMES = ("manifest.csv", "dataset.csv", "cases.csv")


def has_manifest_columns(csv_path: Path) -> bool:
    """Whether the CSV's header names the manifest columns.

    Any separator the readers take, names maybe quoted; False for a file that cannot be read.
    """
    try:
        with csv_path.open("r", encoding="utf-8-sig", errors="replace", newline="") as f:
            line = f.readline()
        # quoted names too (R's write.csv); separated by ',', ';' (European Excel) or tab
        first = next(csv.reader([line], delimiter=header_delimiter(line)), [])
    except (OSError, csv.Error):
        return False
    return set(MANIFEST_COLUMNS) <= {x.strip() for x in first}


def _manifest_csv(path: Path, detecting: bool = False) -> Path:
    """The manifest CSV of ``path`` (the file itself, or the folder's CSV with the columns).

    In a folder the CSV whose header has the manifest columns is taken, ``manifest.csv``,
    ``dataset.csv`` and ``cases.csv`` first. When none has them, reading takes the first
    of those names (its missing columns are then reported) while ``detecting`` does not: a
    metadata ``cases.csv`` beside case folders is not a manifest.
    """
    if path.is_file():
        return path
    if path.is_dir():
        named = [path / n for n in _MANIFEST_NAMES if (path / n).is_file()]
        others = sorted(Path(e.path) for e in scandir(path)
                        if e.is_file() and e.name.lower().endswith(".csv") and Path(e.path) not in named)
        for c in named + others:
            if has_manifest_columns(c):
                return c
        if named and not detecting:
            return named[0]
    raise DatasetError(f"{path}: no manifest CSV (with columns {', '.join(MANIFEST_COLUMNS)}) found")


def _resolve(base: Path, text: str) -> Path:
    r"""The file a CSV cell names, relative to ``base``, normalised (``./a/../b`` -> ``b``).

    A path written on Windows (``images\\a.png``) is read with ``/`` on other systems when
    no file has the literal name; a name typed in one Unicode form (NFC) finds the file
    stored in the other (NFD, as macOS writes names) when only that one exists.
    """
    p = Path(text)
    if "\\" in text and os.sep == "/" and not (p if p.is_absolute() else base / p).exists():
        p = Path(PureWindowsPath(text).as_posix())
    p = Path(os.path.normpath(p if p.is_absolute() else base / p))
    return other_normal_form(p) or p


def read_manifest(path: str | os.PathLike) -> Dataset:
    """Index a manifest CSV: one row per mask, ``case_id,image,annotator,mask``.

    Paths are relative to the CSV's folder. Other columns (``diagnosis``, ``split``,
    ``group`` or ``patient`` ...) go to ``meta`` (first non-empty value per case); ``group``
    (else ``patient``/``patient_id``/``lesion_id``) becomes the case's group. A row with an
    empty ``mask`` only declares the image.

    Raises
    ------
    DatasetError
        The CSV is missing, not UTF-8, malformed, or lacks a required column.
    """
    csv_path = _manifest_csv(Path(path))
    base = csv_path.parent
    header, rows, problems, delim = read_csv_table(csv_path, required=MANIFEST_COLUMNS)
    if not rows:
        raise DatasetError(f"{csv_path}: manifest has no rows")
    extra = [h for h in header if h not in MANIFEST_COLUMNS]
    rows_reader = _Rows(csv_path, extra, problems)
    for line, row in rows:
        rows_reader.add(line, row)
    entries: list[CaseEntry] = []
    for cid, c in rows_reader.cases.items():
        entry = _case_entry(cid, c, csv_path, problems, decimal_comma=delim != ",")
        if entry is not None:
            entries.append(entry)
    note_case_variants(entries, csv_path, problems)
    return Dataset(entries, base, "manifest", problems)


class _Rows:
    """The manifest's rows gathered per case (image, masks, first metadata values)."""

    def __init__(self, csv_path: Path, extra: list[str], problems: list[Problem]) -> None:
        self.csv_path = csv_path
        self.base = csv_path.parent
        self.extra = extra
        self.problems = problems
        self.cases: dict[str, dict[str, Any]] = {}
        self._exists: dict[Path, bool] = {}

    def _is_file(self, p: Path) -> bool:
        if p not in self._exists:
            self._exists[p] = p.is_file()
        return self._exists[p]

    def _problem(self, line: int, text: str, cid: str | None = None) -> None:
        self.problems.append(Problem(self.csv_path, f"line {line}: {text}", cid))

    def add(self, line: int, row: dict[str, str]) -> None:
        """Take one CSV row (a problem, and the row skipped, where it is unusable)."""
        cid = nfc(row["case_id"])
        if not cid:
            self._problem(line, "empty case_id; row skipped")
            return
        c = self._case(line, cid, row["image"])
        if c is None:
            return
        for k in self.extra:
            v = row.get(k, "")
            if v and k not in c["meta"]:
                c["meta"][k] = (v, line)
        self._mask(line, cid, c, nfc(row["annotator"]), row["mask"])

    def _case(self, line: int, cid: str, img_text: str) -> dict[str, Any] | None:
        """The case record of ``cid`` (made on its first row), None if the row is skipped."""
        c = self.cases.get(cid)
        if c is None:
            if not img_text:
                self._problem(line, f"empty image for case {cid!r}; row skipped", cid)
                return None
            c = self.cases[cid] = {"image": img_text, "line": line, "masks": [], "seen": set(),
                                   "owner": {}, "meta": {}, "bad": False}
            img = _resolve(self.base, img_text)
            if not self._is_file(img):
                self._problem(line, f"missing image file {img} referenced by the CSV; case {cid!r} skipped", cid)
                c["bad"] = True
        elif img_text and img_text != c["image"] and _resolve(self.base, img_text) != _resolve(self.base, c["image"]):
            self._problem(line, f"case {cid!r} names image {img_text!r} but line {c['line']} named {c['image']!r}; row skipped", cid)
            return None
        return c

    def _mask(self, line: int, cid: str, c: dict[str, Any], ann: str, mask_text: str) -> None:
        if not mask_text:
            return
        if not ann:
            self._problem(line, f"empty annotator for mask {mask_text!r}; row skipped", cid)
            return
        mpath = _resolve(self.base, mask_text)
        if (ann, str(mpath)) in c["seen"]:
            self._problem(line, f"duplicate row (case {cid!r}, annotator {ann!r}, mask {mask_text!r}); skipped", cid)
            return
        c["seen"].add((ann, str(mpath)))
        first = c["owner"].setdefault(str(mpath), (ann, line))
        if first[0] != ann:
            self._problem(line, f"mask file {mpath} is given for annotator {ann!r} and, on line "
                          f"{first[1]}, for annotator {first[0]!r} of case {cid!r}; both kept, their "
                          "agreement is 1 by construction", cid)
        if not self._is_file(mpath):
            self._problem(line, f"missing mask file {mpath} referenced by the CSV; mask skipped", cid)
            return
        c["masks"].append((ann, mpath))


def _case_entry(cid: str, c: dict[str, Any], csv_path: Path, problems: list[Problem],
                decimal_comma: bool = False) -> CaseEntry | None:
    """The entry of one gathered case (None when its image is missing or it has no mask).

    ``decimal_comma``: metadata ``3,5`` is 3.5 (a CSV separated by ``;`` or tab).
    """
    if c["bad"]:
        return None
    img = _resolve(csv_path.parent, c["image"])
    if not c["masks"]:
        problems.append(Problem(img, "image without masks", cid))
        return None
    mpaths, raters = assign_mask_ids(c["masks"])
    meta: dict[str, Any] = {}
    for k, (v, line) in c["meta"].items():
        meta.update(clean_meta({k: v}, csv_path, line, problems, cid, decimal_comma))
    group = next((meta[k] for k in ("group", "patient", "patient_id", "lesion_id") if k in meta), None)
    return CaseEntry(cid, img, mpaths, raters, meta, str(group) if group is not None else None)


def detect_manifest(path: Path) -> bool:
    """Whether ``path`` is a CSV file or a folder with a manifest CSV."""
    if path.is_file():
        return path.suffix.lower() == ".csv"
    try:
        _manifest_csv(path, detecting=True)
    except DatasetError:
        return False
    return True

