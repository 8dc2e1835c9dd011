"""Per-case inter-annotator agreement of a data set, shared by ``napari-iaa score`` and the
review dock's data-set table.

One row per case: IAA (mean pairwise Dice over unordered mask pairs), its sample standard
deviation over pairs (``ddof=1``, as IMA++), the least agreeing pair, the annotators, the
group; then the two kinds of disagreement (issue 12): ``n_marked``,
``detection_agreement`` and ``iaa_marked`` (from the same pairwise counts, no second pass)
and the mean surface distances ``hd95_mean`` and ``assd_mean`` in the case's physical
units; then the case's metadata. Only the masks are decoded; the image's header gives the
shape they must have and the voxel spacing. No Qt, napari or torch here.
"""

from __future__ import annotations

import io
import math
import multiprocessing as mp
import sys
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_iaa.agreement import (
    detection_from_counts,
    dice_from_counts,
    pairwise_counts,
    pairwise_surface_distances,
)
from napari_iaa.data import (
    Case,
    Dataset,
    Problem,
    open_dataset,
)
from napari_iaa.errors import ConfigError, IAAError

__all__ = [
    "DETECTION_COLUMNS",
    "EMPTY_PAIR_RULES",
    "SCORE_COLUMNS",
    "SURFACE_COLUMNS",
    "CaseScore",
    "MaskCase",
    "ScoreResult",
    "is_user_facing",
    "load_masks",
    "score_case",
    "score_dataset",
    "score_id",
]

EMPTY_PAIR_RULES = ("one", "zero", "ignore")

#: Column order of ``napari-iaa score``; metadata columns follow.
SCORE_COLUMNS = [
    "case_id",
    "n_annotators",
    "n_masks",
    "n_pairs",
    "iaa",
    "iaa_std",
    "min_pair_dice",
    "min_pair",
    "annotators",
    "group",
]
#: Added by issue 12, right after :data:`SCORE_COLUMNS` (whose names and positions are
#: unchanged): did the annotators agree that something is there, and how well do those
#: who marked it agree on its border.
DETECTION_COLUMNS = ["n_marked", "detection_agreement", "iaa_marked"]
#: Mean HD95 and ASSD over mask pairs where both masks are non-empty (MONAI's definitions,
#: physical units of the spacing; unit voxels without one). Left out with ``surface=False``.
SURFACE_COLUMNS = ["hd95_mean", "assd_mean"]


# ----------------------------------------------------------------------------- results


@dataclass
class ScoreResult:
    """What :func:`score_dataset` returns: ``rows`` (one per scored case, the CSV rows),
    ``problems`` (cases that could not be scored and data-set problems, one message each),
    ``warnings`` (non-fatal notes, e.g. a mask that is not two-valued), ``n_cases`` (cases
    in the index) and ``stopped`` (``should_stop`` ended the run early)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    n_cases: int = 0
    stopped: bool = False

    def to_frame(self):
        """The rows as a :class:`pandas.DataFrame`, score columns first."""
        import pandas as pd

        frame = pd.DataFrame(self.rows)
        if frame.empty:
            return pd.DataFrame(columns=SCORE_COLUMNS + DETECTION_COLUMNS)
        order = SCORE_COLUMNS + DETECTION_COLUMNS + SURFACE_COLUMNS
        first = [c for c in order if c in frame.columns]
        rest = [c for c in frame.columns if c not in first]
        return frame[first + rest]

    def to_csv(self) -> str:
        """The table as CSV text, full precision (values round-trip exactly)."""
        buf = io.StringIO()
        self.to_frame().to_csv(buf, index=False)
        return buf.getvalue()


@dataclass
class CaseScore:
    """The outcome of scoring one case: ``row`` (of :func:`score_case`, None when the case
    could not be scored), ``error`` (why not, naming the file) and ``warnings`` about the
    case's files when the caller recorded them."""

    case_id: str
    row: dict[str, Any] | None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- one case


@dataclass
class MaskCase:
    """The part of a :class:`~napari_iaa.data.Case` that scoring needs (no image pixels)."""

    case_id: str
    masks: dict[str, np.ndarray]
    raters: dict[str, str]
    meta: dict[str, Any]
    group: str | None
    spacing: tuple[float, ...] | None = None

    @property
    def mask_ids(self) -> list[str]:
        """Mask ids in order."""
        return list(self.masks)


