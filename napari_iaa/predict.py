"""Batch prediction over a data set: predicted IAA, per-mask quality and MHR maps.

The same code serves the ``napari-iaa predict`` command, the predictions dock and the
triage table. It runs under ``torchrun``: every process reads ``RANK`` and ``WORLD_SIZE``
from the environment, takes ``cases[rank::world]``, writes a part file beside the output,
and rank 0 merges the parts (in data-set order) once all of them exist.

CSV layout (one row per mask; a case without masks gets one row with an empty
``mask_id``): ``case_id, n_masks, predicted_iaa, empirical_iaa, mask_id, annotator,
predicted_quality, loo_dice, mhr_map``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_iaa.errors import CheckpointError, ConfigError, IAAError

__all__ = [
    "CSV_COLUMNS",
    "ModelSet",
    "CasePrediction",
    "task_slot",
    "load_models",
    "predict_case",
    "predict_iaa_images",
    "predict_dataset",
    "shard_info",
    "add_predict_parser",
    "run_predict",
    "main",
    "bin_reliability",
    "fill_reliability",
    "ece_value",
    "predict_quality",
]

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
]

#: Model-card task -> predictor slot.
_SLOTS = {
    "iaa": "iaa",
    "iaa+diagnosis": "iaa",
    "iaa_diagnosis": "iaa",
    "iaa-diagnosis": "iaa",
    "mhr": "mhr",
    "calibrate": "mhr",
    "quality": "quality",
}


def task_slot(task: str) -> str:
    """Map a model card's task onto the predictor slot it fills (iaa, mhr, quality).

    Raises
    ------
    ConfigError
        If the task is unknown.
    """
    t = str(task).strip().lower()
    if t in _SLOTS:
        return _SLOTS[t]
    for prefix in ("iaa", "mhr", "quality"):
        if t.startswith(prefix):
            return prefix
    raise ConfigError(f"unknown model task {task!r}: expected iaa, mhr, calibrate or quality")


# --------------------------------------------------------------------------- models
@dataclass
class ModelSet:
    """At most one predictor per slot, with the checkpoint it came from."""

    iaa: Any = None
    mhr: Any = None
    quality: Any = None
    paths: dict[str, Path] = field(default_factory=dict)
    cards: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    def __bool__(self) -> bool:
        return any(p is not None for p in (self.iaa, self.mhr, self.quality))

    @property
    def slots(self) -> list[str]:
        """The slots that hold a predictor."""
        return [s for s in ("iaa", "mhr", "quality") if getattr(self, s) is not None]


def _checkpoint_path(spec: str | Path, registry: Any = None) -> Path:
    """A ``--model`` value: a checkpoint (card, weights or stem path) or a registered name."""
    p = Path(spec).expanduser()
    for c in (p, p.with_suffix(".json"), p.with_suffix(".safetensors")):
        if c.is_file() and c.suffix in (".json", ".safetensors"):
            return c
    if registry is not None:
        try:
            entries = _registry_entries(registry)
        except Exception:  # noqa: BLE001 - a broken registry must not hide the real message
            entries = []
        for entry in entries:
            if str(spec) in {entry_name(entry), str(entry_path(entry))}:
                return entry_path(entry)
    raise CheckpointError(
        f"{spec}: model file not found (give a .safetensors/.json path or a registered model name)"
    )


def _registry_entries(registry: Any) -> list[Any]:
    for name in ("list", "entries", "models", "available"):
        attr = getattr(registry, name, None)
        if attr is None:
            continue
        out = attr() if callable(attr) else attr
        return list(out.values()) if isinstance(out, Mapping) else list(out)
    return list(registry)


def entry_path(entry: Any) -> Path:
    """The weights path of a registry entry."""
    for name in ("path", "weights", "checkpoint"):
        v = getattr(entry, name, None)
        if v is not None:
            return Path(v)
    if isinstance(entry, Mapping) and "path" in entry:
        return Path(entry["path"])
    return Path(entry)


def entry_name(entry: Any) -> str:
    """The display name of a registry entry."""
    for name in ("name",):
        v = getattr(entry, name, None)
        if v:
            return str(v)
    return entry_path(entry).stem


def entry_card(entry: Any) -> Any:
    """The model card of a registry entry (or None)."""
    return getattr(entry, "card", None)


def _predictor_classes() -> dict[str, Any]:
    from napari_iaa import models as m

    return {"iaa": m.IAAPredictor, "mhr": m.MHRPredictor, "quality": m.QualityPredictor}


def _make_predictor(slot: str, path: Path, device: str) -> tuple[Any, Any]:
    """Load one checkpoint into the predictor of its slot; returns (predictor, card)."""
    pred = _predictor_classes()[slot].from_checkpoint(path, device=device)
    return pred, getattr(pred, "card", None)


def _card_task(path: Path) -> str:
    """Read the task from a checkpoint's card without loading the weights."""
    from napari_iaa.models import read_checkpoint_card

    card, _card_path, _weights = read_checkpoint_card(path)
    return str(card.task)


