"""Layout readers: find cases on disk without decoding any pixel.

Four layouts are registered in :data:`LAYOUTS`:

``lidc``
    ``<root>/<patient>/<nodule>/images/slice-<n>.png`` + ``mask-<r>/slice-<n>.png``; the
    root may also be the folder that contains ``LIDC-IDRI-slices``.
``imapp``
    IMA++: ``images/``, ``masks/`` named ``{ISIC_id}_{annotator}_{tool}_{skill}_{objectid}``
    and optional ``*seg_metadata.csv`` / ``*img_metadata.csv``.
``manifest``
    A CSV with ``case_id,image,annotator,mask`` (+ optional columns copied to ``meta``).
``folders``
    ``<root>/<case>/image.<ext>`` + ``<root>/<case>/<annotator>.<ext>``.

Problems found while indexing (a mask without an image, a missing file named by a CSV, a
duplicate id ...) are collected in ``Dataset.problems``; the rest of the data set loads.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_iaa.data.case import Case, CaseEntry, Problem
from napari_iaa.data.dataset import Dataset, load_entry
from napari_iaa.data.io import IMAGE_EXTENSIONS
from napari_iaa.errors import DatasetError

__all__ = [
    "LAYOUTS",
    "LayoutReader",
    "detect_layout",
    "open_dataset",
    "open_case",
    "read_lidc",
    "read_imapp",
    "read_manifest",
    "read_folders",
    "read_csv_rows",
    "register_layout",
]

_NUM = re.compile(r"(\d+)")


def _natural_key(text: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in _NUM.split(text)]


_EDITED = re.compile(r"_edited-[^/\\]*-\d{8}-\d{6}(-\d+)?\.png$", re.IGNORECASE)


def _is_image_name(name: str) -> bool:
    """An image or mask of the data set: not hidden (temp files of atomic writes), not an
    edit saved beside its original by ``save_edited_mask`` (an edit is not an annotator)."""
    return (
        not name.startswith(".")
        and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
        and _EDITED.search(name) is None
    )


def _scandir(path: str | os.PathLike, problems: list[Problem] | None = None) -> list[os.DirEntry]:
    """Entries of a folder; with ``problems`` an unreadable folder is recorded, not raised."""
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError as exc:
        if problems is None:
            raise DatasetError(f"{path}: cannot list folder ({exc.strerror or exc})") from None
        problems.append(Problem(Path(path), f"cannot list folder ({exc.strerror or exc}); skipped"))
        return []


# --------------------------------------------------------------------------- CSV helpers
def read_csv_rows(
    path: str | os.PathLike, required: tuple[str, ...] = ()
) -> tuple[list[str], list[tuple[int, dict[str, str]]], list[Problem]]:
    """Read a CSV strictly: UTF-8 (BOM allowed), balanced quotes, known columns.

    Returns
    -------
    header, rows, problems
        Column names (stripped), ``(line_number, {column: value})`` per data row, and a
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
            if len(fields) != len(header):
                problems.append(
                    Problem(
                        path,
                        f"line {line}: {len(fields)} fields where the header has "
                        f"{len(header)}; row skipped",
                    )
                )
                continue
            rows.append((line, {h: v.strip() for h, v in zip(header, fields)}))
    except csv.Error as exc:
        raise DatasetError(
            f"{path}: line {reader.line_num}: malformed CSV ({exc}); check for a stray quote"
        ) from None
    if header is None:
        raise DatasetError(f"{path}: empty CSV (no header row)")
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


def _clean_meta(
    values: dict[str, str],
    source: Path,
    line: int | None,
    problems: list[Problem],
    case_id: str | None,
) -> dict[str, Any]:
    """Turn CSV strings into meta values: missing -> left out, numbers parsed, NaN and
    out-of-range values dropped with a problem naming the CSV, line and column."""
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


def _assign_mask_ids(items: list[tuple[str, Path]]) -> tuple[dict[str, Path], dict[str, str]]:
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