def load_masks(ds: Dataset, case_id: str) -> MaskCase:
    """Decode a case's masks (a :class:`MaskCase`); the image is not decoded, its header
    gives the shape and the voxel spacing (None: unit voxels).

    Raises :class:`~napari_iaa.errors.IAAError` naming the file for an unreadable image
    header or mask, or a mask of another shape.
    """
    entry = ds.entry(case_id)
    masks, spacing = entry.read_masks()
    return MaskCase(entry.case_id, masks, dict(entry.raters), dict(entry.meta), entry.group,
                    spacing)


def _empty_row(case: Case | MaskCase, ids: list[str], raters: list[str],
               surface: bool) -> dict[str, Any]:
    row = dict.fromkeys(SCORE_COLUMNS + DETECTION_COLUMNS + (SURFACE_COLUMNS if surface else []),
                        math.nan)
    row.update(case_id=case.case_id, n_annotators=len(set(raters)), n_masks=len(ids), n_pairs=0,
               min_pair="", annotators=";".join(ids), n_marked=0,
               group=case.group if case.group is not None else "")
    return row


def _pair_keep(ids: list[str], raters: list[str], same_rater_pairs: bool
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unordered pairs ``(i, j)`` and which of them count (same-rater pairs or not)."""
    iu, ju = np.triu_indices(len(ids), k=1)
    keep = np.ones(iu.size, dtype=bool)
    if not same_rater_pairs:
        keep &= np.array([raters[i] != raters[j] for i, j in zip(iu, ju, strict=True)], dtype=bool)
    return iu, ju, keep


def _add_pair_scores(
    row: dict[str, Any], counts: np.ndarray, inter: np.ndarray, ids: list[str],
    raters: list[str], empty: str, same_rater_pairs: bool,
) -> None:
    """Fill ``n_pairs, iaa, iaa_std, min_pair_dice, min_pair`` of ``row`` (two masks or more)."""
    d = np.asarray(dice_from_counts(counts, inter, empty=empty), dtype=float)
    iu, ju, keep = _pair_keep(ids, raters, same_rater_pairs)
    vals = d[iu, ju]
    keep &= ~np.isnan(vals)
    vals, iu, ju = vals[keep], iu[keep], ju[keep]
    row["n_pairs"] = int(vals.size)
    if vals.size:
        row["iaa"] = float(vals.mean())
        row["iaa_std"] = float(vals.std(ddof=1)) if vals.size > 1 else math.nan
        k = int(np.argmin(vals))
        row["min_pair_dice"] = float(vals[k])
        row["min_pair"] = f"{ids[iu[k]]};{ids[ju[k]]}"


def _add_surface(row: dict[str, Any], masks: list[np.ndarray], ids: list[str],
                 raters: list[str], same_rater_pairs: bool,
                 spacing: tuple[float, ...] | None) -> None:
    """Fill ``hd95_mean, assd_mean``: means over the counted pairs of non-empty masks."""
    sd = pairwise_surface_distances(dict(zip(ids, masks, strict=True)), spacing, 95.0)
    iu, ju, keep = _pair_keep(ids, raters, same_rater_pairs)
    for col, mat in (("hd95_mean", sd.hd), ("assd_mean", sd.assd)):
        vals = mat[iu[keep], ju[keep]]
        vals = vals[np.isfinite(vals)]
        row[col] = float(vals.mean()) if vals.size else math.nan


def score_case(
    case: Case | MaskCase,
    empty: str = "zero",
    same_rater_pairs: bool = True,
    surface: bool = True,
) -> dict[str, Any]:
    """Agreement of one case as a flat row.

    Parameters
    ----------
    case : napari_iaa.data.Case or MaskCase
        The case (the image is not used, only ``masks``, ``raters``, ``meta``, ``group``
        and ``spacing``).
    empty : {"one", "zero", "ignore"}
        Score of a pair whose masks are both empty (``zero`` as in IMA++; ``ignore``
        drops such pairs); a pair with one empty mask scores 0.
    same_rater_pairs : bool
        Count pairs of masks drawn by the same annotator (IMA++ does); applies to
        ``iaa_marked`` and the surface means too.
    surface : bool
        Compute ``hd95_mean`` and ``assd_mean`` (a distance transform per non-empty mask:
        several times the cost of the Dice counts on large images).

    Returns
    -------
    dict
        ``case_id, n_annotators, n_masks, n_pairs, iaa, iaa_std`` (sample std over pairs,
        as IMA++), ``min_pair_dice, min_pair`` (``"a;b"``), ``annotators`` (mask ids
        joined by ``;``), ``group``; ``n_marked`` (non-empty masks),
        ``detection_agreement`` (``n_marked / n_masks``), ``iaa_marked`` (IAA over the
        non-empty masks, NaN with fewer than two); with ``surface``: ``hd95_mean`` and
        ``assd_mean`` (NaN when no pair has two non-empty masks); then the metadata.

    Raises
    ------
    ConfigError
        ``empty`` is not one of :data:`EMPTY_PAIR_RULES`.
    """
    if empty not in EMPTY_PAIR_RULES:
        raise ConfigError(f"--empty-pair must be one of {', '.join(EMPTY_PAIR_RULES)}, not {empty!r}")
    ids = list(case.mask_ids)
    raters = [str(case.raters.get(m, m)) for m in ids] if case.raters else list(ids)
    row = _empty_row(case, ids, raters, surface)
    masks = [case.masks[m] for m in ids]
    if ids:
        counts, inter = pairwise_counts(masks)  # one read of each mask, shared below
        if len(ids) >= 2:
            _add_pair_scores(row, counts, inter, ids, raters, empty, same_rater_pairs)
        det = detection_from_counts(ids, counts, inter, raters, same_rater_pairs)
        row.update(n_marked=det.n_marked, detection_agreement=det.detection_agreement,
                   iaa_marked=det.iaa_marked)
        if surface and det.n_marked >= 2:
            _add_surface(row, masks, ids, raters, same_rater_pairs, case.spacing)
    for key, value in (case.meta or {}).items():
        if key in row:
            key = f"meta_{key}"
        row[key] = _flat_value(value)
    return row


def _flat_value(value: Any) -> Any:
    """A CSV-friendly cell: mappings as ``k=v;k=v``, sequences as ``a;b``."""
    if isinstance(value, dict):
        return ";".join(f"{k}={_flat_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return ";".join(str(_flat_value(v)) for v in value)
    if isinstance(value, Path):
        return str(value)
    return value


def score_id(
    ds: Dataset, case_id: str, empty: str = "zero", same_rater_pairs: bool = True,
    surface: bool = True,
) -> CaseScore:
    """Load the masks of one case and score them (``empty``, ``same_rater_pairs``,
    ``surface`` as in :func:`score_case`); a bad case gives a :class:`CaseScore` with the
    error message (naming the file), not an exception.

    Warnings are left to the caller (``warnings.catch_warnings`` is not thread-safe, so a
    worker thread must not record them here).
    """
    try:
        row = score_case(load_masks(ds, case_id), empty, same_rater_pairs, surface)
    except IAAError as exc:
        return CaseScore(case_id, None, str(exc))
    except (OSError, ValueError) as exc:
        return CaseScore(case_id, None, f"{type(exc).__name__}: {exc}")
    return CaseScore(case_id, row)


def is_user_facing(category: type[Warning]) -> bool:
    """Whether a warning category is about the user's data (e.g. MaskEncodingWarning), not
    library noise."""
    return issubclass(category, UserWarning) and not issubclass(category, DeprecationWarning)


#: ``(empty, same_rater_pairs, surface)``: what :func:`score_case` is told, passed as one
_Options = tuple[str, bool, bool]


def _score_ids(ds: Dataset, ids: Iterable[str], opts: _Options) -> list[CaseScore]:
    """Score cases by id in this thread, recording each case's warnings."""
    out = []
    for cid in ids:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            score = score_id(ds, cid, *opts)
        score.warnings = [f"case {cid}: {w.message}" for w in caught if is_user_facing(w.category)]
        out.append(score)
    return out


# ----------------------------------------------------------------------------- a data set


class _Collector:
    """Gathers case scores into a :class:`ScoreResult` and reports progress."""

    def __init__(self, result: ScoreResult, progress: Callable[[int, int], None] | None) -> None:
        self.result = result
        self.progress = progress
        self.done = 0
        self.rows: dict[str, dict[str, Any]] = {}

    def add(self, scores: Iterable[CaseScore]) -> None:
        for s in scores:
            if s.row is not None:
                self.rows[s.case_id] = s.row
            if s.error is not None:
                self.result.problems.append(f"case {s.case_id}: {s.error}")
            self.result.warnings.extend(s.warnings)
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.result.n_cases)


