"""``napari-iaa review``: read and write a data set's review verdicts from scripts.

``review DATASET status``                      cases per status (CSV on stdout)
``review DATASET set CASE_ID STATUS [--comment TEXT] [--reviewer NAME]``
``review DATASET export OUT.csv``              verdicts, the ``score`` columns, mask notes

The store is the one the review dock uses (see :func:`napari_iaa.review.store_location`).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

from napari_iaa.cli._common import (
    LAYOUT_CHOICES,
    Parser,
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
from napari_iaa.review import (
    NOTES_COLUMN,
    STATUSES,
    VERDICT_COLUMNS,
    ReviewStore,
    check_status,
    notes_text,
)
from napari_iaa.scoring import (
    DETECTION_COLUMNS,
    EMPTY_PAIR_RULES,
    SCORE_COLUMNS,
    SURFACE_COLUMNS,
    score_dataset,
)

__all__ = [
    "AGREEMENT_COLUMNS",
    "EXPORT_COLUMNS",
    "export_columns",
    "add_review_parser",
    "export_table",
    "open_reviewed_dataset",
    "run_review",
]

#: The agreement columns of ``napari-iaa score`` after its ``case_id``, in its order and
#: with its names (:mod:`napari_iaa.scoring` is their one source; the data-set table's CSV
#: export uses them too).
AGREEMENT_COLUMNS = [c for c in SCORE_COLUMNS if c != "case_id"] + DETECTION_COLUMNS \
    + SURFACE_COLUMNS
#: Columns of ``review export``: the verdict, the agreement columns of ``score``, then the
#: notes on the case's masks (``r2: missed the spiculation | r3: too wide``).
EXPORT_COLUMNS = VERDICT_COLUMNS + AGREEMENT_COLUMNS + [NOTES_COLUMN]


def export_columns(surface: bool = True) -> list[str]:
    """:data:`EXPORT_COLUMNS`, without HD95/ASSD when they were not computed (as ``score``)."""
    return [c for c in EXPORT_COLUMNS if surface or c not in SURFACE_COLUMNS]


def add_review_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``review`` (with its actions ``status``, ``set``, ``export``) to the parsers."""
    p = sub.add_parser(
        "review", help="read and write review verdicts (status, set, export)",
        description="The review store of a data set: the verdicts (unreviewed, accepted, "
        "reannotate, excluded), reviewers and comments the review dock records.")
    p.add_argument("dataset", metavar="DATASET", help="data set folder or manifest CSV")
    p.add_argument("--layout", choices=LAYOUT_CHOICES, default=None,
                   help="data set layout (default: detected)")
    add_unit_argument(p)
    acts = p.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser, required=True)
    acts.add_parser("status", help="number of cases per status (CSV on standard output)")
    s = acts.add_parser("set", help="set the status of one case")
    s.add_argument("case_id", metavar="CASE_ID")
    s.add_argument("status", metavar="STATUS", help=f"one of {', '.join(STATUSES)}")
    s.add_argument("--comment", default=None, metavar="TEXT",
                   help="the case's comment (default: keep the current one; '' clears it)")
    s.add_argument("--reviewer", default=None, metavar="NAME",
                   help="who (default: the OS user name)")
    e = acts.add_parser("export", help="verdicts and agreement scores of every case (CSV)")
    e.add_argument("out", metavar="OUT.csv", help="output file (written atomically)")
    e.add_argument("--empty-pair", choices=EMPTY_PAIR_RULES, default="zero",
                   help="score of a pair of two empty masks, as in score (default zero)")
    e.add_argument("--surface", action=argparse.BooleanOptionalAction, default=True,
                   help="also the mean HD95 and ASSD columns, as in score (default on)")
    e.add_argument("--workers", "-j", type=int, default=1, metavar="N",
                   help="processes for scoring (default 1)")
    e.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run_review)
    return p


