"""``napari-iaa consensus``: one consensus mask per case and ``consensus.csv``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from napari_iaa.cli._common import LAYOUT_CHOICES, add_unit_argument, progress_bar, warn
from napari_iaa.cli.review import open_reviewed_dataset
from napari_iaa.data.io import mask_warnings_to
from napari_iaa.errors import ConfigError, DatasetError
from napari_iaa.review import (
    CONSENSUS_METHODS,
    EXPORT_SELECTIONS,
    FLAG_THRESHOLD,
    ReviewStore,
    export_consensus,
)

__all__ = ["add_consensus_parser", "run_consensus"]


def add_consensus_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``consensus`` to the sub-command parsers."""
    p = sub.add_parser(
        "consensus", help="write a consensus mask per case (majority, STAPLE or reviewed)",
        description="One mask per case, named after its case id ('/' -> '_'), each written "
        "atomically: PNG 0/255 for 2D images; for a NIfTI, NRRD or MetaImage volume its "
        "format with its header (.mhd -> .mha, .nhdr -> .nrrd); NIfTI (.nii.gz, unit spacing) "
        "for a multi-page TIFF or .npy volume and a LIDC nodule. Then consensus.csv (case_id, "
        "method, file, n_annotators). majority: foreground where at least half of the annotators marked "
        "it; staple: STAPLE probability above 0.5; reviewed: the adjudicated mask the "
        "review store records (cases without one are listed as missing).")
    p.add_argument("dataset", metavar="DATASET", help="data set folder or manifest CSV")
    p.add_argument("--method", choices=CONSENSUS_METHODS, default="majority",
                   help="how the mask is made (default majority)")
    p.add_argument("--only", choices=EXPORT_SELECTIONS, default="all",
                   help="all cases (default), those accepted in the review store, or the "
                   "flagged ones (IAA below --threshold)")
    p.add_argument("--threshold", type=float, default=FLAG_THRESHOLD, metavar="IAA",
                   help=f"IAA below which a case is flagged (default {FLAG_THRESHOLD})")
    p.add_argument("--out", "-o", required=True, metavar="DIR",
                   help="output folder (outside the data set)")
    p.add_argument("--layout", choices=LAYOUT_CHOICES, default=None,
                   help="data set layout (default: detected)")
    add_unit_argument(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run_consensus)
    return p


def run_consensus(args: argparse.Namespace) -> int:
    """Run ``napari-iaa consensus``; notes and the summary on stderr."""
    if not 0.0 <= args.threshold <= 1.0:
        raise ConfigError(f"--threshold must lie between 0 and 1, not {args.threshold}")
    ds = open_reviewed_dataset(args.dataset, args.layout, args.unit)
    for problem in ds.problems:  # files the index left out, as score reports them
        warn(str(problem))
    store = None
    if args.only == "accepted" or args.method == "reviewed":
        store = ReviewStore.open(ds.root, read_only=True)
        if store.problem:
            warn(store.problem)
    bar, progress = progress_bar(len(ds), "case", "consensus", show=not args.quiet)
    try:
        with mask_warnings_to(warn):
            result = export_consensus(ds, method=args.method, only=args.only, out_dir=args.out,
                                      store=store, threshold=args.threshold, progress=progress)
    finally:
        if bar is not None:
            bar.close()
        if store is not None:
            store.close()
    for text in result.problems:
        warn(text)
    if result.missing:
        warn(f"{len(result.missing)} case(s) without an adjudicated mask, listed in "
             f"consensus.csv without a file (e.g. {result.missing[0]!r})")
    if result.n_selected and not result.n_written and not result.missing and result.problems:
        raise DatasetError(f"{args.dataset}: no consensus mask could be written "
                           "(see warnings above)")
    if not args.quiet:
        print(f"wrote {result.n_written} consensus mask(s) ({args.method}, {args.only}) and "
              f"{result.csv_path}; {len(result.missing)} missing, "
              f"{len(ds.problems) + len(result.problems)} problem(s)", file=sys.stderr)
    return 0