# --------------------------------------------------------------------------- LIDC
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
    patients = sorted((e for e in _scandir(root) if e.is_dir() and not e.name.startswith(".")), key=lambda e: _natural_key(e.name))
    if not patients:
        raise DatasetError(f"{root}: empty folder, no patient folders found")
    for pat in patients:
        nodules = sorted((e for e in _scandir(pat.path, problems) if e.is_dir() and not e.name.startswith(".")), key=lambda e: _natural_key(e.name))
        if not nodules:
            problems.append(Problem(Path(pat.path), "empty patient folder (no nodule folders)"))
        for nod in nodules:
            subs = {e.name: e.path for e in _scandir(nod.path, problems) if e.is_dir()}
            mask_dirs = sorted(
                ((n, p) for n, p in subs.items() if n.startswith("mask-")),
                key=lambda t: _natural_key(t[0]),
            )
            if "images" not in subs:
                problems.append(Problem(Path(nod.path), "no 'images' folder in this nodule folder"))
                images: dict[str, str] = {}
            else:
                images = {e.name: e.path for e in _scandir(subs["images"], problems) if _is_image_name(e.name)}
                if not images:
                    problems.append(Problem(Path(subs["images"]), "empty folder (no slice images)"))
            masks_by_reader: list[tuple[str, dict[str, str]]] = []
            for mname, mpath in mask_dirs:
                rid = "r" + mname[len("mask-") :]
                files = {e.name: e.path for e in _scandir(mpath, problems) if _is_image_name(e.name)}
                masks_by_reader.append((rid, files))
                for fname in files.keys() - images.keys():
                    problems.append(Problem(Path(files[fname]), "mask without an image (no images/" + fname + ")"))
            for fname in sorted(images, key=_natural_key):
                stem = os.path.splitext(fname)[0]
                cid = f"{pat.name}/{nod.name}/{stem}"
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
                        meta={"patient": pat.name, "nodule": nod.name, "slice": int(m.group(1)) if m else stem},
                        group=pat.name,
                    )
                )
    return Dataset(entries, root, "lidc", problems)


def _detect_lidc(path: Path) -> bool:
    root = _lidc_root(path)
    if not root.is_dir():
        return False
    n = 0
    for pat in _scandir(root):
        if not pat.is_dir() or pat.name.startswith("."):
            continue
        for nod in _scandir(pat.path):
            if nod.is_dir():
                names = {e.name for e in _scandir(nod.path) if e.is_dir()}
                if "images" in names and any(x.startswith("mask-") for x in names):
                    return True
        n += 1
        if n >= 3:
            break
    return False


# --------------------------------------------------------------------------- IMA++
_IMAGES_DIRS = ("images", "imgs", "image")
_MASKS_DIRS = ("masks", "segmentations", "segs", "mask")
CONSENSUS = ("ST", "MV")
#: Missing files named by an IMA++ CSV listed one by one; beyond that, one summary problem.
MAX_LISTED_MISSING = 20


def _find_child(root: Path, names: tuple[str, ...]) -> Path | None:
    children = {e.name.lower(): Path(e.path) for e in _scandir(root) if e.is_dir()}
    for n in names:
        if n in children:
            return children[n]
    return None


def _find_csvs(root: Path, suffix: str) -> list[Path]:
    found: list[Path] = []
    for folder in (root, root / "metadata"):
        if folder.is_dir():
            found += [Path(e.path) for e in _scandir(folder) if e.is_file() and e.name.lower().endswith(suffix)]
    return sorted(found)


def parse_imapp_mask_name(name: str) -> dict[str, str] | None:
    """Split ``{ISIC_id}_{annotator}_{tool}_{skill}_{objectid}.png`` (ISIC ids contain ``_``).

    Consensus masks ``{ISIC_id}_ST_ST_ST_ST`` / ``_MV_MV_MV_MV`` give annotator ``ST`` /
    ``MV``. Returns None when the name does not follow the pattern.
    """
    stem = os.path.splitext(name)[0]
    parts = stem.split("_")
    if len(parts) < 5:
        return None
    isic = "_".join(parts[:-4])
    ann, tool, skill, obj = parts[-4:]
    if not isic or not ann:
        return None
    return {"ISIC_id": isic, "annotator": ann, "tool": tool, "skill_level": skill, "mskObjectID": obj}


