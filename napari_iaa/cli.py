"""The ``napari-iaa`` command.

Subcommands
-----------
``score``   per-case inter-annotator agreement of a data set, as CSV.
``cohort``  agreement by group (e.g. benign/malignant): table, JSON and PNG plot.
``synth``   write a synthetic dermoscopy-like data set in the IMA++ layout.
``view``    open napari with the review dock on a data set (the sample data by default).

Bad input (an :class:`~napari_iaa.errors.IAAError`, an unreadable or unwritable file, a bad
argument) ends with one line ``napari-iaa: error: <message>`` and exit code 2, never with a
traceback. The command imports neither Qt nor napari except in ``view``.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_iaa.errors import ConfigError, DatasetError, IAAError

__all__ = [
    "main",
    "build_parser",
    "score_case",
    "score_dataset",
    "ScoreResult",
    "read_cohort_table",
    "display_problem",
    "EMPTY_PAIR_RULES",
]

PROG = "napari-iaa"
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

_IMAGE_SUFFIX = re.compile(r"\.(jpe?g|png|tiff?|bmp|gif|webp)$", re.IGNORECASE)
_ID_CANDIDATES = ("case_id", "img_id", "isic_id", "ISIC_id", "image_id", "image", "id")
_VALUE_CANDIDATES = ("iaa", "dice_score_mean", "IAA", "mean_dice")


# ----------------------------------------------------------------------------- errors


class _UsageError(Exception):
    """Raised by the parser instead of exiting, so ``main`` can return 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _err(message: str) -> None:
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {_one_line(message)}", file=sys.stderr)


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


# ----------------------------------------------------------------------------- scoring


@dataclass
class ScoreResult:
    """What :func:`score_dataset` returns.

    Attributes
    ----------
    rows : list of dict
        One row per scored case (the CSV rows).
    problems : list of str
        Cases that could not be scored and data-set problems, one message each.
    warnings : list of str
        Non-fatal notes (e.g. a mask that is not two-valued), one message each.
    n_cases : int
        Cases in the data set's index.
    stopped : bool
        True when ``should_stop`` ended the run early.
    """

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
            return pd.DataFrame(columns=SCORE_COLUMNS)
        first = [c for c in SCORE_COLUMNS if c in frame.columns]
        rest = [c for c in frame.columns if c not in first]
        return frame[first + rest]


def _pair_dice_matrix(masks: Sequence[np.ndarray], empty: str) -> np.ndarray:
    """N x N Dice from the agreement room's pairwise counting (one read of each mask)."""
    from napari_iaa.agreement import dice_from_counts, pairwise_counts

    counts, inter = pairwise_counts(list(masks))
    return np.asarray(dice_from_counts(counts, inter, empty=empty), dtype=float)


def score_case(
    case: Any,
    empty: str = "zero",
    same_rater_pairs: bool = True,
) -> dict[str, Any]:
    """Agreement of one case as a flat row.

    Parameters
    ----------
    case : napari_iaa.data.Case
        The case (image is not used, only ``masks``, ``raters``, ``meta``, ``group``).
    empty : {"one", "zero", "ignore"}
        Score of a pair whose masks are both empty (``zero`` as in IMA++; ``ignore``
        drops such pairs); a pair with one empty mask scores 0.
    same_rater_pairs : bool
        Count pairs of masks drawn by the same annotator (IMA++ does).

    Returns
    -------
    dict
        ``case_id, n_annotators, n_masks, n_pairs, iaa, iaa_std`` (sample std over pairs,
        as IMA++), ``min_pair_dice, min_pair`` (``"a;b"``), ``annotators`` (mask ids
        joined by ``;``), ``group`` and the case's metadata.
    """
    if empty not in EMPTY_PAIR_RULES:
        raise ConfigError(f"--empty-pair must be one of {', '.join(EMPTY_PAIR_RULES)}, not {empty!r}")
    ids = list(case.mask_ids)
    raters = [str(case.raters.get(m, m)) for m in ids] if case.raters else list(ids)
    row: dict[str, Any] = {
        "case_id": case.case_id,
        "n_annotators": len(set(raters)),
        "n_masks": len(ids),
        "n_pairs": 0,
        "iaa": math.nan,
        "iaa_std": math.nan,
        "min_pair_dice": math.nan,
        "min_pair": "",
        "annotators": ";".join(ids),
        "group": case.group if case.group is not None else "",
    }
    if len(ids) >= 2:
        d = _pair_dice_matrix([case.masks[m] for m in ids], empty)
        iu, ju = np.triu_indices(len(ids), k=1)
        keep = np.ones(iu.size, dtype=bool)
        if not same_rater_pairs:
            keep &= np.array([raters[i] != raters[j] for i, j in zip(iu, ju)], dtype=bool)
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


