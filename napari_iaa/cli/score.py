"""``napari-iaa score``: per-case inter-annotator agreement of a data set, as CSV."""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from napari_iaa.cli._common import (
    LAYOUT_CHOICES,
    add_unit_argument,
    atomic_write_text,
    check_not_input,
    check_writable_target,
    open_for_cli,
    progress_bar,
    warn,
)
from napari_iaa.data import Dataset
from napari_iaa.errors import ConfigError, DatasetError
from napari_iaa.scoring import EMPTY_PAIR_RULES, ScoreResult, is_user_facing, score_dataset

__all__ = ["add_score_parser", "run_score"]


def add_score_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``score`` to the sub-command parsers."""
    p = sub.add_parser("score", help="per-case inter-annotator agreement of a data set (CSV)",
                       description="One row per case: IAA (mean pairwise Dice), its std over pairs, "
                       "the least agreeing pair, the annotators and the group; then (since "
                       "issue 12, after those columns, so scripts that read them keep working) "
                       "n_marked, detection_agreement (n_marked / masks), iaa_marked (IAA among "
                       "the non-empty masks), hd95_mean and assd_mean (MONAI's HD95 and ASSD, "
                       "mean over pairs of non-empty masks, in the image header's physical "
                       "units; unit voxels for PNG); then the case metadata.")
    p.add_argument("dataset", metavar="DATASET", help="data set folder or manifest CSV")
    p.add_argument("--layout", choices=LAYOUT_CHOICES, default=None,
                   help="data set layout (default: detected)")
    p.add_argument("--empty-pair", choices=EMPTY_PAIR_RULES, default="zero",
                   help="score of a pair whose two masks are both empty: zero (IMA++/medpy, "
                   "default), one, or ignore (leave such pairs out); a pair with one empty "
                   "mask always scores 0")
    p.add_argument("--same-rater-pairs", action=argparse.BooleanOptionalAction, default=True,
                   help="count pairs of masks drawn by the same annotator (IMA++ does; default: yes)")
    p.add_argument("--surface", action=argparse.BooleanOptionalAction, default=True,
                   help="compute hd95_mean and assd_mean (a distance transform per mask: on "
                   "large images several times the cost of the Dice counts; --no-surface "
                   "leaves the two columns out)")
    add_unit_argument(p)
    p.add_argument("--out", "-o", metavar="FILE.csv", default=None,
                   help="write the table here (atomically); default: standard output")
    p.add_argument("--workers", "-j", type=int, default=1, metavar="N", help="processes (default 1)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run_score)
    return p


def _open(path: Path, layout: str | None, unit: str | None) -> tuple[Dataset, list[str]]:
    """The data set and the warnings about its files raised while indexing it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = open_for_cli(path, layout, unit)
    if len(ds) == 0:
        probs = "; ".join(str(p) for p in ds.problems[:3])
        raise DatasetError(f"{path}: no cases found" + (f" ({probs})" if probs else ""))
    return ds, [str(w.message) for w in caught if is_user_facing(w.category)]


def _summary(result: ScoreResult, ds: Dataset, args: argparse.Namespace, out: Path | None) -> str:
    frame = result.to_frame()
    iaa = frame["iaa"].astype(float)
    return (
        f"scored {len(frame)} of {len(ds)} cases ({ds.layout} layout, empty pair = {args.empty_pair}"
        f"{'' if args.same_rater_pairs else ', same-rater pairs left out'}); "
        f"mean IAA {np.nanmean(iaa) if iaa.notna().any() else math.nan:.4f}, "
        f"{int(iaa.isna().sum())} without a score; "
        f"{len(result.problems)} problem(s), {len(result.warnings)} warning(s)"
        + (f"; wrote {out}" if out is not None else "")
    )


def run_score(args: argparse.Namespace) -> int:
    """Run ``napari-iaa score``: the CSV on stdout (or ``--out``), notes on stderr."""
    out = Path(args.out) if args.out else None
    if out is not None:
        check_writable_target(out, "--out")
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {args.workers}")
    path = Path(args.dataset)
    ds, open_notes = _open(path, args.layout, args.unit)
    if out is not None:
        check_not_input(out, ds, path, "--out")
    bar, progress = progress_bar(len(ds), "case", "scoring", show=not args.quiet)
    try:
        result = score_dataset(ds, empty=args.empty_pair, same_rater_pairs=args.same_rater_pairs,
                               workers=args.workers, progress=progress, surface=args.surface)
    finally:
        if bar is not None:
            bar.close()
    result.warnings[:0] = open_notes
    for text in [*result.warnings, *result.problems]:
        warn(text)
    if not result.rows:
        raise DatasetError(f"{path}: none of the {len(ds)} cases could be scored (see warnings above)")
    csv_text = result.to_csv()
    if out is not None:
        atomic_write_text(out, csv_text)
    else:
        sys.stdout.write(csv_text)
        sys.stdout.flush()
    if not args.quiet:
        print(_summary(result, ds, args, out), file=sys.stderr)
    return 0
