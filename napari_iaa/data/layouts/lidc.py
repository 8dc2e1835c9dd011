"""The LIDC "slices" layout: ``<patient>/<nodule>/images/slice-<n>.png`` + ``mask-<r>/``."""

from __future__ import annotations

import os
import re
from pathlib import Path

from napari_iaa.data.case import CaseEntry, Problem
from napari_iaa.data.dataset import Dataset
from napari_iaa.data.layouts._scan import is_image_name, natural_key, scandir
from napari_iaa.errors import DatasetError

__all__ = ["detect_lidc", "read_lidc"]


def _lidc_root(path: Path) -> Path:
    inner = path / "LIDC-IDRI-slices"
    return inner if inner.is_dir() else path


def read_lidc(path: str | os.PathLike) -> Dataset:
    """Index the LIDC "slices" layout.

    Case ids are ``<patient>/<nodule>/slice-<n>``; mask ids ``r0`` .. ``r3`` (one per
    reader folder ``mask-<r>``); ``group`` is the patient; ``meta`` has ``patient``,
    ``nodule`` and ``slice``. An all-zero mask is a valid, empty mask.
    """
    root = _lidc_root(Path(path))
    if not root.is_dir():
        raise DatasetError(f"{root}: LIDC folder not found")
    entries: list[CaseEntry] = []
    problems: list[Problem] = []
    patients = _subfolders(root)
    if not patients:
        raise DatasetError(f"{root}: empty folder, no patient folders found")
    for pat in patients:
        nodules = _subfolders(pat.path, problems)
        if not nodules:
            problems.append(Problem(Path(pat.path), "empty patient folder (no nodule folders)"))
        for nod in nodules:
            entries += _nodule_entries(pat.name, nod, problems)
    return Dataset(entries, root, "lidc", problems)


def _subfolders(path: str | os.PathLike, problems: list[Problem] | None = None) -> list[os.DirEntry]:
    """Visible subfolders in natural order."""
    return sorted((e for e in scandir(path, problems) if e.is_dir() and not e.name.startswith(".")),
                  key=lambda e: natural_key(e.name))


def _nodule_files(nod: os.DirEntry, problems: list[Problem]
                  ) -> tuple[dict[str, str], list[tuple[str, dict[str, str]]]]:
    """A nodule folder's slice images and, per reader (``r<n>``), its mask files by name."""
    subs = {e.name: e.path for e in scandir(nod.path, problems) if e.is_dir()}
    mask_dirs = sorted(
        ((n, p) for n, p in subs.items() if n.startswith("mask-")),
        key=lambda t: natural_key(t[0]),
    )
    if "images" not in subs:
        problems.append(Problem(Path(nod.path), "no 'images' folder in this nodule folder"))
        images: dict[str, str] = {}
    else:
        images = {e.name: e.path for e in scandir(subs["images"], problems) if is_image_name(e.name)}
        if not images:
            problems.append(Problem(Path(subs["images"]), "empty folder (no slice images)"))
    masks_by_reader: list[tuple[str, dict[str, str]]] = []
    for mname, mpath in mask_dirs:
        rid = "r" + mname[len("mask-") :]
        files = {e.name: e.path for e in scandir(mpath, problems) if is_image_name(e.name)}
        masks_by_reader.append((rid, files))
        for fname in files.keys() - images.keys():
            problems.append(Problem(Path(files[fname]), "mask without an image (no images/" + fname + ")"))
    return images, masks_by_reader


def _nodule_entries(patient: str, nod: os.DirEntry, problems: list[Problem]) -> list[CaseEntry]:
    """One entry per slice of a nodule that has at least one reader's mask."""
    images, masks_by_reader = _nodule_files(nod, problems)
    entries = []
    for fname in sorted(images, key=natural_key):
        stem = os.path.splitext(fname)[0]
        cid = f"{patient}/{nod.name}/{stem}"
        mpaths: dict[str, Path] = {}
        for rid, files in masks_by_reader:
            if fname in files:
                mpaths[rid] = Path(files[fname])
        img_path = Path(images[fname])
        if not mpaths:
            problems.append(Problem(img_path, "image without masks", cid))
            continue
        if len(mpaths) < len(masks_by_reader):
            lacking = [r for r, _ in masks_by_reader if r not in mpaths]
            problems.append(
                Problem(img_path, f"no mask file for reader(s) {', '.join(lacking)}; case kept with {len(mpaths)} mask(s)", cid)
            )
        m = re.fullmatch(r"slice-(\d+)", stem)
        entries.append(
            CaseEntry(
                case_id=cid,
                image_path=img_path,
                mask_paths=mpaths,
                raters={r: r for r in mpaths},
                meta={"patient": patient, "nodule": nod.name, "slice": int(m.group(1)) if m else stem},
                group=patient,
            )
        )
    return entries


def detect_lidc(path: Path) -> bool:
    """Whether ``path`` (or its ``LIDC-IDRI-slices``) holds nodule folders with masks."""
    root = _lidc_root(path)
    if not root.is_dir():
        return False
    n = 0
    for pat in scandir(root):
        if not pat.is_dir() or pat.name.startswith("."):
            continue
        for nod in scandir(pat.path):
            if nod.is_dir():
                names = {e.name for e in scandir(nod.path) if e.is_dir()}
                if "images" in names and any(x.startswith("mask-") for x in names):
                    return True
        n += 1
        if n >= 3:
            break
    return False