def _user_facing(category: type[Warning]) -> bool:
    """Warnings about the user's data (e.g. MaskEncodingWarning), not library noise."""
    return issubclass(category, UserWarning) and not issubclass(category, DeprecationWarning)


def _problem_text(p: Any) -> str:
    return str(p)  # Problem.__str__ is "path: message"


@dataclass
class _MaskCase:
    """The part of a Case that scoring needs (no image pixels)."""

    case_id: str
    masks: dict[str, np.ndarray]
    raters: dict[str, str]
    meta: dict[str, Any]
    group: str | None

    @property
    def mask_ids(self) -> list[str]:
        return list(self.masks)


def _load_masks(ds: Any, case_id: str) -> _MaskCase:
    """Decode a case's masks; the image is not decoded, its header gives the shape."""
    from napari_iaa.data import image_shape, read_mask

    entry = ds.entry(case_id)
    shape = image_shape(entry.image_path)
    masks = {mid: read_mask(path, shape=shape) for mid, path in entry.mask_paths.items()}
    return _MaskCase(entry.case_id, masks, dict(entry.raters), dict(entry.meta), entry.group)


def _score_ids(
    ds: Any, ids: Iterable[str], empty: str, same_rater_pairs: bool
) -> list[tuple[str, dict | None, str | None, list[str]]]:
    """Score cases by id: ``(case_id, row or None, problem or None, warnings)``."""
    out = []
    for cid in ids:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                case = _load_masks(ds, cid)
                row = score_case(case, empty=empty, same_rater_pairs=same_rater_pairs)
                problem = None
            except IAAError as exc:
                row, problem = None, f"case {cid}: {exc}"
            except (OSError, ValueError) as exc:
                row, problem = None, f"case {cid}: {type(exc).__name__}: {exc}"
        notes = [f"case {cid}: {w.message}" for w in caught if _user_facing(w.category)]
        out.append((cid, row, problem, notes))
    return out


_WORKER_DS: Any = None
_WORKER_ARGS: tuple[str, str] = ("zero", "1")


def _worker_init(root: str, layout: str | None, empty: str, same: bool) -> None:
    global _WORKER_DS, _WORKER_ARGS
    if _WORKER_DS is None:  # spawn start method: open the index again
        from napari_iaa.data import open_dataset

        _WORKER_DS = open_dataset(root, layout=layout)
    _WORKER_ARGS = (empty, "1" if same else "0")


def _worker_score(ids: list[str]):
    empty, same = _WORKER_ARGS
    return _score_ids(_WORKER_DS, ids, empty, same == "1")