def read_imapp(path: str | os.PathLike) -> Dataset:
    """Index the IMA++ layout (images folder, masks folder, optional metadata CSVs).

    Mask ids are annotator ids, ``"A04#2"`` for a second mask by the same annotator on an
    image. Consensus masks (``ST``, ``MV``) are not annotators: their paths go to
    ``meta["consensus"]``. ``meta`` gets the image metadata row (``benign_malignant``,
    ``diagnosis_1`` ...), ``meta["tools"]`` / ``meta["skill_levels"]`` per mask id.
    ``group`` is the lesion id, else the patient id, else the case id.
    """
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"{root}: folder not found")
    img_dir = _find_child(root, _IMAGES_DIRS)
    mask_dir = _find_child(root, _MASKS_DIRS)
    if img_dir is None or mask_dir is None:
        raise DatasetError(f"{root}: IMA++ layout needs an 'images' and a 'masks' folder")
    problems: list[Problem] = []

    images: dict[str, Path] = {}
    for e in sorted(_scandir(img_dir), key=lambda e: e.name):
        if e.is_file() and _is_image_name(e.name):
            stem = os.path.splitext(e.name)[0]
            if stem in images:
                problems.append(Problem(Path(e.path), f"second image for {stem!r} (kept {images[stem].name})", stem))
                continue
            images[stem] = Path(e.path)
    mask_files = {e.name: Path(e.path) for e in _scandir(mask_dir) if e.is_file() and _is_image_name(e.name)}
    if not images and not mask_files:
        raise DatasetError(f"{root}: empty data set (no images in {img_dir.name}/, no masks in {mask_dir.name}/)")

    # one record per mask file: ISIC_id, annotator, tool, skill_level, image stem
    records: dict[str, dict[str, str]] = {}
    for seg_csv in _find_csvs(root, "seg_metadata.csv"):
        try:
            _, rows, probs = read_csv_rows(seg_csv, required=("ISIC_id", "seg_filename", "annotator"))
        except DatasetError as exc:
            problems.append(Problem(seg_csv, str(exc).split(": ", 1)[-1] + "; mask names parsed instead"))
            continue
        problems += probs
        n_missing = 0
        for line, row in rows:
            fname = row["seg_filename"]
            if fname in records:
                continue
            if fname not in mask_files:
                n_missing += 1
                if n_missing <= MAX_LISTED_MISSING:
                    problems.append(Problem(seg_csv, f"line {line}: missing file masks/{fname} referenced by the CSV", row["ISIC_id"] or None))
                continue
            rec = {k: row.get(k, "") for k in ("ISIC_id", "annotator", "tool", "skill_level", "mskObjectID")}
            img_fn = row.get("img_filename", "")
            rec["image_stem"] = os.path.splitext(img_fn)[0] if img_fn else rec["ISIC_id"]
            if not rec["ISIC_id"] or not rec["annotator"]:
                problems.append(Problem(seg_csv, f"line {line}: empty ISIC_id or annotator; row skipped"))
                continue
            records[fname] = rec
        if n_missing > MAX_LISTED_MISSING:
            problems.append(
                Problem(seg_csv, f"{n_missing} mask files referenced by the CSV are missing in total "
                        f"(the first {MAX_LISTED_MISSING} are listed); those rows were skipped")
            )
    for fname, mpath in mask_files.items():
        if fname in records:
            continue
        rec = parse_imapp_mask_name(fname)
        if rec is None:
            problems.append(
                Problem(mpath, "mask name does not follow {ISIC_id}_{annotator}_{tool}_{skill}_{objectid}; ignored")
            )
            continue
        rec["image_stem"] = rec["ISIC_id"]
        records[fname] = rec

    img_meta: dict[str, dict[str, Any]] = {}
    for meta_csv in _find_csvs(root, "img_metadata.csv"):
        try:
            header, rows, probs = read_csv_rows(meta_csv)
        except DatasetError as exc:
            problems.append(Problem(meta_csv, str(exc).split(": ", 1)[-1] + "; metadata ignored"))
            continue
        problems += probs
        key = next((k for k in ("isic_id", "ISIC_id", "image", "img_id") if k in header), None)
        if key is None:
            problems.append(Problem(meta_csv, "missing column 'isic_id'; metadata ignored"))
            continue
        for line, row in rows:
            iid = os.path.splitext(row[key])[0]
            if iid in img_meta:
                problems.append(Problem(meta_csv, f"line {line}: duplicate isic_id {iid!r}; kept the first", iid))
                continue
            vals = {k: v for k, v in row.items() if k != key}
            img_meta[iid] = _clean_meta(vals, meta_csv, line, problems, iid)

    by_image: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for fname, rec in records.items():
        stem = rec["image_stem"]
        if stem not in images:
            problems.append(Problem(mask_files[fname], f"mask without an image (no image {stem!r} in {img_dir.name}/)", rec["ISIC_id"]))
            continue
        by_image.setdefault(stem, []).append((fname, rec))

    entries: list[CaseEntry] = []
    for stem in sorted(images):
        recs = sorted(by_image.get(stem, []), key=lambda t: (t[1]["annotator"], t[1].get("mskObjectID", ""), t[0]))
        ann_items = [(r["annotator"], mask_files[f]) for f, r in recs if r["annotator"] not in CONSENSUS]
        consensus = {r["annotator"]: str(mask_files[f]) for f, r in recs if r["annotator"] in CONSENSUS}
        if not ann_items:
            msg = "image without masks" if not consensus else "image without annotator masks (consensus only)"
            problems.append(Problem(images[stem], msg, stem))
            continue
        mpaths, raters = _assign_mask_ids(ann_items)
        tools: dict[str, str] = {}
        skills: dict[str, str] = {}
        k = 0
        for _f, r in recs:
            if r["annotator"] in CONSENSUS:
                continue
            mid = list(mpaths)[k]
            k += 1
            if r.get("tool"):
                tools[mid] = r["tool"]
            if r.get("skill_level"):
                skills[mid] = r["skill_level"]
        meta: dict[str, Any] = dict(img_meta.get(stem, {}))
        meta["tools"] = tools
        meta["skill_levels"] = skills
        if consensus:
            meta["consensus"] = consensus
        group = meta.get("lesion_id") or meta.get("patient_id") or stem
        entries.append(CaseEntry(stem, images[stem], mpaths, raters, meta, str(group)))
    return Dataset(entries, root, "imapp", problems)


