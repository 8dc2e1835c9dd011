"""Batch prediction over a data set, sharded under ``torchrun``, into one CSV.

Every process reads ``RANK`` and ``WORLD_SIZE`` from the environment, takes
``cases[rank::world]``, writes a part file beside the output, and rank 0 merges the parts
(in data-set order) once all of them exist.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_iaa.data import Case, Dataset, atomic_write_bytes, atomic_write_png, open_dataset
from napari_iaa.errors import CheckpointError, ConfigError, IAAError
from napari_iaa.predict.case import predict_case, predict_iaa_images
from napari_iaa.predict.models import ModelSet, load_models
from napari_iaa.predict.result import CasePrediction

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CSV_COLUMNS", "predict_dataset", "shard_info", "write_csv_atomic"]

CSV_COLUMNS = [
    "case_id",
    "n_masks",
    "predicted_iaa",
    "empirical_iaa",
    "mask_id",
    "annotator",
    "predicted_quality",
    "loo_dice",
    "mhr_map",
    "iaa_model",
    "quality_model",
    "mhr_model",
    "mhr_calibration",
]


def shard_info() -> tuple[int, int]:
    """(rank, world size) from the ``RANK`` / ``WORLD_SIZE`` environment (torchrun)."""
    try:
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as exc:
        raise ConfigError(f"RANK / WORLD_SIZE must be integers ({exc})") from exc
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return rank, world


def _part_path(out_csv: Path, rank: int, world: int) -> Path:
    return out_csv.with_name(f"{out_csv.name}.part{rank:04d}-of-{world:04d}")


def write_csv_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write a table as CSV (no index) atomically, making its folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, df.to_csv(index=False).encode("utf-8"))


def _save_map(path: Path, prob: np.ndarray) -> None:
    """An MHR map as an 8-bit PNG (0..255 = 0..1), written atomically."""
    img = np.clip(np.rint(np.asarray(prob, float) * 255.0), 0, 255).astype(np.uint8)
    while img.ndim > 2 and img.shape[0] == 1:
        img = img[0]
    atomic_write_png(path, img)


def _safe_name(case_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in case_id) or "case"


@dataclass(frozen=True)
class _Maps:
    """Where the MHR maps go and each case's file stem there."""

    folder: Path
    stems: dict[str, str]


def _map_stems(case_ids: Sequence[str]) -> dict[str, str]:
    """Case id -> map file stem: the id made safe, ``-2``, ``-3`` ... where two ids would
    share a file (``a/b`` and ``a_b``; ``A1`` and ``a1`` on a case-blind file system).

    From every id of the data set in order, so that each rank of a sharded run names a
    case's map alike.
    """
    stems: dict[str, str] = {}
    used: set[str] = set()
    for cid in case_ids:
        base = stem = _safe_name(cid)
        k = 1
        while stem.lower() in used:
            k += 1
            stem = f"{base}-{k}"
        used.add(stem.lower())
        stems[cid] = stem
    return stems


def _dist_barrier() -> None:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _warn(msg: str) -> None:
    print(f"napari-iaa predict: {msg}", file=sys.stderr)