def load_models(
    models: Mapping[str, str | Path | None] | Sequence[str | Path] | None,
    device: str = "auto",
    registry: Any = None,
) -> ModelSet:
    """Load checkpoints into predictors, one per slot (iaa, mhr, quality).

    Parameters
    ----------
    models
        Either ``slot -> checkpoint`` or a list of checkpoints (their cards name the task;
        a later one for the same slot replaces an earlier one). Registered model names are
        looked up in ``registry``.
    device
        ``"auto"``, ``"cuda"``, ``"mps"`` or ``"cpu"``.
    registry
        A ``ModelRegistry`` for names (optional).

    Raises
    ------
    CheckpointError
        A file is missing, unsafe, or its card does not match the slot asked for.
    """
    from napari_iaa import models as m

    dev = str(m.pick_device(device))
    out = ModelSet(device=dev)
    if not models:
        return out
    items: list[tuple[str | None, str | Path]]
    if isinstance(models, Mapping):
        items = [(k, v) for k, v in models.items() if v]
    else:
        items = [(None, v) for v in models]
    for want, spec in items:
        path = _checkpoint_path(spec, registry)
        slot = task_slot(_card_task(path))
        if want is not None and task_slot(want) != slot:
            raise CheckpointError(
                f"{path}: model card task is {slot!r}, but it was chosen for {want!r}"
            )
        pred, card = _make_predictor(slot, path, dev)
        setattr(out, slot, pred)
        out.paths[slot] = path
        out.cards[slot] = card
    return out


