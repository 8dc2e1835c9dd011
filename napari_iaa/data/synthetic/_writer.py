"""Write synthetic cases to disk in the IMA++ layout."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from napari_iaa.data.synthetic._annotators import ANNOTATOR_POOL
from napari_iaa.data.synthetic._cases import render_case
from napari_iaa.errors import DatasetError

__all__ = ["IMG_COLUMNS", "SEG_COLUMNS", "generate_synthetic_dataset"]

SEG_COLUMNS = ("ISIC_id", "img_filename", "seg_filename", "annotator", "tool", "skill_level", "mskObjectID", "mask_md5")
IMG_COLUMNS = (
    "isic_id", "benign_malignant", "diagnosis_1", "diagnosis_2", "diagnosis_3", "patient_id",
    "lesion_id", "age_approx", "sex", "anatom_site_general", "pixels_x", "pixels_y",
    "synth_radius_px", "synth_border_width_px", "synth_irregularity", "synth_poor_masks",
)
_MARKER = ".napari-iaa-synthetic"


def _png_bytes(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _encode_case(args: tuple) -> tuple[str, bytes, list[tuple[str, bytes, list[object]]], list[object]]:
    """Render and encode case ``i`` (top level so that worker processes can run it)."""
    i, seed, size, n_ann, image_format, malignant_fraction = args
    c = render_case(i, seed, size, n_ann, malignant_fraction)
    iid = f"SYN_{i:07d}"
    img_name = f"{iid}.{image_format}"
    buf = io.BytesIO()
    if image_format == "jpg":
        Image.fromarray(c["image"]).save(buf, format="JPEG", quality=92)
    else:
        Image.fromarray(c["image"]).save(buf, format="PNG")
    masks = []
    n_poor = 0
    for (habit, mask, poor), obj in zip(c["masks"], c["object_ids"]):
        data = _png_bytes(mask)
        seg_name = f"{iid}_{habit.annotator}_{habit.tool}_{habit.skill}_{obj}.png"
        row = [iid, img_name, seg_name, habit.annotator, habit.tool, habit.skill, obj, hashlib.md5(data).hexdigest()]
        masks.append((seg_name, data, row))
        n_poor += int(poor)
    img_row: list[object] = [
        iid, "malignant" if c["malignant"] else "benign", *c["diagnosis"],
        c["age"], c["sex"], c["site"], size[1], size[0], round(c["radius"], 2),
        round(c["border_width"], 2), round(c["irregularity"], 4), n_poor,
    ]
    return img_name, buf.getvalue(), masks, img_row


def generate_synthetic_dataset(
    out: str | os.PathLike,
    n: int = 40,
    seed: int = 0,
    size: tuple[int, int] = (256, 256),
    n_annotators: tuple[int, int] = (2, 5),
    image_format: str = "jpg",
    malignant_fraction: float = 0.4,
    overwrite: bool = False,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Write a synthetic multi-annotator data set in the IMA++ layout.

    Parameters
    ----------
    out : path-like
        Output folder (created). ``images/SYN_0000000.jpg``, ``masks/`` with IMA++ names
        ``SYN_0000000_A03_T2_S1_<objectid>.png`` (0/255), ``synthetic_seg_metadata.csv``
        and ``synthetic_img_metadata.csv`` (``benign_malignant``, ``diagnosis_1..3``,
        ``patient_id``, ``lesion_id`` and the generator's lesion parameters).
    n : int
        Number of images.
    seed : int
        Seed; image ``i`` depends only on ``(seed, i)``.
    size : (int, int)
        Image height and width.
    n_annotators : (int, int)
        Inclusive range of distinct annotators per image (at most 8).
    image_format : {"jpg", "png"}
        Image file format (JPEG quality 92 keeps the sample small).
    malignant_fraction : float
        Probability that an image is malignant.
    overwrite : bool
        Replace a previous synthetic data set in ``out``; otherwise ``out`` must be empty
        or absent.
    workers : int, optional
        Render in this many processes (same files as with one; for large benchmarks).
    progress, should_stop
        Progress callback ``(done, total)`` and cancel check (stops after the current
        image; the CSVs then list the images written so far).

    Returns
    -------
    Path
        ``out``.
    """
    out = Path(out)
    lo, hi = int(n_annotators[0]), int(n_annotators[1])
    _check_options(lo, hi, n_annotators, image_format)
    _prepare_folder(out, overwrite, f"seed={seed} n={n} size={size[0]}x{size[1]}\n")
    args = [(i, seed, (int(size[0]), int(size[1])), (lo, hi), image_format, malignant_fraction)
            for i in range(int(n))]
    seg_rows, img_rows = _write_cases(out, args, seed, workers, progress, should_stop)
    _write_tables(out, seg_rows, img_rows)
    return out


def _check_options(lo: int, hi: int, n_annotators: tuple[int, int], image_format: str) -> None:
    if not 1 <= lo <= hi <= len(ANNOTATOR_POOL):
        raise DatasetError(f"n_annotators must satisfy 1 <= lo <= hi <= {len(ANNOTATOR_POOL)}, got {n_annotators}")
    if image_format not in ("jpg", "png"):
        raise DatasetError(f"image_format must be 'jpg' or 'png', got {image_format!r}")


def _prepare_folder(out: Path, overwrite: bool, marker_text: str) -> None:
    """Make ``out`` ready: empty or absent, or a previous synthetic data set to replace."""
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise DatasetError(f"{out}: output folder is not empty (pass overwrite=True)")
        if not (out / _MARKER).is_file():
            raise DatasetError(f"{out}: not a synthetic data set written by napari-iaa; refusing to overwrite")
        for sub in ("images", "masks"):
            shutil.rmtree(out / sub, ignore_errors=True)
        for f in out.glob("synthetic_*_metadata.csv"):
            f.unlink()
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text(marker_text, encoding="utf-8")


def _write_cases(
    out: Path,
    args: list[tuple],
    seed: int,
    workers: int | None,
    progress: Callable[[int, int], None] | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[list[list[object]], list[list[object]]]:
    """Render (in ``workers`` processes, else here) and write every case; the CSV rows."""
    n = len(args)
    seg_rows: list[list[object]] = []
    img_rows: list[list[object]] = []
    patient = -1
    pool = None
    if workers is not None and int(workers) > 1 and n > 1:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=int(workers))
        results = pool.map(_encode_case, args, chunksize=4)
    else:
        results = map(_encode_case, args)
    try:
        for i, (img_name, img_bytes, masks, row) in enumerate(results):
            if should_stop is not None and should_stop():
                break
            (out / "images" / img_name).write_bytes(img_bytes)
            for seg_name, data, seg_row in masks:
                (out / "masks" / seg_name).write_bytes(data)
                seg_rows.append(seg_row)
            if i % 5 != 4:  # every fifth lesion belongs to the previous image's patient
                patient += 1
            row[5:5] = [f"SYNP_{seed}_{patient:05d}", f"SYNL_{seed}_{i:07d}"]
            img_rows.append(row)
            if progress is not None:
                progress(i + 1, n)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return seg_rows, img_rows


def _write_tables(out: Path, seg_rows: list[list[object]], img_rows: list[list[object]]) -> None:
    for name, cols, rows in (
        ("synthetic_seg_metadata.csv", SEG_COLUMNS, seg_rows),
        ("synthetic_img_metadata.csv", IMG_COLUMNS, img_rows),
    ):
        with open(out / name, "w", newline="", encoding="utf-8") as fh:
            wr = csv.writer(fh)
            wr.writerow(cols)
            wr.writerows(rows)
