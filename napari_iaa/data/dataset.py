"""The lazy data set index."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_iaa.data.case import (
    Case,
    CaseEntry,
    Problem,
    ValidationReport,
    check_case_id,
    strip_path,
)
from napari_iaa.errors import DatasetError, IAAError

if TYPE_CHECKING:
    import pandas

__all__ = ["Dataset", "CaseNotFoundError", "load_entry"]


class CaseNotFoundError(DatasetError, KeyError):
    """No case with that id in the data set."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def load_entry(entry: CaseEntry, strict: bool = True) -> tuple[Case, list[Problem]]:
    """Decode one entry (:meth:`CaseEntry.load`: its image and masks, or its slice stacks)."""
    return entry.load(strict=strict)


def _error_path(exc: Exception, entry: CaseEntry) -> Path:
    msg = str(exc)
    for p in entry.files():
        if msg.startswith(f"{p}:"):
            return Path(p)
    return Path(entry.image_path)


class Dataset:
    """A lazy index of cases: nothing is decoded until a case is asked for.

    Parameters
    ----------
    entries : sequence of CaseEntry
        The cases found by a reader. Entries with unsafe or duplicate ids are dropped and
        recorded in ``problems``.
    root : path-like
        Where the data set lives.
    layout : str
        Name of the reader that built it.
    problems : list of Problem, optional
        Problems the reader found while indexing.
    unit : str, optional
        The unit of review, for a layout that offers a choice (LIDC: "slice" or "nodule").

    Notes
    -----
    ``len``, iteration (yields :class:`Case`, skipping and recording cases that fail to
    load), ``ds[case_id]`` / ``ds[i]``, ``case_id in ds``.
    """

    def __init__(
        self,
        entries: Iterable[CaseEntry],
        root: str | os.PathLike,
        layout: str = "custom",
        problems: Sequence[Problem] | None = None,
        unit: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.layout = layout
        #: the unit of review a layout with a choice was read at ("slice", "nodule"); None
        #: for a layout with one case per image
        self.unit = unit
        self.problems: list[Problem] = list(problems or [])
        self._seen_problems: set[tuple[str, str]] = {(str(p.path), p.message) for p in self.problems}
        self._entries: dict[str, CaseEntry] = {}
        for e in entries:
            try:
                check_case_id(e.case_id, e.image_path)
            except DatasetError as exc:
                self._add_problem(Problem(e.image_path, strip_path(str(exc), e.image_path), None))
                continue
            if e.case_id in self._entries:
                first = self._entries[e.case_id].image_path
                self._add_problem(
                    Problem(
                        e.image_path,
                        f"duplicate case id {e.case_id!r} (first seen at {first}); kept the first",
                        e.case_id,
                    )
                )
                continue
            self._entries[e.case_id] = e
        self._ids = list(self._entries)

    # ------------------------------------------------------------------ container
    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, case_id: object) -> bool:
        return case_id in self._entries

    def __iter__(self) -> Iterator[Case]:
        for cid in list(self._ids):
            try:
                yield self.load(cid)
            except IAAError as exc:
                entry = self._entries[cid]
                path = _error_path(exc, entry)
                self._add_problem(Problem(path, strip_path(str(exc), path), cid))

    def __getitem__(self, key: str | int) -> Case:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            return self.load(self._ids[int(key)])
        return self.load(key)

    def __repr__(self) -> str:
        return (
            f"Dataset(layout={self.layout!r}, root={str(self.root)!r}, cases={len(self)}, "
            f"problems={len(self.problems)})"
        )

    # ------------------------------------------------------------------ access
    @property
    def ids(self) -> list[str]:
        """Case ids in order."""
        return list(self._ids)

    @property
    def entries(self) -> list[CaseEntry]:
        """Index entries in order."""
        return [self._entries[c] for c in self._ids]

    def entry(self, case_id: str) -> CaseEntry:
        """The index entry (paths and metadata, no pixels) of a case."""
        try:
            return self._entries[case_id]
        except (KeyError, TypeError):
            raise CaseNotFoundError(
                f"{self.root}: no case {case_id!r} in this data set ({len(self)} cases)"
            ) from None

    def load(self, case_id: str, strict: bool = True) -> Case:
        """Decode one case.

        Parameters
        ----------
        case_id : str
            The case.
        strict : bool
            Raise on any bad mask (default). With ``False`` bad masks are left out,
            recorded in :attr:`problems` and listed in ``case.meta["skipped_masks"]``.

        Raises
        ------
        CaseNotFoundError, ImageReadError, ShapeMismatchError
            Messages name the file.
        """
        entry = self.entry(case_id)
        case, problems = load_entry(entry, strict=strict)
        for p in problems:
            self._add_problem(p)
        return case

    def subset(self, case_ids: Iterable[str]) -> Dataset:
        """A data set with only the given cases (same root, layout and unit; no problems)."""
        return Dataset([self.entry(c) for c in case_ids], self.root, self.layout, unit=self.unit)

    def _add_problem(self, problem: Problem) -> None:
        key = (str(problem.path), problem.message)
        if key not in self._seen_problems:
            self._seen_problems.add(key)
            self.problems.append(problem)

    # ------------------------------------------------------------------ checks
    def validate(
        self,
        check_pixels: bool = False,
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> ValidationReport:
        """Check every case.

        Parameters
        ----------
        check_pixels : bool
            Decode every image and mask (shapes, truncation); otherwise only check that
            the files exist and are not empty.
        progress, should_stop
            Progress callback ``(done, total)`` and cancel check.

        Returns
        -------
        ValidationReport
            The ids that passed and every problem, including the index-time ones.
        """
        ok: list[str] = []
        problems: list[Problem] = list(self.problems)
        seen = {(str(p.path), p.message) for p in problems}
        total = len(self._ids)
        for i, cid in enumerate(self._ids):
            if should_stop is not None and should_stop():
                break
            entry = self._entries[cid]
            found: list[Problem] = []
            if check_pixels:
                try:
                    load_entry(entry, strict=True)
                except IAAError as exc:
                    path = _error_path(exc, entry)
                    found.append(Problem(path, strip_path(str(exc), path), cid))
            else:
                for f in entry.files():
                    try:
                        size = os.stat(f).st_size
                    except OSError:
                        found.append(Problem(Path(f), "file not found", cid))
                        continue
                    if size == 0:
                        found.append(Problem(Path(f), "empty file (0 bytes)", cid))
            if not entry.mask_paths:
                found.append(Problem(entry.image_path, "image without masks", cid))
            if found:
                for p in found:
                    if (str(p.path), p.message) not in seen:
                        seen.add((str(p.path), p.message))
                        problems.append(p)
            else:
                ok.append(cid)
            if progress is not None:
                progress(i + 1, total)
        return ValidationReport(ok=ok, problems=problems, checked_pixels=check_pixels)

    # ------------------------------------------------------------------ tables
    def metadata(self) -> pandas.DataFrame:
        """One row per case, as a table.

        Columns: ``case_id``, ``n_annotators``, ``n_masks``, ``annotators``, ``group`` and
        every scalar meta column (nested values are left out).
        """
        rows: list[dict[str, Any]] = []
        for cid in self._ids:
            e = self._entries[cid]
            row: dict[str, Any] = {
                "case_id": cid,
                "n_annotators": e.n_annotators,
                "n_masks": len(e.mask_paths),
                "annotators": ",".join(e.annotators),
                "group": e.group,
            }
            for k, v in e.meta.items():
                if k in row:
                    continue
                if v is None or isinstance(v, (str, int, float, bool, np.generic)):
                    if isinstance(v, float) and math.isnan(v):
                        v = None
                    row[k] = v
            rows.append(row)
        import pandas as pd

        cols = ["case_id", "n_annotators", "n_masks", "annotators", "group"]
        df = pd.DataFrame(rows, columns=None if rows else cols)
        return df