def _detect_imapp(path: Path) -> bool:
    return path.is_dir() and _find_child(path, _IMAGES_DIRS) is not None and _find_child(path, _MASKS_DIRS) is not None


# --------------------------------------------------------------------------- manifest
MANIFEST_COLUMNS = ("case_id", "image", "annotator", "mask")
_MANIFEST_NAMES = ("manifest.csv", "dataset.csv", "cases.csv")


def _manifest_csv(path: Path) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        for n in _MANIFEST_NAMES:
            if (path / n).is_file():
                return path / n
        csvs = [Path(e.path) for e in _scandir(path) if e.is_file() and e.name.lower().endswith(".csv")]
        for c in sorted(csvs):
            try:
                first = c.open("r", encoding="utf-8-sig", errors="replace").readline()
            except OSError:
                continue
            cols = {x.strip() for x in first.split(",")}
            if set(MANIFEST_COLUMNS) <= cols:
                return c
    raise DatasetError(f"{path}: no manifest CSV (with columns {', '.join(MANIFEST_COLUMNS)}) found")


def _resolve(base: Path, text: str) -> Path:
    p = Path(text)
    return p if p.is_absolute() else base / p


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
    header, rows, problems = read_csv_rows(csv_path, required=MANIFEST_COLUMNS)
    if not rows:
        raise DatasetError(f"{csv_path}: manifest has no rows")
    extra = [h for h in header if h not in MANIFEST_COLUMNS]
    cases: dict[str, dict[str, Any]] = {}
    exists_cache: dict[Path, bool] = {}

    def exists(p: Path) -> bool:
        if p not in exists_cache:
            exists_cache[p] = p.is_file()
        return exists_cache[p]

    for line, row in rows:
        cid = row["case_id"]
        if not cid:
            problems.append(Problem(csv_path, f"line {line}: empty case_id; row skipped"))
            continue
        c = cases.get(cid)
        img_text = row["image"]
        if c is None:
            if not img_text:
                problems.append(Problem(csv_path, f"line {line}: empty image for case {cid!r}; row skipped", cid))
                continue
            c = cases[cid] = {"image": img_text, "line": line, "masks": [], "seen": set(), "meta": {}, "bad": False}
            img = _resolve(base, img_text)
            if not exists(img):
                problems.append(Problem(csv_path, f"line {line}: missing image file {img} referenced by the CSV; case {cid!r} skipped", cid))
                c["bad"] = True
        elif img_text and img_text != c["image"]:
            problems.append(
                Problem(csv_path, f"line {line}: case {cid!r} names image {img_text!r} but line {c['line']} named {c['image']!r}; row skipped", cid)
            )
            continue
        for k in extra:
            v = row.get(k, "")
            if v and k not in c["meta"]:
                c["meta"][k] = (v, line)
        ann, mask_text = row["annotator"], row["mask"]
        if not mask_text:
            continue
        if not ann:
            problems.append(Problem(csv_path, f"line {line}: empty annotator for mask {mask_text!r}; row skipped", cid))
            continue
        mpath = _resolve(base, mask_text)
        if (ann, str(mpath)) in c["seen"]:
            problems.append(Problem(csv_path, f"line {line}: duplicate row (case {cid!r}, annotator {ann!r}, mask {mask_text!r}); skipped", cid))
            continue
        c["seen"].add((ann, str(mpath)))
        if not exists(mpath):
            problems.append(Problem(csv_path, f"line {line}: missing mask file {mpath} referenced by the CSV; mask skipped", cid))
            continue
        c["masks"].append((ann, mpath))

    entries: list[CaseEntry] = []
    for cid, c in cases.items():
        if c["bad"]:
            continue
        img = _resolve(base, c["image"])
        if not c["masks"]:
            problems.append(Problem(img, "image without masks", cid))
            continue
        mpaths, raters = _assign_mask_ids(c["masks"])
        meta: dict[str, Any] = {}
        for k, (v, line) in c["meta"].items():
            meta.update(_clean_meta({k: v}, csv_path, line, problems, cid))
        group = next((meta[k] for k in ("group", "patient", "patient_id", "lesion_id") if k in meta), None)
        entries.append(CaseEntry(cid, img, mpaths, raters, meta, str(group) if group is not None else None))
    return Dataset(entries, base, "manifest", problems)


