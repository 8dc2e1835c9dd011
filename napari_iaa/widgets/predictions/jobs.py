"""The predictions dock's worker bodies (no Qt): predict a case, score masks, triage.

Each runs in a worker started by :func:`~napari_iaa.widgets._common.start_worker`; the
generators yield typed messages (:class:`~napari_iaa.widgets._common.Progress`,
:class:`~napari_iaa.widgets._common.DeviceInUse`, :class:`.events.TriageRows`) and return
the result.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_iaa.data import Case
from napari_iaa.errors import IAAError
from napari_iaa.predict import (
    CasePrediction,
    ModelSet,
    fill_reliability,
    load_models,
    predict_case,
    predict_iaa_images,
    predict_quality,
    volume_quality,
    volume_steps,
)
from napari_iaa.widgets._common.events import DeviceInUse, Progress
from napari_iaa.widgets.predictions.events import CaseResult, QualityScore, TriageRows
from napari_iaa.widgets.predictions.map_layers import display_maps

__all__ = ["ModelCache", "ModelKey", "TriageItem", "case_job", "quality_job", "triage_items",
           "triage_job"]

#: the models chosen in the Models tab: ``((slot, checkpoint), ...)`` and the device
ModelKey = tuple[tuple[tuple[str, str], ...], str]
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
_TRIAGE_COLUMNS = ["case_id", "predicted_iaa", "n_masks", "empirical_iaa", "image_path",
                   "iaa_model"]


class ModelCache:
    """The loaded models of the last choice, shared by the dock's workers (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: ModelSet | None = None
        self._key: ModelKey | None = None

    def forget(self) -> None:
        """Drop the loaded models (the choice changed)."""
        with self._lock:
            self._models = None
            self._key = None

    def get(self, key: ModelKey) -> ModelSet:
        """Load (or reuse) the models of ``key``; called in a worker thread."""
        with self._lock:
            if self._models is not None and self._key == key:
                return self._models
        models = load_models(dict(key[0]), device=key[1])
        with self._lock:
            self._models, self._key = models, key
        return models


def as_bool(m: Any) -> np.ndarray:
    """A mask as a boolean array (labels > 0); boolean arrays are passed through."""
    m = np.asarray(m)
    return m if m.dtype == bool else m > 0


def bool_case(case: Case) -> Case:
    """``case`` with boolean masks (a worker-side conversion of label-layer views)."""
    if all(np.asarray(m).dtype == bool for m in case.masks.values()):
        return case
    return dataclasses.replace(case, masks={k: as_bool(m) for k, m in case.masks.items()})


def case_job(case: Case, models: ModelCache, key: ModelKey, empty: str,
             max_pixels: int, batch_size: int = 8,
             plot: Callable[[CasePrediction], np.ndarray] | None = None,
             ) -> Generator[Any, None, CaseResult]:
    """Predict IAA, MHR maps and mask quality for the open case, then prepare the maps.

    The masks may be views of the live ones: a stroke painted meanwhile is either seen or
    not (the dock re-runs the prediction after edits). A volume is predicted slice by
    slice, ``batch_size`` slices per forward pass, with a :class:`Progress` of the slices
    done after every batch (so ``worker.quit()`` stops it between batches). ``plot`` draws
    the reliability diagram here too (a failed draw leaves it to the dock).
    """
    yield Progress(0, 4, "loading models")
    chosen = models.get(key)
    yield DeviceInUse(str(chosen.device))
    bcase = bool_case(case)
    if bcase.is_volume:  # (volume_steps records the models in the prediction)
        pred = yield from _slice_progress(volume_steps(bcase, chosen, empty=empty,
                                                       with_ece=False, batch_size=batch_size))
        steps = ("reliability (3D)", "preparing the 3D maps", "done")
    else:
        yield Progress(1, 4, "predicting")
        pred = predict_case(bcase, chosen, empty=empty, with_ece=False)
        steps = ("reliability", "preparing the maps", "done")
    # the reliability curves and the multi-rater ECE (accumulated over chunks of pixels)
    # as a step of their own, so the progress bar moves
    yield Progress(2, 4, steps[0])
    fill_reliability(pred, [bcase.masks[m] for m in bcase.mask_ids])
    yield Progress(3, 4, steps[1])
    maps = display_maps(pred, max_pixels)
    image = None
    if plot is not None:
        try:
            image = plot(pred)
        except Exception:  # noqa: BLE001 - the dock draws it again and shows the error
            image = None
    yield Progress(4, 4, steps[2])
    return CaseResult(pred, maps, image)


def _slice_progress(steps: Generator[tuple[int, int, str], None, CasePrediction]
                    ) -> Generator[Progress, None, CasePrediction]:
    """A volume's steps as :class:`Progress` messages ("MHR slices 8/40")."""
    try:
        while True:
            done, total, what = next(steps)
            yield Progress(done, total, f"{what}: slices")
    except StopIteration as stop:
        return stop.value
    finally:
        steps.close()  # a cancelled worker: no batch after this one