def score_dataset(
    ds: Any,
    empty: str = "zero",
    same_rater_pairs: bool = True,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ScoreResult:
    """Score every case of a data set.

    Parameters
    ----------
    ds : napari_iaa.data.Dataset
        The (lazy) data set; cases are loaded one at a time.
    empty, same_rater_pairs
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
    ids = list(ds.ids)
    result = ScoreResult(n_cases=len(ids))
    result.problems.extend(_problem_text(p) for p in getattr(ds, "problems", []) or [])
    known = len(result.problems)
    total = len(ids)
    done = 0
    rows: dict[str, dict] = {}

    def consume(batch):
        nonlocal done
        for cid, row, problem, notes in batch:
            if row is not None:
                rows[cid] = row
            if problem is not None:
                result.problems.append(problem)
            result.warnings.extend(notes)
            done += 1
            if progress is not None:
                progress(done, total)

    workers = max(1, int(workers))
    if workers == 1 or total < 2 * workers:
        for cid in ids:
            if should_stop is not None and should_stop():
                result.stopped = True
                break
            consume(_score_ids(ds, [cid], empty, same_rater_pairs))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        global _WORKER_DS
        method = "fork" if "fork" in mp.get_all_start_methods() and sys.platform != "darwin" else "spawn"
        _WORKER_DS = ds if method == "fork" else None
        chunk = max(1, min(64, total // (workers * 8) or 1))
        chunks = [ids[i : i + chunk] for i in range(0, total, chunk)]
        root = str(getattr(ds, "root", ""))
        layout = getattr(ds, "layout", None)
        try:
            with ProcessPoolExecutor(
                max_workers=workers,
                mp_context=mp.get_context(method),
                initializer=_worker_init,
                initargs=(root, layout, empty, same_rater_pairs),
            ) as pool:
                futures = [pool.submit(_worker_score, c) for c in chunks]
                for fut in futures:
                    if should_stop is not None and should_stop():
                        result.stopped = True
                        for f in futures:
                            f.cancel()
                        break
                    consume(fut.result())
        finally:
            _WORKER_DS = None
    # problems the data set recorded while loading (not already reported as a failed case)
    seen = set(result.problems)
    for p in list(getattr(ds, "problems", []) or [])[known:]:
        text = _problem_text(p)
        if text not in seen:
            result.problems.append(text)
    result.rows = [rows[c] for c in ids if c in rows]
    return result


# ----------------------------------------------------------------------------- writing


def _atomic_write_text(path: Path, text: str) -> None:
    from napari_iaa.data import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))


def _frame_to_csv(frame) -> str:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)  # full precision: values round-trip exactly
    return buf.getvalue()


def _check_writable_target(path: Path, what: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder, not a file")
    if not parent.is_dir():
        raise ConfigError(f"{what} {path}: folder {parent} does not exist")


# ----------------------------------------------------------------------------- commands


def _cmd_score(args: argparse.Namespace) -> int:
    from napari_iaa.data import open_dataset

    out = Path(args.out) if args.out else None
    if out is not None:
        _check_writable_target(out, "--out")
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {args.workers}")
    path = Path(args.dataset)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = open_dataset(path, layout=args.layout)
    open_notes = [str(w.message) for w in caught if _user_facing(w.category)]
    total = len(ds)
    if total == 0:
        probs = "; ".join(_problem_text(p) for p in (ds.problems or [])[:3])
        raise DatasetError(f"{path}: no cases found" + (f" ({probs})" if probs else ""))

    bar = None
    progress = None
    if sys.stderr.isatty() and not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="case", desc="scoring", file=sys.stderr, leave=False)

        def progress(done: int, n: int) -> None:  # noqa: F811
            bar.update(done - bar.n)

    try:
        result = score_dataset(
            ds,
            empty=args.empty_pair,
            same_rater_pairs=args.same_rater_pairs,
            workers=args.workers,
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    result.warnings[:0] = open_notes

    for text in result.warnings:
        _warn(text)
    for text in result.problems:
        _warn(text)
    if not result.rows:
        raise DatasetError(f"{path}: none of the {total} cases could be scored (see warnings above)")
    frame = result.to_frame()
    csv_text = _frame_to_csv(frame)
    if out is not None:
        _atomic_write_text(out, csv_text)
    else:
        sys.stdout.write(csv_text)
        sys.stdout.flush()
    iaa = frame["iaa"].astype(float)
    summary = (
        f"scored {len(frame)} of {total} cases ({ds.layout} layout, empty pair = {args.empty_pair}"
        f"{'' if args.same_rater_pairs else ', same-rater pairs left out'}); "
        f"mean IAA {np.nanmean(iaa) if iaa.notna().any() else math.nan:.4f}, "
        f"{int(iaa.isna().sum())} without a score; "
        f"{len(result.problems)} problem(s), {len(result.warnings)} warning(s)"
        + (f"; wrote {out}" if out is not None else "")
    )
    if not args.quiet:
        print(summary, file=sys.stderr)
    return 0


def _pick_column(columns: Sequence[str], wanted: str | None, candidates: Sequence[str], path: Path, what: str) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise DatasetError(f"{path}: no column {wanted!r} ({what}); columns are {', '.join(map(str, columns))}")
        return wanted
    for c in candidates:
        if c in columns:
            return c
    lower = {str(c).lower(): c for c in columns}
    for c in candidates:
        if c.lower() in lower:
            return lower[c.lower()]
    raise DatasetError(
        f"{path}: cannot tell which column holds the {what} (looked for {', '.join(candidates)}); "
        f"columns are {', '.join(map(str, columns))}"
    )


def _normalise_id(value: Any) -> str:
    return _IMAGE_SUFFIX.sub("", str(value).strip())


def _read_csv(path: Path, what: str):
    import pandas as pd

    if not path.is_file():
        raise DatasetError(f"{path}: {what} not found")
    try:
        frame = pd.read_csv(path, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not a readable CSV ({_one_line(str(exc))})") from exc
    if frame.empty:
        raise DatasetError(f"{path}: {what} has no rows")
    return frame


def read_cohort_table(
    iaa_csv: str | Path,
    labels_csv: str | Path | None,
    by: str,
    id_column: str | None = None,
    labels_id_column: str | None = None,
    value_column: str | None = None,
):
    """Join per-case IAA with a label table on the case id.

    Ids are compared without an image suffix (``ISIC_0000004.JPG`` == ``ISIC_0000004``),
    so IMA++'s ``img_id`` joins with the ISIC ``isic_id``.

    Parameters
    ----------
    iaa_csv : path
        Per-case IAA (``napari-iaa score`` output, or a table with ``dice_score_mean``).
    labels_csv : path or None
        Table holding the ``by`` column; None: take it from ``iaa_csv``.
    by : str
        Group column (e.g. ``benign_malignant``).
    id_column, labels_id_column, value_column : str, optional
        Override the detected column names.

    Returns
    -------
    (pandas.DataFrame, dict)
        Joined table with columns ``case_id``, ``iaa``, ``group``; and join counts
        (``n_iaa``, ``n_labels``, ``n_joined``, ``n_unmatched``, ``n_missing``).
    """
    import pandas as pd

    iaa_path = Path(iaa_csv)
    left = _read_csv(iaa_path, "IAA table")
    lid = _pick_column(list(left.columns), id_column, _ID_CANDIDATES, iaa_path, "case id")
    val = _pick_column(list(left.columns), value_column, _VALUE_CANDIDATES, iaa_path, "IAA value")
    left = pd.DataFrame({"case_id": left[lid].map(_normalise_id), "iaa": pd.to_numeric(left[val], errors="coerce"),
                         **({"_by": left[by]} if labels_csv is None and by in left.columns else {})})
    counts = {"n_iaa": int(len(left))}
    if labels_csv is None:
        if "_by" not in left.columns:
            raise DatasetError(f"{iaa_path}: no column {by!r}; give the labels with --labels META.csv")
        joined = left.rename(columns={"_by": "group"})
        counts["n_labels"] = int(len(left))
    else:
        lab_path = Path(labels_csv)
        right = _read_csv(lab_path, "label table")
        if by not in right.columns:
            raise DatasetError(f"{lab_path}: no column {by!r} (--by); columns are {', '.join(map(str, right.columns))}")
        rid = _pick_column(list(right.columns), labels_id_column, _ID_CANDIDATES, lab_path, "case id")
        right = pd.DataFrame({"case_id": right[rid].map(_normalise_id), "group": right[by]})
        dup = right["case_id"].duplicated(keep=False)
        if dup.any():
            conflicting = right[dup].groupby("case_id")["group"].nunique()
            bad = conflicting[conflicting > 1]
            if len(bad):
                raise DatasetError(f"{lab_path}: case {bad.index[0]} has conflicting {by!r} values")
            right = right.drop_duplicates("case_id")
        counts["n_labels"] = int(len(right))
        joined = left.merge(right, on="case_id", how="inner")
    n_join = len(joined)
    joined = joined[joined["iaa"].notna() & joined["group"].notna()]
    joined = joined.assign(group=joined["group"].astype(str))
    counts["n_joined"] = int(n_join)
    counts["n_unmatched"] = int(counts["n_iaa"] - n_join)
    counts["n_missing"] = int(n_join - len(joined))
    if joined.empty:
        raise DatasetError(
            f"{iaa_path}: no case id matches {labels_csv} (ids like {left['case_id'].iloc[0]!r})"
            if labels_csv is not None
            else f"{iaa_path}: no case has both an IAA value and a {by!r} value"
        )
    return joined.reset_index(drop=True), counts


def _jsonable(obj: Any) -> Any:
    import dataclasses

    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return _jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _cmd_cohort(args: argparse.Namespace) -> int:
    import json

    from napari_iaa.agreement import cohort_statistics, plot_cohort

    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} exists and is not a folder")
    table, counts = read_cohort_table(
        args.iaa_csv, args.labels, args.by, id_column=args.id_column,
        labels_id_column=args.labels_id_column, value_column=args.value_column,
    )
    source = args.labels or args.iaa_csv
    order = None
    if args.groups:
        order = [g.strip() for g in args.groups.split(",") if g.strip()]
        present = set(table["group"])
        missing = [g for g in order if g not in present]
        if missing:
            raise DatasetError(
                f"{source}: no joined case has {args.by} = {', '.join(missing)} "
                f"(values: {', '.join(sorted(present)[:10])})"
            )
    elif table["group"].nunique() < 2:
        raise DatasetError(f"{source}: column {args.by!r} has fewer than two groups among the joined cases")
    result = cohort_statistics(
        table["iaa"].to_numpy(float), table["group"].to_numpy(object),
        alternative=args.alternative, group_order=order,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "iaa_csv": str(Path(args.iaa_csv).resolve()),
        "labels_csv": str(Path(args.labels).resolve()) if args.labels else None,
        "by": args.by,
        "join": counts,
        "result": _jsonable(result),
    }
    _atomic_write_text(out_dir / "cohort.json", json.dumps(payload, indent=2, allow_nan=False) + "\n")
    plot_cohort(result, out_dir / "cohort.png")
    print(
        f"joined {counts['n_joined']} of {counts['n_iaa']} cases with {source} "
        f"({counts['n_unmatched']} without a label row, {counts['n_missing']} without IAA or {args.by})"
    )
    print(result.table())
    verdict = "significant" if result.significant else "not significant"
    print(f"{verdict} at 0.05 (one-sided Mann-Whitney U, {result.alternative})")
    print(f"wrote {out_dir / 'cohort.json'} and {out_dir / 'cohort.png'}")
    return 0


def _parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX*,]\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"size must look like WIDTHxHEIGHT (e.g. 256x256), not {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small (at least 16x16)")
    return w, h


def _parse_range(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if not m:
        raise argparse.ArgumentTypeError(f"annotators must look like LO-HI (e.g. 2-5) or N, not {text!r}")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    return lo, hi


def _cmd_synth(args: argparse.Namespace) -> int:
    from napari_iaa.data import generate_synthetic_dataset

    if args.n < 1:
        raise ConfigError(f"--n must be at least 1, not {args.n}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise ConfigError(f"{out} is not empty (use --force to replace a synthetic data set there)")
    w, h = args.size
    bar = None
    progress = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=args.n, unit="case", desc="generating", file=sys.stderr, leave=False)

        def progress(done: int, n: int) -> None:  # noqa: F811
            bar.update(done - bar.n)

    try:
        path = generate_synthetic_dataset(
            out, n=args.n, seed=args.seed, size=(h, w), n_annotators=args.annotators,
            image_format=args.format, overwrite=args.force, progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote {args.n} synthetic cases ({w}x{h}, seed {args.seed}) to {path}")
    return 0


def display_problem(environ: dict[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why a window cannot open here, or None if it can.

    On Linux a window needs ``DISPLAY`` or ``WAYLAND_DISPLAY`` (or
    ``QT_QPA_PLATFORM=offscreen``); other systems are assumed to have a screen.
    """
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    if not plat.startswith("linux"):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    if env.get("QT_QPA_PLATFORM", "").split(":")[0] == "offscreen":
        return None
    return (
        "no display: neither DISPLAY nor WAYLAND_DISPLAY is set, so napari cannot open a "
        "window; run on a desktop, or under a virtual display: xvfb-run -a napari-iaa view "
        "(Debian/Ubuntu: apt-get install xvfb)"
    )


def _cmd_view(args: argparse.Namespace) -> int:
    problem = display_problem()
    if problem is not None:
        raise ConfigError(problem)
    from napari_iaa.data import open_dataset, sample_data_path

    path = Path(args.dataset) if args.dataset else sample_data_path("synthetic")
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    ds = open_dataset(path, layout=args.layout)
    if len(ds) == 0:
        raise DatasetError(f"{path}: no cases found")
    for p in ds.problems or []:
        _warn(_problem_text(p))

    import napari  # lazy: only the viewer needs Qt

    viewer = napari.Viewer(title=f"napari-iaa: {path.name}")
    _attach_review_dock(viewer, ds, source=path, case_id=args.case)
    napari.run()
    return 0


def _attach_review_dock(viewer: Any, ds: Any, source: str | Path | None = None,
                        case_id: str | None = None) -> Any:
    """Dock the review widget on ``viewer`` and show ``ds`` (``case_id`` or the first case)."""
    from napari_iaa.widgets import ReviewWidget  # lazy: Qt

    if case_id is not None and case_id not in ds:
        raise DatasetError(f"{ds.root}: no case {case_id!r} in this data set")
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="IAA review", area="right")
    widget.set_dataset(ds, source=str(source) if source is not None else None, case_id=case_id)
    return widget


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``napari-iaa``."""
    from napari_iaa import __version__

    parser = _Parser(
        prog=PROG,
        description="Review multi-annotator segmentations: agreement scores, cohort statistics, "
        "synthetic data and the napari review dock.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("score", help="per-case inter-annotator agreement of a data set (CSV)",
                       description="One row per case: IAA (mean pairwise Dice), its std over pairs, "
                       "the least agreeing pair, the annotators and the case metadata.")
    p.add_argument("dataset", metavar="DATASET", help="data set folder or manifest CSV")
    p.add_argument("--layout", choices=["lidc", "imapp", "manifest", "folders"], default=None,
                   help="data set layout (default: detected)")
    p.add_argument("--empty-pair", choices=EMPTY_PAIR_RULES, default="zero",
                   help="score of a pair whose two masks are both empty: zero (IMA++/medpy, "
                   "default), one, or ignore (leave such pairs out); a pair with one empty "
                   "mask always scores 0")
    p.add_argument("--same-rater-pairs", action=argparse.BooleanOptionalAction, default=True,
                   help="count pairs of masks drawn by the same annotator (IMA++ does; default: yes)")
    p.add_argument("--out", "-o", metavar="FILE.csv", default=None,
                   help="write the table here (atomically); default: standard output")
    p.add_argument("--workers", "-j", type=int, default=1, metavar="N", help="processes (default 1)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("cohort", help="agreement by group: table, cohort.json and cohort.png",
                       description="Join per-case IAA with a label table on the case id (image "
                       "suffixes such as .JPG are ignored) and compare the groups: sizes, means, "
                       "medians, one-sided Mann-Whitney U and two-sample Kolmogorov-Smirnov tests.")
    p.add_argument("iaa_csv", metavar="IAA.csv", help="per-case IAA (napari-iaa score output)")
    p.add_argument("--labels", metavar="META.csv", default=None,
                   help="table with the group column (default: the IAA table itself)")
    p.add_argument("--by", required=True, metavar="COLUMN", help="group column, e.g. benign_malignant")
    p.add_argument("--id-column", default=None, metavar="NAME",
                   help="case id column of IAA.csv (default: detected: case_id, img_id, isic_id, ...)")
    p.add_argument("--labels-id-column", default=None, metavar="NAME",
                   help="case id column of META.csv (default: detected)")
    p.add_argument("--value-column", default=None, metavar="NAME",
                   help="IAA column of IAA.csv (default: iaa or dice_score_mean)")
    p.add_argument("--groups", default=None, metavar="A,B",
                   help="groups to compare, in this order; the tests compare the first two "
                   "(default: all, malignant first when present)")
    p.add_argument("--alternative", choices=["less", "greater", "two-sided"], default="less",
                   help="Mann-Whitney alternative for the first group against the second "
                   "(default less: the first group agrees less)")
    p.add_argument("--out", "-o", default="cohort", metavar="DIR", help="output folder (default: ./cohort)")
    p.set_defaults(func=_cmd_cohort)

    p = sub.add_parser("synth", help="write a synthetic data set (IMA++ layout)")
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument("--n", type=int, default=40, help="number of images (default 40)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=_parse_size, default=(256, 256), metavar="WxH",
                   help="image size (default 256x256)")
    p.add_argument("--annotators", type=_parse_range, default=(2, 5), metavar="LO-HI",
                   help="annotators per image, a range or one number (default 2-5, at most 8)")
    p.add_argument("--format", choices=["jpg", "png"], default="jpg", help="image format (default jpg)")
    p.add_argument("--force", action="store_true", help="replace a synthetic data set in OUT")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("view", help="open napari with the review dock",
                       description="Open napari with the review dock on DATASET (default: the "
                       "bundled synthetic sample). Needs a display; on a headless Linux machine "
                       "use xvfb-run -a.")
    p.add_argument("dataset", metavar="DATASET", nargs="?", default=None)
    p.add_argument("--layout", choices=["lidc", "imapp", "manifest", "folders"], default=None)
    p.add_argument("--case", default=None, metavar="ID", help="case to open first")
    p.set_defaults(func=_cmd_view)
    from napari_iaa.predict import add_predict_parser  # imports torch only when run

    add_predict_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``napari-iaa``; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except _UsageError as exc:
        print(_one_line(str(exc)), file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except IAAError as exc:
        _err(str(exc))
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        _err(f"{where}{exc.strerror or exc}")
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except argparse.ArgumentTypeError as exc:
        _err(str(exc))
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
