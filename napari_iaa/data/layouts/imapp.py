"""The IMA++ layout: ``images/``, ``masks/`` and optional metadata CSVs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from napari_iaa.data.case import CaseEntry, Problem
from napari_iaa.data.dataset import Dataset
from napari_iaa.data.layouts._csv import clean_meta, read_csv_rows, read_csv_table
from napari_iaa.data.layouts._scan import assign_mask_ids, is_image_name, scandir
from napari_iaa.errors import DatasetError

__all__ = ["CONSENSUS", "MAX_LISTED_MISSING", "detect_imapp", "parse_imapp_mask_name", "read_imapp"]

_IMAGES_DIRS = ("images", "imgs", "image")
_MASKS_DIRS = ("masks", "segmentations", "segs", "mask")
CONSENSUS = ("ST", "MV")
#: Missing files named by an IMA++ CSV listed one by one; beyond that, one summary problem.
MAX_LISTED_MISSING = 20


def _find_child(root: Path, names: tuple[str, ...]) -> Path | None:
    children = {e.name.lower(): Path(e.path) for e in scandir(root) if e.is_dir()}
    for n in names:
        if n in children:
            return children[n]
    return None


def _find_csvs(root: Path, suffix: str) -> list[Path]:
    found: list[Path] = []
    for folder in (root, root / "metadata"):
        if folder.is_dir():
            found += [Path(e.path) for e in scandir(folder) if e.is_file() and e.name.lower().endswith(suffix)]
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


#: one record per mask file: ISIC_id, annotator, tool, skill_level, mskObjectID, image_stem
_Record = dict[str, str]
_REC_KEYS = ("ISIC_id", "annotator", "tool", "skill_level", "mskObjectID")


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
    images = _index_images(img_dir, problems)
    mask_files = {e.name: Path(e.path) for e in scandir(mask_dir) if e.is_file() and is_image_name(e.name)}
    if not images and not mask_files:
        raise DatasetError(f"{root}: empty data set (no images in {img_dir.name}/, no masks in {mask_dir.name}/)")
    records: dict[str, _Record] = {}
    for seg_csv in _find_csvs(root, "seg_metadata.csv"):
        _records_from_csv(seg_csv, mask_files, records, problems)
    _records_from_names(mask_files, records, problems)
    img_meta: dict[str, dict[str, Any]] = {}
    for meta_csv in _find_csvs(root, "img_metadata.csv"):
        _image_metadata(meta_csv, img_meta, problems)
    by_image = _records_by_image(records, images, mask_files, img_dir.name, problems)
    entries = []
    for stem in sorted(images):
        entry = _case_entry(stem, images[stem], by_image.get(stem, []), mask_files,
                            img_meta.get(stem, {}), problems)
        if entry is not None:
            entries.append(entry)
    return Dataset(entries, root, "imapp", problems)


def _index_images(img_dir: Path, problems: list[Problem]) -> dict[str, Path]:
    """Image stem -> image file; a second file with the same stem is a problem."""
    images: dict[str, Path] = {}
    for e in sorted(scandir(img_dir), key=lambda e: e.name):
        if e.is_file() and is_image_name(e.name):
            stem = os.path.splitext(e.name)[0]
            if stem in images:
                problems.append(Problem(Path(e.path), f"second image for {stem!r} (kept {images[stem].name})", stem))
                continue
            images[stem] = Path(e.path)
    return images


def _records_from_csv(seg_csv: Path, mask_files: dict[str, Path], records: dict[str, _Record],
                      problems: list[Problem]) -> None:
    """Add the records of one ``*seg_metadata.csv`` (first CSV naming a file wins)."""
    try:
        _, rows, probs = read_csv_rows(seg_csv, required=("ISIC_id", "seg_filename", "annotator"))
    except DatasetError as exc:
        problems.append(Problem(seg_csv, str(exc).split(": ", 1)[-1] + "; mask names parsed instead"))
        return
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
        rec = {k: row.get(k, "") for k in _REC_KEYS}
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


def _records_from_names(mask_files: dict[str, Path], records: dict[str, _Record],
                        problems: list[Problem]) -> None:
    """Records for the mask files no CSV described, parsed from their names."""
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


def _image_metadata(meta_csv: Path, img_meta: dict[str, dict[str, Any]],
                    problems: list[Problem]) -> None:
    """Add the rows of one ``*img_metadata.csv`` (cleaned) to ``img_meta`` by image id."""
    try:
        header, rows, probs, delim = read_csv_table(meta_csv)
    except DatasetError as exc:
        problems.append(Problem(meta_csv, str(exc).split(": ", 1)[-1] + "; metadata ignored"))
        return
    problems += probs
    key = next((k for k in ("isic_id", "ISIC_id", "image", "img_id") if k in header), None)
    if key is None:
        problems.append(Problem(meta_csv, "missing column 'isic_id'; metadata ignored"))
        return
    for line, row in rows:
        iid = os.path.splitext(row[key])[0]
        if iid in img_meta:
            problems.append(Problem(meta_csv, f"line {line}: duplicate isic_id {iid!r}; kept the first", iid))
            continue
        vals = {k: v for k, v in row.items() if k != key}
        img_meta[iid] = clean_meta(vals, meta_csv, line, problems, iid, decimal_comma=delim != ",")


def _records_by_image(records: dict[str, _Record], images: dict[str, Path],
                      mask_files: dict[str, Path], img_dir_name: str,
                      problems: list[Problem]) -> dict[str, list[tuple[str, _Record]]]:
    """Image stem -> ``[(mask file name, record)]``; a mask without its image is a problem."""
    by_image: dict[str, list[tuple[str, _Record]]] = {}
    for fname, rec in records.items():
        stem = rec["image_stem"]
        if stem not in images:
            problems.append(Problem(mask_files[fname], f"mask without an image (no image {stem!r} in {img_dir_name}/)", rec["ISIC_id"]))
            continue
        by_image.setdefault(stem, []).append((fname, rec))
    return by_image


def _case_entry(stem: str, image: Path, recs: list[tuple[str, _Record]],
                mask_files: dict[str, Path], img_meta: dict[str, Any],
                problems: list[Problem]) -> CaseEntry | None:
    """The entry of one image (None, with a problem, when it has no annotator mask)."""
    recs = sorted(recs, key=lambda t: (t[1]["annotator"], t[1].get("mskObjectID", ""), t[0]))
    annotated = [r for _f, r in recs if r["annotator"] not in CONSENSUS]
    ann_items = [(r["annotator"], mask_files[f]) for f, r in recs if r["annotator"] not in CONSENSUS]
    consensus = {r["annotator"]: str(mask_files[f]) for f, r in recs if r["annotator"] in CONSENSUS}
    if not ann_items:
        msg = "image without masks" if not consensus else "image without annotator masks (consensus only)"
        problems.append(Problem(image, msg, stem))
        return None
    mpaths, raters = assign_mask_ids(ann_items)
    tools: dict[str, str] = {}
    skills: dict[str, str] = {}
    for mid, r in zip(mpaths, annotated):  # mask ids follow the annotator records' order
        if r.get("tool"):
            tools[mid] = r["tool"]
        if r.get("skill_level"):
            skills[mid] = r["skill_level"]
    meta: dict[str, Any] = dict(img_meta)
    meta["tools"] = tools
    meta["skill_levels"] = skills
    if consensus:
        meta["consensus"] = consensus
    group = meta.get("lesion_id") or meta.get("patient_id") or stem
    return CaseEntry(stem, image, mpaths, raters, meta, str(group))


def detect_imapp(path: Path) -> bool:
    """Whether ``path`` has an images folder and a masks folder."""
    return path.is_dir() and _find_child(path, _IMAGES_DIRS) is not None and _find_child(path, _MASKS_DIRS) is not None