def open_reviewed_dataset(path: str | Path, layout: str | None, unit: str | None = None
                          ) -> Dataset:
    """The data set at ``path`` (in ``unit`` where the layout offers one); an error naming it
    when it is missing or has no cases."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    ds = open_for_cli(path, layout, unit)
    if len(ds) == 0:
        probs = "; ".join(str(p) for p in ds.problems[:3])
        raise DatasetError(f"{path}: no cases found" + (f" ({probs})" if probs else ""))
    return ds


def _note_store(store: ReviewStore) -> None:
    print(f"review store: {store.path} ({store.reason})", file=sys.stderr)
    if store.problem:
        warn(store.problem)


def _warn_strangers(store: ReviewStore, ds: Dataset) -> None:
    """Warn about verdicts of cases the data set no longer has."""
    stray = [v.case_id for v in store.verdicts() if v.case_id not in ds]
    if stray:
        warn(f"{len(stray)} case(s) in the review store are not in the data set "
             f"(e.g. {stray[0]!r}); they are left out")


def _status(ds: Dataset, store: ReviewStore) -> int:
    counts = store.counts(ds.ids)
    lines = ["status,cases", *(f"{s},{n}" for s, n in counts.items())]
    sys.stdout.write("\n".join(lines) + "\n")
    reviewed = len(ds) - counts["unreviewed"]
    print(f"reviewed {reviewed} of {len(ds)} cases", file=sys.stderr)
    _warn_strangers(store, ds)
    return 0


def _set(ds: Dataset, args: argparse.Namespace) -> int:
    ds.entry(args.case_id)  # unknown case id: CaseNotFoundError, exit 2
    with ReviewStore.open(ds.root, reviewer=args.reviewer, fallback=False) as store:
        v = store.set_verdict(args.case_id, args.status, comment=args.comment)
        print(f"review store: {store.path} ({store.reason})", file=sys.stderr)
    print(f"{v.case_id}: {v.status} by {v.reviewer} at {v.updated}"
          + (f" ({v.comment})" if v.comment else ""))
    return 0


def export_table(ds: Dataset, store: ReviewStore, scores: Any) -> Any:
    """Verdicts joined with score rows and mask notes: one row per case of ``ds``, the
    columns of :func:`export_columns` (HD95/ASSD where ``scores`` has them)."""
    verdicts = store.verdicts_frame(ds.ids)
    frame = scores.to_frame()
    surface = all(c in frame.columns for c in SURFACE_COLUMNS) and len(frame) > 0
    columns = export_columns(surface)
    agreement = [c for c in AGREEMENT_COLUMNS if c in columns]
    frame = frame.reindex(columns=["case_id", *agreement])
    table = verdicts.merge(frame, on="case_id", how="left", validate="one_to_one")
    notes = store.all_mask_notes()
    table[NOTES_COLUMN] = [notes_text(notes.get(c, {})) for c in table["case_id"]]
    return table[columns]


def _export(ds: Dataset, store: ReviewStore, args: argparse.Namespace) -> int:
    out = Path(args.out)
    check_writable_target(out, "OUT.csv")
    check_not_input(out, ds, Path(args.dataset), "OUT.csv")
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {args.workers}")
    bar, progress = progress_bar(len(ds), "case", "scoring", show=not args.quiet)
    try:
        scores = score_dataset(ds, empty=args.empty_pair, workers=args.workers, progress=progress,
                               surface=args.surface)
    finally:
        if bar is not None:
            bar.close()
    for text in [*scores.warnings, *scores.problems]:
        warn(text)
    table = export_table(ds, store, scores)
    buf = io.StringIO()
    table.to_csv(buf, index=False)  # full precision, as score writes it
    atomic_write_text(out, buf.getvalue())
    _warn_strangers(store, ds)
    if not args.quiet:
        counts = store.counts(ds.ids)
        print(f"wrote {out}: {len(table)} cases, "
              + ", ".join(f"{n} {s}" for s, n in counts.items()), file=sys.stderr)
    return 0


def run_review(args: argparse.Namespace) -> int:
    """Run ``napari-iaa review``: ``status``, ``set`` or ``export``."""
    if args.action == "set":
        check_status(args.status)  # before opening anything
        return _set(open_reviewed_dataset(args.dataset, args.layout, args.unit), args)
    ds = open_reviewed_dataset(args.dataset, args.layout, args.unit)
    with ReviewStore.open(ds.root, read_only=True) as store:
        _note_store(store)
        if args.action == "status":
            return _status(ds, store)
        return _export(ds, store, args)
