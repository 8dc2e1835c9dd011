"""Folder listing and file-name rules shared by the layout readers (no pixel is decoded)."""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from napari_iaa.data.case import Problem
from napari_iaa.data.io import has_image_suffix
from napari_iaa.data.volumes import split_volume_suffix
from napari_iaa.errors import DatasetError

__all__ = ["assign_mask_ids", "file_stem", "is_image_name", "natural_key", "nfc", "note_case_variants",
           "other_normal_form", "scandir"]

_NUM = re.compile(r"(\d+)")


def natural_key(text: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in _NUM.split(text)]


_EDITED = re.compile(r"_edited-[^/\\]*-\d{8}-\d{6}(-\d+)?\.[a-z]+(\.gz)?$", re.IGNORECASE)


def nfc(text: str) -> str:
    """``text`` in Unicode's composed form (NFC), for ids taken from file names or CSV cells.

    macOS writes file names decomposed (NFD: ``e`` + combining accent), Linux and Windows
    keep what they are given, so one annotator ``José`` copied between machines can arrive
    in both forms; as ids they must be one annotator.
    """
    return unicodedata.normalize("NFC", text) if not text.isascii() else text


def note_case_variants(entries: Iterable[Any], where: Path, problems: list[Problem]) -> None:
    """Record annotator ids that differ only in letter case (``R1`` and ``r1``).

    They are read as different annotators, as written; the note names each spelling and
    the cases it has, so a user whose files were renamed by hand can see it.
    """
    spellings: dict[str, Counter[str]] = {}
    for entry in entries:
        for annotator in set(entry.raters.values()):
            spellings.setdefault(annotator.casefold(), Counter())[annotator] += 1
    for counts in spellings.values():
        if len(counts) > 1:
            named = " and ".join(f"{a!r} ({n} case{'s' if n != 1 else ''})" for a, n in counts.most_common())
            problems.append(Problem(where, f"annotator ids that differ only in letter case: {named}; read "
                                    "as different annotators (rename one spelling if they are one)", None))


def other_normal_form(path: Path) -> Path | None:
    """``path`` in the other Unicode form (NFC <-> NFD), if only that file exists.

    None when ``path`` exists, when neither does, or when it is ASCII (one form only).
    """
    text = str(path)
    if text.isascii() or path.exists():
        return None
    for form in ("NFC", "NFD"):
        other = Path(unicodedata.normalize(form, text))
        if str(other) != text and other.exists():
            return other
    return None


def file_stem(name: str) -> str:
    """The name without its image suffix; ``.nii.gz`` counts as one (``r0.nii.gz`` -> ``r0``)."""
    return split_volume_suffix(name)[0]


def is_image_name(name: str) -> bool:
    """Whether ``name`` is an image or mask of the data set.

    Hidden files (temporary files of atomic writes) are not, nor are edits saved beside
    their original by ``save_edited_mask`` (an edit is not an annotator).
    """
    return (
        not name.startswith(".")
        and has_image_suffix(name)
        and _EDITED.search(name) is None
    )


def scandir(path: str | os.PathLike, problems: list[Problem] | None = None) -> list[os.DirEntry]:
    """Entries of a folder; with ``problems`` an unreadable folder is recorded, not raised."""
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError as exc:
        if problems is None:
            raise DatasetError(f"{path}: cannot list folder ({exc.strerror or exc})") from None
        problems.append(Problem(Path(path), f"cannot list folder ({exc.strerror or exc}); skipped"))
        return []



def assign_mask_ids(items: list[tuple[str, Path]]) -> tuple[dict[str, Path], dict[str, str]]:
    """``[(annotator, path)]`` -> mask ids ``A04``, ``A04#2`` ... and their raters."""
    counts: dict[str, int] = {}
    paths: dict[str, Path] = {}
    raters: dict[str, str] = {}
    for ann, p in items:
        counts[ann] = counts.get(ann, 0) + 1
        mid = ann if counts[ann] == 1 else f"{ann}#{counts[ann]}"
        paths[mid] = p
        raters[mid] = ann
    return paths, raters
