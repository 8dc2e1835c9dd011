"""The LIDC "slices" layout: ``<patient>/<nodule>/images/slice-<n>.png`` + ``mask-<r>/``.

Two units of review: ``slice`` (one 2D case per slice, the default) and ``nodule`` (one
volume case per nodule, its slices stacked in slice-number order).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

from napari_iaa.data.case import CaseEntry, Problem
from napari_iaa.data.dataset import Dataset
from napari_iaa.data.layouts._scan import is_image_name, natural_key, scandir
from napari_iaa.data.layouts._stack import SliceStackEntry
from napari_iaa.errors import DatasetError

__all__ = ["LIDC_UNITS", "detect_lidc", "read_lidc"]

#: units of review of the LIDC layout; the first is the default
LIDC_UNITS = ("slice", "nodule")


def _lidc_root(path: Path) -> Path:
    inner = path / "LIDC-IDRI-slices"
    return inner if inner.is_dir() else path


class _Folder(NamedTuple):
    """A folder given by path, with the ``name``/``path`` an ``os.DirEntry`` has."""

    name: str
    path: str


def _dirs(path: str | os.PathLike) -> list[os.DirEntry]:
    """Visible subfolders in natural order; none for an unlistable folder (read reports it)."""
    try:
        return _subfolders(path)
    except DatasetError:
        return []


def _is_nodule(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds an ``images`` folder and a ``mask-<r>`` folder."""
    names = {e.name for e in _dirs(path)}
    return "images" in names and any(x.startswith("mask-") for x in names)


def _is_patient(path: str | os.PathLike) -> bool:
    """Whether one of ``path``'s subfolders is a nodule folder."""
    return any(_is_nodule(e.path) for e in _dirs(path))


def _level(path: Path) -> str | None:
    """What ``path`` is in the layout: ``"root"``, ``"patient"``, ``"nodule"`` or None.

    ``root``: patient folders inside (or a ``LIDC-IDRI-slices`` folder); ``patient``:
    nodule folders inside; ``nodule``: ``images`` and ``mask-<r>`` inside.
    """
    root = _lidc_root(path)
    if not root.is_dir():
        return None
    if _is_nodule(root):
        return "nodule"
    for pat in _dirs(root)[:3]:
        if _is_nodule(pat.path):
            return "patient"
        if _is_patient(pat.path):
            return "root"
    return None


def read_lidc(path: str | os.PathLike, unit: str = "slice") -> Dataset:
    """Index the LIDC "slices" layout.

    Parameters
    ----------
    path : path-like
        The ``LIDC-IDRI-slices`` folder or the folder that contains it; or one patient's
        folder (``LIDC-IDRI-0001``, nodule folders inside) or one nodule's folder
        (``images`` and ``mask-<r>`` inside), indexed as a data set of that patient or
        nodule with the same case ids (the patient named by the folder, or by its parent
        for a nodule folder).
    unit : {"slice", "nodule"}
        ``slice`` (default): one 2D case per slice, id ``<patient>/<nodule>/slice-<n>``,
        ``meta`` ``patient``, ``nodule``, ``slice``. ``nodule``: one volume case per
        nodule, id ``<patient>/<nodule>``: the slices stacked in slice-number order
        (image ``(k, 128, 128)``, masks ``(k, 128, 128)``), ``meta`` ``patient``,
        ``nodule``, ``slices`` (the slice numbers, in stack order) and ``n_slices``.
        Missing slice numbers (gaps, e.g. 3, 4, 6) are not filled in: the stack keeps the
        slices in order, next to each other, and ``slices`` says which they are. The PNG
        crops carry no spacing: ``Case.spacing`` is None (unit voxels).

    Notes
    -----
    Mask ids are ``r0`` .. ``r3`` (one per reader folder ``mask-<r>``); ``group`` is the
    patient. An all-zero mask is a valid, empty mask. Indexing reads no pixels. Per
    nodule, a slice without any mask file is left out (as the slice unit leaves it out),
    and a reader who lacks the mask file of a kept slice is left out of that nodule; both
    are recorded in ``ds.problems``.
    """
    if unit not in LIDC_UNITS:
        raise DatasetError(
            f"{path}: unknown unit {unit!r} for the LIDC layout (one of {', '.join(LIDC_UNITS)})"
        )
    root = _lidc_root(Path(path))
    if not root.is_dir():
        raise DatasetError(f"{root}: LIDC folder not found")
    entries: list[CaseEntry] = []
    problems: list[Problem] = []
    level = _level(root)
    full = root.resolve()
    if level == "nodule":  # one nodule: its patient is the folder above
        groups = [(_Folder(full.parent.name, str(full.parent)), [_Folder(full.name, str(root))])]
    elif level == "patient":
        groups = [(_Folder(full.name, str(root)), _subfolders(root, problems))]
    else:
        patients = _subfolders(root)
        if not patients:
            raise DatasetError(f"{root}: empty folder, no patient folders found")
        groups = [(pat, _subfolders(pat.path, problems)) for pat in patients]
    for pat, nodules in groups:
        if not nodules:
            problems.append(Problem(Path(pat.path), "empty patient folder (no nodule folders)"))
        for nod in nodules:
            if unit == "slice":
                entries += _nodule_entries(pat.name, nod, problems)
            else:
                entries += _nodule_stack(pat.name, nod, problems)
    return Dataset(entries, root, "lidc", problems)