def quality_job(case: Case, masks: Mapping[str, np.ndarray], annotators: bool,
                models: ModelCache, key: ModelKey) -> dict[str, QualityScore]:
    """Predicted quality of ``masks`` on the case's image, beside their actual Dice.

    ``annotators``: the masks are the case's annotators (actual = leave-one-out Dice);
    else any other layer (actual = Dice against the annotators' majority vote).
    """
    from napari_iaa import agreement as ag

    chosen = models.get(key)
    masks = {k: as_bool(m) for k, m in masks.items()}
    if case.is_volume:  # per slice, weighted by the mask's area on each
        q = volume_quality(chosen.quality, case.image, masks)
    else:
        q = predict_quality(chosen.quality, case.image, masks)
    out: dict[str, QualityScore] = {}
    if annotators:
        loo: dict[str, float] = {}
        if len(masks) >= 2:
            vals = ag.leave_one_out_dice(list(masks.values()))
            loo = {k: float(v) for k, v in zip(masks, vals)}
        for k in masks:
            out[k] = QualityScore(q.get(k, math.nan), loo.get(k, math.nan), case.raters.get(k, k),
                                  chosen.name("quality"))
        return out
    others = [as_bool(case.masks[m]) for m in case.mask_ids if m not in masks]
    ref = ag.majority_vote(others) if others else None
    for k, m in masks.items():
        actual = float(ag.dice(m, ref)) if ref is not None else math.nan
        out[k] = QualityScore(q.get(k, math.nan), actual, "(layer vs. majority)",
                              chosen.name("quality"))
    return out


@dataclass(frozen=True)
class TriageItem:
    """One image to triage: a data set's case (``dataset`` set) or a plain image file."""

    case_id: str
    path: Path
    n_masks: int = 0
    dataset: Any = None

    def load(self) -> tuple[np.ndarray, float]:
        """The image and its empirical IAA (NaN without two masks)."""
        case, emp = self.load_case()
        return case.image, emp

    def load_case(self) -> tuple[Case, float]:
        """The case (a plain image file: without masks) and its empirical IAA."""
        if self.dataset is None:
            from napari_iaa.data import read_image

            return Case(self.case_id, read_image(self.path)), math.nan
        from napari_iaa import agreement as ag

        case = self.dataset.load(self.case_id)
        emp = float(ag.iaa(case.stack())) if case.n_masks >= 2 else math.nan
        return case, emp


def triage_items(folder: Path) -> list[TriageItem]:
    """What to score in a folder: a data set's cases if it is one, else its image files."""
    from napari_iaa.data import open_dataset

    try:
        ds = open_dataset(folder)
        ids = list(ds.ids)
    except IAAError:
        ds, ids = None, []
    if ds is not None and ids:
        items = []
        for cid in ids:
            entry = ds.entry(cid)
            items.append(TriageItem(cid, entry.image_path, len(entry.mask_paths), ds))
        return items
    return [TriageItem(p.stem, p) for p in sorted(folder.rglob("*"))
            if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file()
            and "mask" not in p.stem.lower()]


def triage_job(folder: Path, models: ModelCache, key: ModelKey, batch_size: int,
               stop: threading.Event) -> Generator[Any, None, Any]:
    """Predict the IAA of every image in ``folder`` in batches (``stop`` ends it early).

    Yields the rows of each batch (:class:`TriageRows`) and a :class:`Progress`; returns
    a DataFrame sorted by predicted IAA (most ambiguous first).
    """
    import pandas as pd

    chosen = models.get(key)
    items = triage_items(folder)
    total = len(items)
    rows: list[dict[str, Any]] = []
    yield Progress(0, total, "predicting IAA")
    for start in range(0, total, batch_size):
        if stop.is_set():
            break
        batch = items[start:start + batch_size]
        loaded = [it.load_case() for it in batch]
        vals = _batch_iaa(chosen, [c for c, _e in loaded], batch_size, stop)
        new = tuple({"case_id": it.case_id, "predicted_iaa": v, "n_masks": it.n_masks,
                     "empirical_iaa": emp, "image_path": str(it.path),
                     "iaa_model": chosen.name("iaa")}
                    for it, (_c, emp), v in zip(batch, loaded, vals))
        rows += new
        yield TriageRows(new)
        yield Progress(min(start + len(batch), total), total, "predicting IAA")
    df = pd.DataFrame(rows, columns=_TRIAGE_COLUMNS)
    return df.sort_values("predicted_iaa", kind="stable").reset_index(drop=True)


def _batch_iaa(chosen: ModelSet, cases: list[Case], batch_size: int,
               stop: threading.Event) -> list[float]:
    """Predicted IAA of a batch: 2D images together, a volume slice by slice (aggregated
    as :mod:`napari_iaa.predict.volume` documents, with the MHR model when chosen).

    When ``stop`` is set meanwhile, the values of the cases before the first one left
    undone (a prefix of ``cases``).
    """
    flat = [i for i, c in enumerate(cases) if not c.is_volume]
    got = predict_iaa_images(chosen.iaa, [cases[i].image for i in flat], batch_size,
                             should_stop=stop.is_set)
    flat_vals = dict(zip(flat, got))
    sub = ModelSet(iaa=chosen.iaa, mhr=chosen.mhr, device=chosen.device)
    out: list[float] = []
    for i, case in enumerate(cases):
        if not case.is_volume:
            if i not in flat_vals:
                break
            out.append(flat_vals[i])
            continue
        pred = predict_case(case, sub, with_ece=False, batch_size=batch_size,
                            should_stop=stop.is_set)
        if not pred.complete:
            break
        out.append(pred.predicted_iaa)
    return out