def _stop_requested(should_stop: Callable[[], bool] | None) -> bool:
    return should_stop is not None and should_stop()


def _score_serial(ds: Dataset, ids: list[str], opts: _Options, collect: _Collector,
                  should_stop: Callable[[], bool] | None) -> bool:
    """Score in this process, case by case; True when ``should_stop`` ended the run."""
    for cid in ids:
        if _stop_requested(should_stop):
            return True
        collect.add(_score_ids(ds, [cid], opts))
    return False


_WORKER_DS: Dataset | None = None
_WORKER_OPTS: _Options = ("zero", True, True)


def _worker_init(root: str, open_kw: dict[str, Any], opts: _Options) -> None:
    global _WORKER_DS, _WORKER_OPTS
    if _WORKER_DS is None:  # spawn start method: open the index again
        _WORKER_DS = open_dataset(root, **open_kw)
    _WORKER_OPTS = opts


def _worker_score(ids: list[str]) -> list[CaseScore]:
    return _score_ids(_WORKER_DS, ids, _WORKER_OPTS)


def _chunks(ids: list[str], workers: int) -> list[list[str]]:
    """Work units of 1..64 cases, about 8 per worker."""
    total = len(ids)
    chunk = max(1, min(64, total // (workers * 8) or 1))
    return [ids[i : i + chunk] for i in range(0, total, chunk)]


def _open_kwargs(ds: Dataset) -> dict[str, Any]:
    """How to open ``ds`` again in a spawned worker (its layout, and its unit if it has one)."""
    kw: dict[str, Any] = {"layout": ds.layout}
    if ds.unit is not None:
        kw["unit"] = ds.unit
    return kw


def _score_parallel(ds: Dataset, ids: list[str], opts: _Options, workers: int,
                    collect: _Collector, should_stop: Callable[[], bool] | None) -> bool:
    """Score in ``workers`` processes, results in order; True when ``should_stop`` ended it."""
    global _WORKER_DS
    method = "fork" if "fork" in mp.get_all_start_methods() and sys.platform != "darwin" else "spawn"
    _WORKER_DS = ds if method == "fork" else None  # fork: the children inherit the index
    try:
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context(method),
            initializer=_worker_init,
            initargs=(str(ds.root), _open_kwargs(ds), opts),
        ) as pool:
            futures = [pool.submit(_worker_score, c) for c in _chunks(ids, workers)]
            for fut in futures:
                if _stop_requested(should_stop):
                    for f in futures:
                        f.cancel()
                    return True
                collect.add(fut.result())
    finally:
        _WORKER_DS = None
    return False


def _add_late_problems(result: ScoreResult, problems: Iterable[Problem]) -> None:
    """Problems the data set recorded while scoring, unless already reported for a case."""
    seen = set(result.problems)
    for p in problems:
        text = str(p)  # Problem.__str__ is "path: message"
        if text not in seen:
            result.problems.append(text)


def score_dataset(
    ds: Dataset,
    empty: str = "zero",
    same_rater_pairs: bool = True,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    surface: bool = True,
) -> ScoreResult:
    """Score every case of a data set.

    Parameters
    ----------
    ds : napari_iaa.data.Dataset
        The (lazy) data set; cases are loaded one at a time.
    empty, same_rater_pairs, surface
        As in :func:`score_case`.
    workers : int
        Processes to use (1: in this process).
    progress : callable, optional
        ``progress(done, total)`` after each case.
    should_stop : callable, optional
        Checked between cases; True ends the run early (``result.stopped``).

    Returns
    -------
    ScoreResult
        Rows in the data set's order, problems and warnings.
    """
    ids = ds.ids
    result = ScoreResult(n_cases=len(ids))
    result.problems.extend(str(p) for p in ds.problems)
    known = len(ds.problems)
    collect = _Collector(result, progress)
    workers = max(1, int(workers))
    opts: _Options = (empty, bool(same_rater_pairs), bool(surface))
    if workers == 1 or len(ids) < 2 * workers:
        result.stopped = _score_serial(ds, ids, opts, collect, should_stop)
    else:
        result.stopped = _score_parallel(ds, ids, opts, workers, collect, should_stop)
    _add_late_problems(result, ds.problems[known:])
    result.rows = [collect.rows[c] for c in ids if c in collect.rows]
    return result