def predict_dataset(
    dataset: Dataset | str | os.PathLike,
    models: ModelSet | Mapping[str, Any] | Sequence[Any],
    out_csv: str | Path,
    maps_dir: str | Path | None = None,
    batch_size: int = 8,
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    empty: str = "zero",
    merge_timeout: float = 3600.0,
) -> pd.DataFrame:
    """Predict every case of a data set and write one CSV (see ``napari_iaa.predict``).

    Parameters
    ----------
    dataset
        A ``napari_iaa.data.Dataset`` or a path that ``open_dataset`` reads.
    models
        A ``ModelSet``, or what ``load_models`` takes (checkpoint paths).
    out_csv
        The CSV to write. Under ``torchrun`` each rank writes ``<out_csv>.partRRRR-of-WWWW``
        and rank 0 merges them into ``out_csv``.
    maps_dir
        If given (and an MHR model is loaded), ``<case>_mhr.png`` (calibrated) is written
        there for every case; for a volume ``<case>_mhr.nii.gz`` (float32, the case's
        spacing, origin and direction).
    batch_size
        Images per forward pass for the IAA model; slices per forward pass for a volume
        (predicted slice by slice, see :mod:`napari_iaa.predict.volume`).
    device
        Device for models loaded here.
    progress, should_stop
        Called with (done, total) after each case of this rank; checked before each batch
        (and between a volume's batches of slices).
    empty
        The empty-pair rule of the empirical IAA.
    merge_timeout
        Seconds rank 0 waits for the other ranks' part files.

    Returns
    -------
    pandas.DataFrame
        This rank's rows (rank 0: the merged table). A run stopped by ``should_stop``
        returns the rows so far and writes nothing.
    """
    import pandas as pd

    out_csv = Path(out_csv)
    if isinstance(dataset, str | os.PathLike):
        dataset = open_dataset(dataset)
    if not isinstance(models, ModelSet):
        models = load_models(models, device=device)
    if not models:
        raise CheckpointError("no model given: pass at least one checkpoint (--model)")
    rank, world = shard_info()
    ids = list(dataset.ids)[rank::world]
    maps = None
    if maps_dir is not None and models.mhr is not None:
        maps = _Maps(Path(maps_dir), _map_stems(list(dataset.ids)))
        maps.folder.mkdir(parents=True, exist_ok=True)
    rows, stopped = _predict_ids(dataset, ids, models, max(1, int(batch_size)), empty, maps,
                                 progress, should_stop or (lambda: False))
    df = pd.DataFrame(rows, columns=CSV_COLUMNS)
    if stopped:
        return df
    if world == 1:
        write_csv_atomic(df, out_csv)
        return df
    write_csv_atomic(df, _part_path(out_csv, rank, world))
    _dist_barrier()
    if rank != 0:
        return df
    return _merge_parts(out_csv, world, list(dataset.ids), merge_timeout)


def _predict_ids(dataset: Dataset, ids: list[str], models: ModelSet, bs: int, empty: str,
                 maps: _Maps | None, progress: Callable[[int, int], None] | None,
                 stop: Callable[[], bool]) -> tuple[list[dict[str, Any]], bool]:
    """Rows for ``ids`` batch by batch, the next batch read in a worker thread meanwhile.

    Returns the rows and whether ``stop()`` ended the run early.
    """
    rows: list[dict[str, Any]] = []
    total = len(ids)
    done = 0
    loader = ThreadPoolExecutor(1, thread_name_prefix="napari-iaa-read")
    pending = loader.submit(_load_cases, dataset, ids[:bs]) if total else None
    try:
        for start in range(0, total, bs):
            if stop():
                return rows, True
            batch_ids = ids[start:start + bs]
            cases = pending.result() if pending is not None else []
            nxt = ids[start + bs:start + 2 * bs]
            pending = loader.submit(_load_cases, dataset, nxt) if nxt else None
            done, stopped = _predict_batch(cases, batch_ids, models, bs, empty, maps, rows,
                                           done, total, progress, stop)
            if stopped:
                return rows, True
    finally:
        if pending is not None:
            pending.cancel()
        loader.shutdown(wait=True)
    return rows, False


def _load_cases(dataset: Dataset, batch_ids: Sequence[str]) -> list[Case]:
    """Read the cases of one batch; unreadable ones are skipped with a warning."""
    cases = []
    for cid in batch_ids:
        try:
            cases.append(dataset.load(cid))
        except IAAError as exc:
            _warn(f"skipping {cid}: {exc}")
    return cases