def _detect_manifest(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() == ".csv"
    try:
        _manifest_csv(path)
    except DatasetError:
        return False
    return True


# --------------------------------------------------------------------------- folders
_IMAGE_STEMS = ("image", "img")


def _folder_entry(case_dir: Path, case_id: str, problems: list[Problem]) -> CaseEntry | None:
    files = sorted(
        (e for e in _scandir(case_dir, problems) if e.is_file() and _is_image_name(e.name)),
        key=lambda e: (_natural_key(os.path.splitext(e.name)[0]), e.name),
    )
    image = next((Path(e.path) for e in files if os.path.splitext(e.name)[0].lower() in _IMAGE_STEMS), None)
    masks = [e for e in files if image is None or Path(e.path) != image]
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
        mid = os.path.splitext(e.name)[0]
        if mid in mpaths:
            problems.append(Problem(Path(e.path), f"second mask with id {mid!r} (kept {mpaths[mid].name})", case_id))
            continue
        mpaths[mid] = Path(e.path)
        raters[mid] = mid.split("#", 1)[0]
    meta: dict[str, Any] = {}
    mfile = case_dir / "meta.json"
    if mfile.is_file():
        try:
            data = json.loads(mfile.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            meta = _clean_meta({str(k): ("" if v is None else str(v)) for k, v in data.items() if not isinstance(v, (dict, list))}, mfile, None, problems, case_id)
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(Problem(mfile, f"unreadable metadata ({exc}); ignored", case_id))
    group = meta.get("group", meta.get("patient"))
    return CaseEntry(case_id, image, mpaths, raters, meta, str(group) if group is not None else None)


def read_folders(path: str | os.PathLike) -> Dataset:
    """Index a folder per case: ``<root>/<case>/image.<ext>`` + ``<annotator>.<ext>``.

    Mask ids are the mask file stems (``A04#2.png`` -> mask ``A04#2`` of annotator
    ``A04``); an optional ``meta.json`` per case folder goes to ``meta``.
    """
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"{root}: folder not found")
    dirs = sorted((e for e in _scandir(root) if e.is_dir() and not e.name.startswith(".")), key=lambda e: _natural_key(e.name))
    if not dirs:
        raise DatasetError(f"{root}: empty folder, no case folders found")
    problems: list[Problem] = []
    entries = [e for d in dirs if (e := _folder_entry(Path(d.path), d.name, problems)) is not None]
    return Dataset(entries, root, "folders", problems)


def _detect_folders(path: Path) -> bool:
    if not path.is_dir():
        return False
    n = 0
    for d in _scandir(path):
        if d.is_dir() and not d.name.startswith("."):
            for f in _scandir(d.path):
                if f.is_file() and os.path.splitext(f.name)[0].lower() in _IMAGE_STEMS and _is_image_name(f.name):
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


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class LayoutReader:
    """A named layout: ``read(path) -> Dataset`` and ``detect(path) -> bool``."""

    name: str
    read: Callable[[Path], Dataset]
    detect: Callable[[Path], bool]
    description: str = ""

    def __call__(self, path: str | os.PathLike) -> Dataset:
        return self.read(Path(path))


#: Registered layouts, in detection order.
LAYOUTS: dict[str, LayoutReader] = {}
_ALIASES = {"ima++": "imapp", "isic": "imapp", "csv": "manifest", "folder": "folders", "lidc-idri": "lidc"}


def register_layout(
    name: str,
    read: Callable[[Path], Dataset],
    detect: Callable[[Path], bool],
    description: str = "",
) -> LayoutReader:
    """Add a layout to :data:`LAYOUTS` (checked by :func:`detect_layout` in insertion order)."""
    reader = LayoutReader(name, read, detect, description)
    LAYOUTS[name] = reader
    return reader


register_layout("manifest", read_manifest, _detect_manifest, "CSV case_id,image,annotator,mask")
register_layout("lidc", read_lidc, _detect_lidc, "<patient>/<nodule>/images + mask-<r>")
register_layout("imapp", read_imapp, _detect_imapp, "IMA++: images/, masks/, metadata CSVs")
register_layout("folders", read_folders, _detect_folders, "<case>/image.<ext> + <annotator>.<ext>")


def detect_layout(path: str | os.PathLike) -> str:
    """Name of the layout of ``path`` (a folder, or a manifest CSV).

    Raises
    ------
    DatasetError
        Path missing, empty folder, or no layout recognised.
    """
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder")
    if p.is_dir():
        try:
            if not any(True for _ in _scandir(p)):
                raise DatasetError(f"{p}: empty folder")
        except PermissionError:
            raise DatasetError(f"{p}: folder not readable") from None
    for name, reader in LAYOUTS.items():
        try:
            if reader.detect(p):
                return name
        except (OSError, DatasetError):
            continue
    raise DatasetError(
        f"{p}: cannot recognise the data set layout (known: {', '.join(LAYOUTS)}); "
        "pass the layout by name"
    )


def open_dataset(path: str | os.PathLike, layout: str | None = None) -> Dataset:
    """Index a data set.

    Parameters
    ----------
    path : path-like
        Data set folder, or a manifest CSV.
    layout : str, optional
        One of :data:`LAYOUTS` (``"lidc"``, ``"imapp"``, ``"manifest"``, ``"folders"``);
        detected when not given.

    Returns
    -------
    Dataset
        Lazy index; index-time problems in ``ds.problems``.
    """
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder")
    if layout is None:
        layout = detect_layout(p)
    name = _ALIASES.get(layout.lower(), layout.lower())
    if name not in LAYOUTS:
        raise DatasetError(f"{p}: unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    return LAYOUTS[name](p)