def _subfolders(path: str | os.PathLike, problems: list[Problem] | None = None) -> list[os.DirEntry]:
    """Visible subfolders in natural order."""
    return sorted((e for e in scandir(path, problems) if e.is_dir() and not e.name.startswith(".")),
                  key=lambda e: natural_key(e.name))


def _nodule_files(nod: os.DirEntry, problems: list[Problem]
                  ) -> tuple[dict[str, str], list[tuple[str, dict[str, str]]], dict[str, str]]:
    """A nodule folder's slice images, each reader's mask files by name, and its folder."""
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
    folders: dict[str, str] = {}
    for mname, mpath in mask_dirs:
        rid = "r" + mname[len("mask-") :]
        files = {e.name: e.path for e in scandir(mpath, problems) if is_image_name(e.name)}
        masks_by_reader.append((rid, files))
        folders[rid] = mpath
        for fname in files.keys() - images.keys():
            problems.append(Problem(Path(files[fname]), "mask without an image (no images/" + fname + ")"))
    return images, masks_by_reader, folders


def _slice_number(stem: str) -> int | str:
    m = re.fullmatch(r"slice-(\d+)", stem)
    return int(m.group(1)) if m else stem


def _nodule_entries(patient: str, nod: os.DirEntry, problems: list[Problem]) -> list[CaseEntry]:
    """One entry per slice of a nodule that has at least one reader's mask."""
    images, masks_by_reader, _ = _nodule_files(nod, problems)
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
        entries.append(
            CaseEntry(
                case_id=cid,
                image_path=img_path,
                mask_paths=mpaths,
                raters={r: r for r in mpaths},
                meta={"patient": patient, "nodule": nod.name, "slice": _slice_number(stem)},
                group=patient,
            )
        )
    return entries


def _nodule_stack(patient: str, nod: os.DirEntry, problems: list[Problem]) -> list[CaseEntry]:
    """The nodule as one volume entry (a list of one), or none when nothing is left."""
    images, masks_by_reader, folders = _nodule_files(nod, problems)
    cid = f"{patient}/{nod.name}"
    kept = []
    for fname in sorted(images, key=natural_key):  # slice-<n>: slice-number order
        if any(fname in files for _, files in masks_by_reader):
            kept.append(fname)
        else:
            problems.append(Problem(Path(images[fname]), "image without masks; slice left out of the nodule", cid))
    mask_slices: dict[str, list[Path]] = {}
    for rid, files in masks_by_reader:
        lacking = [f for f in kept if f not in files]
        if lacking:
            names = ", ".join(os.path.splitext(f)[0] for f in lacking)
            problems.append(Problem(Path(folders[rid]), f"no mask file for {names}; reader {rid} left out of nodule {cid}", cid))
            continue
        mask_slices[rid] = [Path(files[f]) for f in kept]
    if not kept or not mask_slices:
        if kept:
            problems.append(Problem(Path(nod.path), "no reader has a mask for every slice; nodule left out", cid))
        return []
    slices = [_slice_number(os.path.splitext(f)[0]) for f in kept]
    return [
        SliceStackEntry(
            case_id=cid,
            image_path=Path(images[kept[0]]).parent,
            mask_paths={r: Path(folders[r]) for r in mask_slices},
            raters={r: r for r in mask_slices},
            meta={"patient": patient, "nodule": nod.name, "slices": slices, "n_slices": len(slices)},
            group=patient,
            image_slices=[Path(images[f]) for f in kept],
            mask_slices=mask_slices,
        )
    ]


def detect_lidc(path: Path) -> bool:
    """Whether ``path`` (or its ``LIDC-IDRI-slices``) is a LIDC folder.

    Patient folders with nodule folders inside, one patient's folder, or one nodule's.
    """
    return _level(path) is not None

