"""The ``napari-iaa`` command.

Subcommands, one module each
----------------------------
``score``   per-case inter-annotator agreement of a data set, as CSV (:mod:`.score`).
``cohort``  agreement by group (e.g. benign/malignant): table, JSON and PNG plot (:mod:`.cohort`).
``synth``   write a synthetic dermoscopy-like data set in the IMA++ layout (:mod:`.synth`).
``view``    open napari with the review dock on a data set (the sample data by default)
            (:mod:`.view`).
``predict`` predicted IAA, mask quality and MHR maps for a data set (:mod:`.predict`).
``review``  read and write a data set's review verdicts (:mod:`.review`).
``consensus`` one consensus mask per case and ``consensus.csv`` (:mod:`.consensus`).

Bad input (an :class:`~napari_iaa.errors.IAAError`, an unreadable or unwritable file, a bad
argument) ends with one line ``napari-iaa: error: <message>`` and exit code 2, never with a
traceback. The command imports neither Qt nor napari except in ``view``, nor torch except
in ``predict``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from napari_iaa._malloc import tune_malloc
from napari_iaa.cli._common import PROG, Parser, UsageError, err, one_line
from napari_iaa.cli.cohort import add_cohort_parser, read_cohort_table
from napari_iaa.cli.consensus import add_consensus_parser
from napari_iaa.cli.predict import add_predict_parser
from napari_iaa.cli.review import add_review_parser
from napari_iaa.cli.score import add_score_parser
from napari_iaa.cli.synth import add_synth_parser
from napari_iaa.cli.view import add_view_parser, display_problem
from napari_iaa.errors import IAAError

__all__ = [
    "build_parser",
    "display_problem",
    "main",
    "read_cohort_table",
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``napari-iaa``."""
    from napari_iaa import __version__

    parser = Parser(
        prog=PROG,
        description="Review multi-annotator segmentations: agreement scores, cohort statistics, "
        "synthetic data and the napari review dock.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for add in (add_score_parser, add_cohort_parser, add_synth_parser, add_view_parser,
                add_predict_parser, add_review_parser, add_consensus_parser):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``napari-iaa``; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except UsageError as exc:
        print(one_line(str(exc)), file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    tune_malloc()  # our own process: reuse freed memory between cases (napari_iaa._malloc)
    try:
        return int(args.func(args) or 0)
    except IAAError as exc:
        err(str(exc))
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        err(f"{where}{exc.strerror or exc}")
        return 2
    except KeyboardInterrupt:
        err("interrupted")
        return 130
    except argparse.ArgumentTypeError as exc:
        err(str(exc))
        return 2