def _predict_batch(cases: list[Case], batch_ids: Sequence[str], models: ModelSet, bs: int,
                   empty: str, maps: _Maps | None, rows: list[dict[str, Any]], done: int,
                   total: int, progress: Callable[[int, int], None] | None,
                   stop: Callable[[], bool] = lambda: False) -> tuple[int, bool]:
    """Predict one batch of loaded cases into ``rows``; returns ``done`` and whether
    ``stop()`` ended it inside a volume.

    The 2D cases' images go through the IAA model together; a volume is predicted slice
    by slice (``bs`` slices per forward pass, ``stop()`` checked between them).
    """
    flat = [c for c in cases if not c.is_volume]
    iaa_vals = (
        predict_iaa_images(models.iaa, [c.image for c in flat], bs)
        if models.iaa is not None and flat else [math.nan] * len(flat)
    )
    flat_iaa = {id(c): v for c, v in zip(flat, iaa_vals)}
    sub = ModelSet(mhr=models.mhr, quality=models.quality, device=models.device)
    for case in cases:
        if case.is_volume:
            pred = predict_case(case, models, empty=empty, with_ece=False, batch_size=bs,
                                should_stop=stop)
            if not pred.complete:
                return done, True
        else:
            pred = predict_case(case, sub, empty=empty, with_ece=False)
            pred.predicted_iaa = flat_iaa[id(case)]
            models.stamp(pred)  # ``sub`` has no IAA model
        rows.extend(pred.rows(_write_map(maps, case, pred)))
        done += 1
        if progress is not None:
            progress(done, total)
    if progress is not None and not cases:
        done += len(batch_ids)
        progress(done, total)
    return done, False


def _write_map(maps: _Maps | None, case: Case, pred: CasePrediction) -> str:
    """Write the case's calibrated MHR map (PNG; a volume's as NIfTI) and return its path.

    An MHR model without a calibrator writes ``<case>_mhr_uncalibrated.*`` instead.
    """
    if maps is None or pred.mhr_calibrated is None:
        return ""
    if case.is_volume:
        from napari_iaa.data.volumes import write_volume

        tag = "_mhr" if pred.mhr_is_calibrated else "_mhr_uncalibrated"
        path = maps.folder / f"{maps.stems[pred.case_id]}{tag}.nii.gz"
        write_volume(path, np.asarray(pred.mhr_calibrated, np.float32), spacing=case.spacing,
                     origin=case.origin, direction=case.direction)
        return str(path)
    tag = "_mhr" if pred.mhr_is_calibrated else "_mhr_uncalibrated"
    path = maps.folder / f"{maps.stems[pred.case_id]}{tag}.png"
    _save_map(path, pred.mhr_calibrated)
    return str(path)


def _merge_parts(out_csv: Path, world: int, order: list[str], timeout: float) -> pd.DataFrame:
    """Rank 0: wait for every part, concatenate in data-set order, write, remove parts."""
    import pandas as pd

    parts = [_part_path(out_csv, r, world) for r in range(world)]
    deadline = time.monotonic() + timeout
    while not all(p.is_file() for p in parts):
        if time.monotonic() > deadline:
            missing = [p.name for p in parts if not p.is_file()]
            raise IAAError(f"{out_csv}: timed out waiting for the part files {missing}")
        time.sleep(0.5)
    text_cols = {c: str for c in ("case_id", "mask_id", "annotator", "iaa_model",
                                  "quality_model", "mhr_model", "mhr_calibration")}
    frames = [pd.read_csv(p, dtype=text_cols,
                          keep_default_na=False, na_values=[""]) for p in parts]
    df = pd.concat(frames, ignore_index=True)
    rank_of = {cid: i for i, cid in enumerate(order)}
    df["_order"] = df["case_id"].map(rank_of)
    df["_row"] = np.arange(len(df))
    df = df.sort_values(["_order", "_row"], kind="stable").drop(columns=["_order", "_row"])
    df = df.reset_index(drop=True)
    for col in ("mask_id", "annotator", "mhr_map", "iaa_model", "quality_model", "mhr_model",
                "mhr_calibration"):
        df[col] = df[col].fillna("")
    write_csv_atomic(df, out_csv)
    for p in parts:
        p.unlink(missing_ok=True)
    return df