# --------------------------------------------------------------------------- adapters
def _scalar(x: Any) -> float:
    """A float out of whatever a predictor returns (float, 0-d tensor, dict, dataclass)."""
    if x is None:
        return float("nan")
    for name in ("iaa", "quality", "dice", "value", "score"):
        if isinstance(x, Mapping) and name in x:
            return _scalar(x[name])
        v = getattr(x, name, None)
        if v is not None and not callable(v):
            return _scalar(v)
    try:
        return float(np.asarray(x, dtype=float).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return float("nan")


def _maps(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """(raw, calibrated) probability maps out of an MHR prediction."""
    raw = cal = None
    if isinstance(x, Mapping):
        raw = x.get("raw", x.get("probability"))
        cal = x.get("calibrated")
    elif isinstance(x, np.ndarray):
        raw = x
    elif isinstance(x, tuple) and len(x) == 2:
        raw, cal = x
    else:
        raw = getattr(x, "raw", None)
        if raw is None:
            raw = getattr(x, "probability", None)
        cal = getattr(x, "calibrated", None)
    if raw is None:
        raise CheckpointError(f"MHR predictor returned {type(x).__name__}, not a probability map")
    raw = np.asarray(raw, dtype=np.float32)
    cal = raw if cal is None else np.asarray(cal, dtype=np.float32)
    return raw, cal


def _predict_many(pred: Any, items: list[Any], batch_size: int, should_stop) -> list[Any]:
    many = getattr(pred, "predict_many", None)
    if many is not None:
        try:
            return list(many(items, batch_size=batch_size, should_stop=should_stop))
        except TypeError:
            return list(many(items))
    return [pred.predict(it) for it in items]


def predict_iaa_images(
    predictor: Any,
    images: Sequence[np.ndarray],
    batch_size: int = 8,
    should_stop: Callable[[], bool] | None = None,
) -> list[float]:
    """Predicted IAA for a list of images (batched by the predictor)."""
    return [_scalar(v) for v in _predict_many(predictor, list(images), batch_size, should_stop)]


@dataclass
class CasePrediction:
    """Everything predicted (and measured) for one case."""

    case_id: str
    mask_ids: list[str] = field(default_factory=list)
    raters: dict[str, str] = field(default_factory=dict)
    predicted_iaa: float = float("nan")
    empirical_iaa: float = float("nan")
    mhr_raw: np.ndarray | None = None
    mhr_calibrated: np.ndarray | None = None
    mhr_empirical: np.ndarray | None = None
    quality: dict[str, float] = field(default_factory=dict)
    loo_dice: dict[str, float] = field(default_factory=dict)
    ece: dict[str, Any] | None = None
    reliability: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def mhr_difference(self) -> np.ndarray | None:
        """Calibrated predicted MHR minus the empirical MHR (None without both)."""
        if self.mhr_calibrated is None or self.mhr_empirical is None:
            return None
        if self.mhr_calibrated.shape != self.mhr_empirical.shape:
            return None
        return self.mhr_calibrated - self.mhr_empirical

    def rows(self, mhr_map: str = "") -> list[dict[str, Any]]:
        """CSV rows (one per mask, or one for a case without masks)."""
        base = {
            "case_id": self.case_id,
            "n_masks": len(self.mask_ids),
            "predicted_iaa": self.predicted_iaa,
            "empirical_iaa": self.empirical_iaa,
            "mhr_map": mhr_map,
        }
        if not self.mask_ids:
            return [{**base, "mask_id": "", "annotator": "", "predicted_quality": math.nan,
                     "loo_dice": math.nan}]
        return [
            {
                **base,
                "mask_id": mid,
                "annotator": self.raters.get(mid, mid),
                "predicted_quality": self.quality.get(mid, math.nan),
                "loo_dice": self.loo_dice.get(mid, math.nan),
            }
            for mid in self.mask_ids
        ]


def _empirical(case: Any, empty: str) -> tuple[float, dict[str, float], np.ndarray | None]:
    """Empirical IAA, leave-one-out Dice per mask, and the empirical MHR map."""
    from napari_iaa import agreement as ag

    ids = list(case.mask_ids)
    if not ids:
        return math.nan, {}, None
    stack = case.stack()
    mhr = np.asarray(ag.mhr_map(stack), dtype=np.float32)
    iaa = float(ag.iaa(stack, empty=empty)) if len(ids) >= 2 else math.nan
    loo: dict[str, float] = {}
    if len(ids) >= 2:
        vals = ag.leave_one_out_dice(stack)
        if isinstance(vals, Mapping):
            loo = {k: float(v) for k, v in vals.items()}
        else:
            loo = {mid: float(v) for mid, v in zip(ids, np.asarray(vals, float).ravel())}
    return iaa, loo, mhr


def _quality_for(pred: Any, image: np.ndarray, masks: Mapping[str, np.ndarray],
                 batch_size: int = 8, should_stop=None) -> dict[str, float]:
    ids = list(masks)
    if not ids:
        return {}
    many = getattr(pred, "predict_many", None)
    if many is not None:
        try:
            vals = list(many([(image, masks[k]) for k in ids], batch_size=batch_size,
                             should_stop=should_stop))
            return {k: _scalar(v) for k, v in zip(ids, vals)}
        except TypeError:
            pass
    return {k: _scalar(pred.predict(image, masks[k])) for k in ids}


def predict_quality(pred: Any, image: np.ndarray, masks: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Predicted quality (Dice) for each mask of one image."""
    return _quality_for(pred, image, masks)


def predict_case(
    case: Any,
    models: ModelSet,
    empty: str = "zero",
    n_bins: int = 10,
    with_ece: bool = True,
) -> CasePrediction:
    """Predict IAA, MHR maps and mask quality for one case, beside the empirical values."""
    out = CasePrediction(case_id=str(case.case_id), mask_ids=list(case.mask_ids),
                         raters=dict(getattr(case, "raters", {}) or {}))
    out.empirical_iaa, out.loo_dice, out.mhr_empirical = _empirical(case, empty)
    image = case.image
    if models.iaa is not None:
        out.predicted_iaa = _scalar(models.iaa.predict(image))
    if models.mhr is not None:
        out.mhr_raw, out.mhr_calibrated = _maps(models.mhr.predict(image))
        if with_ece and out.mhr_empirical is not None and out.mhr_calibrated.shape == out.mhr_empirical.shape:
            _reliability(out, case, n_bins)
    if models.quality is not None and case.mask_ids:
        out.quality = _quality_for(models.quality, image, case.masks)
    return out


def bin_reliability(
    p: np.ndarray, mhr: np.ndarray, n_bins: int = 10, chunk: int = 1 << 18
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reliability curve: per equal-width bin of ``p``, mean p, mean MHR and pixel count.

    Accumulated over ``chunk`` pixels at a time (no full-size temporaries; a worker
    never holds the GIL for long).
    """
    p = np.asarray(p).reshape(-1)
    mhr = np.asarray(mhr).reshape(-1)
    counts, sp, se = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
    for s in range(0, p.size, chunk):
        pc = p[s:s + chunk].astype(np.float64)
        idx = np.clip((pc * n_bins).astype(int), 0, n_bins - 1)
        counts += np.bincount(idx, minlength=n_bins)
        sp += np.bincount(idx, weights=pc, minlength=n_bins)
        se += np.bincount(idx, weights=mhr[s:s + chunk].astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sp / counts, se / counts, counts


def fill_reliability(out: CasePrediction, masks: Sequence[np.ndarray], n_bins: int = 10) -> None:
    """Fill ``out.reliability`` (raw and calibrated curves) and ``out.ece`` (multi-rater).

    ``masks``: the annotators' masks (views are fine: nothing is copied or stacked).
    Nothing is filled unless the calibrated and empirical maps have the same shape.
    """
    emp, cal_map = out.mhr_empirical, out.mhr_calibrated
    if cal_map is None or emp is None or np.shape(cal_map) != np.shape(emp):
        return
    for label, p in (("raw", out.mhr_raw), ("calibrated", cal_map)):
        if p is not None and np.shape(p) == np.shape(emp):
            out.reliability[label] = bin_reliability(p, emp, n_bins)
    try:
        from napari_iaa import calibration as cal

        out.ece = dict(cal.multirater_ece(cal_map, list(masks)))
    except Exception as exc:  # noqa: BLE001 - the plot still works without the ECE
        out.ece = {"error": str(exc)}


def _reliability(out: CasePrediction, case: Any, n_bins: int) -> None:
    fill_reliability(out, [case.masks[m] for m in case.mask_ids], n_bins)


def ece_value(ece: Mapping[str, Any] | None) -> float:
    """The pooled multi-rater ECE out of ``multirater_ece``'s dict (NaN if absent)."""
    if not ece:
        return math.nan
    for key in ("pooled", "ece", "mean", "multirater_ece"):
        if key in ece:
            return _scalar(ece[key])
    vals = [_scalar(v) for v in ece.values() if not isinstance(v, str)]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else math.nan


# --------------------------------------------------------------------------- data set
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


def _write_csv_atomic(df: Any, path: Path) -> None:
    from napari_iaa.data import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, df.to_csv(index=False).encode("utf-8"))


def _save_map(path: Path, prob: np.ndarray) -> None:
    """An MHR map as an 8-bit PNG (0..255 = 0..1), written atomically."""
    from napari_iaa.data import atomic_write_png

    img = np.clip(np.rint(np.asarray(prob, float) * 255.0), 0, 255).astype(np.uint8)
    while img.ndim > 2 and img.shape[0] == 1:
        img = img[0]
    atomic_write_png(path, img)


def _safe_name(case_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in case_id) or "case"


def _dist_barrier() -> None:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def predict_dataset(
    dataset: Any,
    models: ModelSet | Mapping[str, Any] | Sequence[Any],
    out_csv: str | Path,
    maps_dir: str | Path | None = None,
    batch_size: int = 8,
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    empty: str = "zero",
    merge_timeout: float = 3600.0,
) -> Any:
    """Predict every case of a data set and write one CSV (see the module docstring).

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
        there for every case.
    batch_size
        Images per forward pass for the IAA model.
    device
        Device for models loaded here.
    progress, should_stop
        Called with (done, total) after each case of this rank; checked before each batch.

    Returns
    -------
    pandas.DataFrame
        This rank's rows (rank 0: the merged table). A run stopped by ``should_stop``
        returns the rows so far and writes nothing.
    """
    import pandas as pd

    from napari_iaa.data import open_dataset

    out_csv = Path(out_csv)
    if not isinstance(dataset, Iterable) or isinstance(dataset, str | Path):
        dataset = open_dataset(dataset)
    if not isinstance(models, ModelSet):
        models = load_models(models, device=device)
    if not models:
        raise CheckpointError("no model given: pass at least one checkpoint (--model)")
    rank, world = shard_info()
    ids = list(dataset.ids)[rank::world]
    maps = Path(maps_dir) if maps_dir is not None and models.mhr is not None else None
    if maps is not None:
        maps.mkdir(parents=True, exist_ok=True)
    stop = should_stop or (lambda: False)
    rows: list[dict[str, Any]] = []
    total = len(ids)
    done = 0
    bs = max(1, int(batch_size))
    # the next batch of cases is read in a worker thread while this one is predicted
    loader = ThreadPoolExecutor(1, thread_name_prefix="napari-iaa-read")
    pending = loader.submit(_load_cases, dataset, ids[:bs]) if total else None
    try:
        for start in range(0, total, bs):
            if stop():
                return pd.DataFrame(rows, columns=CSV_COLUMNS)
            batch_ids = ids[start:start + bs]
            cases = pending.result() if pending is not None else []
            nxt = ids[start + bs:start + 2 * bs]
            pending = loader.submit(_load_cases, dataset, nxt) if nxt else None
            done = _predict_batch(cases, batch_ids, models, bs, empty, maps, rows, done, total,
                                  progress)
    finally:
        if pending is not None:
            pending.cancel()
        loader.shutdown(wait=True)
    df = pd.DataFrame(rows, columns=CSV_COLUMNS)
    if world == 1:
        _write_csv_atomic(df, out_csv)
        return df
    _write_csv_atomic(df, _part_path(out_csv, rank, world))
    _dist_barrier()
    if rank != 0:
        return df
    return _merge_parts(out_csv, world, list(dataset.ids), merge_timeout)


def _load_cases(dataset: Any, batch_ids: Sequence[str]) -> list[Any]:
    """Read the cases of one batch; unreadable ones are skipped with a warning."""
    cases = []
    for cid in batch_ids:
        try:
            cases.append(dataset.load(cid))
        except IAAError as exc:
            _warn(f"skipping {cid}: {exc}")
    return cases


def _predict_batch(cases: list[Any], batch_ids: Sequence[str], models: ModelSet, bs: int,
                   empty: str, maps: Path | None, rows: list[dict[str, Any]], done: int,
                   total: int, progress: Callable[[int, int], None] | None) -> int:
    """Predict one batch of loaded cases into ``rows``; returns the updated ``done``."""
    iaa_vals = (
        predict_iaa_images(models.iaa, [c.image for c in cases], bs)
        if models.iaa is not None and cases else [math.nan] * len(cases)
    )
    sub = ModelSet(mhr=models.mhr, quality=models.quality, device=models.device)
    for case, piaa in zip(cases, iaa_vals):
        pred = predict_case(case, sub, empty=empty, with_ece=False)
        pred.predicted_iaa = piaa
        map_name = ""
        if maps is not None and pred.mhr_calibrated is not None:
            map_path = maps / f"{_safe_name(pred.case_id)}_mhr.png"
            _save_map(map_path, pred.mhr_calibrated)
            map_name = str(map_path)
        rows.extend(pred.rows(map_name))
        done += 1
        if progress is not None:
            progress(done, total)
    if progress is not None and not cases:
        done += len(batch_ids)
        progress(done, total)
    return done


def _merge_parts(out_csv: Path, world: int, order: list[str], timeout: float) -> Any:
    """Rank 0: wait for every part, concatenate in data-set order, write, remove parts."""
    import pandas as pd

    parts = [_part_path(out_csv, r, world) for r in range(world)]
    deadline = time.monotonic() + timeout
    while not all(p.is_file() for p in parts):
        if time.monotonic() > deadline:
            missing = [p.name for p in parts if not p.is_file()]
            raise IAAError(f"{out_csv}: timed out waiting for the part files {missing}")
        time.sleep(0.5)
    frames = [pd.read_csv(p, dtype={"case_id": str, "mask_id": str, "annotator": str},
                          keep_default_na=False, na_values=[""]) for p in parts]
    df = pd.concat(frames, ignore_index=True)
    rank_of = {cid: i for i, cid in enumerate(order)}
    df["_order"] = df["case_id"].map(rank_of)
    df["_row"] = np.arange(len(df))
    df = df.sort_values(["_order", "_row"], kind="stable").drop(columns=["_order", "_row"])
    df = df.reset_index(drop=True)
    for col in ("mask_id", "annotator", "mhr_map"):
        df[col] = df[col].fillna("")
    _write_csv_atomic(df, out_csv)
    for p in parts:
        p.unlink(missing_ok=True)
    return df


def _warn(msg: str) -> None:
    print(f"napari-iaa predict: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------- CLI
def add_predict_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``predict`` to an argparse sub-parser set (``napari-iaa predict``)."""
    p = subparsers.add_parser(
        "predict",
        help="predict IAA, per-mask quality and MHR maps for a data set",
        description=(
            "Predict per-case IAA, per-mask quality and (with --maps) calibrated MHR maps "
            "for every case of DATASET and write them to a CSV. Under torchrun the cases "
            "are sharded over the processes and rank 0 merges the CSV."
        ),
    )
    p.add_argument("dataset", help="data set folder (any supported layout)")
    p.add_argument("--model", action="append", required=True, metavar="CHECKPOINT",
                   help="checkpoint (.safetensors) or registered model name; repeat for "
                        "several tasks (the model card names the task)")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--maps", default=None, metavar="DIR",
                   help="folder for the calibrated MHR maps (<case>_mhr.png)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    p.add_argument("--layout", default=None, help="data set layout (default: detected)")
    p.add_argument("--empty-pair", default="zero", choices=["zero", "one", "ignore"],
                   help="Dice of a pair with an empty mask, for the empirical IAA")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_predict)
    return p


def run_predict(args: argparse.Namespace) -> int:
    """Run ``napari-iaa predict``; returns the exit code (IAAError -> one line, code 2)."""
    try:
        from napari_iaa.data import open_dataset

        rank, world = shard_info()
        own_group = _init_dist(world)
        ds = open_dataset(args.dataset, layout=getattr(args, "layout", None))
        registry = None
        try:
            from napari_iaa.models import ModelRegistry

            registry = ModelRegistry()
        except Exception:  # noqa: BLE001 - names then simply do not resolve
            registry = None
        models = load_models(args.model, device=args.device, registry=registry)
        bar = None
        if not getattr(args, "no_progress", False):
            from tqdm import tqdm

            bar = tqdm(total=len(ds.ids[rank::world]) if hasattr(ds.ids, "__getitem__")
                       else None, desc=f"predict[{rank}/{world}]" if world > 1 else "predict",
                       unit="case", file=sys.stderr, position=rank if world > 1 else None)

        def _progress(done: int, total: int) -> None:
            if bar is not None:
                bar.total = total
                bar.n = done
                bar.refresh()

        df = predict_dataset(ds, models, args.out, maps_dir=args.maps,
                             batch_size=args.batch_size, progress=_progress,
                             empty=getattr(args, "empty_pair", "zero"))
        if bar is not None:
            bar.close()
        if own_group:
            import torch.distributed as dist

            dist.destroy_process_group()
        if rank == 0:
            n_cases = df["case_id"].nunique() if len(df) else 0
            print(f"wrote {args.out}: {n_cases} cases, {len(df)} rows "
                  f"(models: {', '.join(models.slots)}, device {models.device})")
        return 0
    except IAAError as exc:
        print(f"napari-iaa predict: error: {exc}", file=sys.stderr)
        return 2


def _init_dist(world: int) -> bool:
    """Under torchrun (MASTER_ADDR set), join a gloo group for the final barrier.

    Returns True if this call created the process group (the caller destroys it).
    """
    if world <= 1 or "MASTER_ADDR" not in os.environ:
        return False
    import torch.distributed as dist

    if dist.is_available() and not dist.is_initialized():
        dist.init_process_group("gloo")
        return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m napari_iaa.predict DATASET --model ... --out FILE.csv`` (same as the CLI)."""
    parser = argparse.ArgumentParser(prog="napari-iaa")
    sub = parser.add_subparsers(dest="command", required=True)
    add_predict_parser(sub)
    args = parser.parse_args(["predict", *(sys.argv[1:] if argv is None else argv)])
    return run_predict(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
