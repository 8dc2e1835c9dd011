"""The folders layout: ``<root>/<case>/image.<ext>`` + ``<annotator>.<ext>``, and one case."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from napari_iaa.data.case import Case, CaseEntry, Problem
from napari_iaa.data.dataset import Dataset, load_entry
from napari_iaa.data.layouts._csv import clean_meta
from napari_iaa.data.layouts._scan import (
    file_stem,
    is_image_name,
    natural_key,
    nfc,
    note_case_variants,
    scandir,
)
from napari_iaa.errors import DatasetError

__all__ = ["detect_folders", "open_case", "read_folders"]

_IMAGE_STEMS = ("image", "img")


def _folder_entry(case_dir: Path, case_id: str, problems: list[Problem]) -> CaseEntry | None:
    files = sorted(
        (e for e in scandir(case_dir, problems) if e.is_file() and is_image_name(e.name)),
        key=lambda e: (natural_key(file_stem(e.name)), e.name),
    )
    candidates = [e for e in files if file_stem(e.name).lower() in _IMAGE_STEMS]
    candidates.sort(key=lambda e: _IMAGE_STEMS.index(file_stem(e.name).lower()))
    image = Path(candidates[0].path) if candidates else None
    for e in candidates[1:]:  # image.png and img.png: neither is an annotator's mask
        problems.append(Problem(Path(e.path), f"second image in this case folder (kept {image.name}); ignored", case_id))
    masks = [e for e in files if e not in candidates]
    if image is None:
        if masks:
            problems.append(Problem(case_dir, f"{len(masks)} mask(s) without an image (no image.<ext> in this folder)", case_id))
        else:
            problems.append(Problem(case_dir, "empty folder (no image, no masks)", case_id))
        return None
    if not masks:
        problems.append(Problem(image, "image without masks", case_id))
        return None
    mpaths: dict[str, Path] = {}
    raters: dict[str, str] = {}
    for e in masks:
        mid = nfc(file_stem(e.name))  # one id whichever Unicode form the file system gave
        if mid in mpaths:
            problems.append(Problem(Path(e.path), f"second mask with id {mid!r} (kept {mpaths[mid].name})", case_id))
            continue
        mpaths[mid] = Path(e.path)
        raters[mid] = mid.split("#", 1)[0]
    meta: dict[str, Any] = {}
    mfile = case_dir / "meta.json"
    if mfile.is_file():
        try:
            data = json.loads(mfile.read_text(encoding="utf-8-sig"))  # BOM: Windows editors
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            meta = clean_meta({str(k): ("" if v is None else str(v)) for k, v in data.items() if not isinstance(v, (dict, list))}, mfile, None, problems, case_id)
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(Problem(mfile, f"unreadable metadata ({exc}); ignored", case_id))
    group = meta.get("group", meta.get("patient"))
    return CaseEntry(case_id, image, mpaths, raters, meta, str(group) if group is not None else None)


def read_folders(path: str | os.PathLike) -> Dataset:
    """Index a folder per case: ``<root>/<case>/image.<ext>`` + ``<annotator>.<ext>``.

    Mask ids are the mask file stems (``A04#2.png`` -> mask ``A04#2`` of annotator
    ``A04``; ``r0.nii.gz`` -> ``r0``); an optional ``meta.json`` per case folder goes to
    ``meta``. Images and masks may be PNG, TIFF, ``.npy`` or volumes (NIfTI, NRRD,
    MetaImage); the data files of ``.mhd`` / ``.nhdr`` headers are not taken for masks.
    """
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"{root}: folder not found")
    dirs = sorted((e for e in scandir(root) if e.is_dir() and not e.name.startswith(".")), key=lambda e: natural_key(e.name))
    if not dirs:
        raise DatasetError(f"{root}: empty folder, no case folders found")
    problems: list[Problem] = []
    entries = [e for d in dirs if (e := _folder_entry(Path(d.path), d.name, problems)) is not None]
    note_case_variants(entries, root, problems)
    return Dataset(entries, root, "folders", problems)


def detect_folders(path: Path) -> bool:
    """Whether ``path`` holds case folders with an ``image.<ext>`` (looks at five)."""
    if not path.is_dir():
        return False
    n = 0
    for d in scandir(path):
        if d.is_dir() and not d.name.startswith("."):
            for f in scandir(d.path):
                if f.is_file() and file_stem(f.name).lower() in _IMAGE_STEMS and is_image_name(f.name):
                    return True
            n += 1
            if n >= 5:
                break
    return False


def open_case(path: str | os.PathLike) -> Case:
    """Open one case folder (``image.<ext>`` + one mask file per annotator) and decode it.

    Raises
    ------
    DatasetError
        The folder has no image or no masks, or a file cannot be read.
    """
    case_dir = Path(path)
    if not case_dir.is_dir():
        raise DatasetError(f"{case_dir}: case folder not found")
    problems: list[Problem] = []
    entry = _folder_entry(case_dir, case_dir.name, problems)
    if entry is None:
        raise DatasetError(str(problems[0]) if problems else f"{case_dir}: not a case folder")
    case, _ = load_entry(entry, strict=True)
    return case

