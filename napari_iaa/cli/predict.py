"""``napari-iaa predict``: batch prediction; the sub-command lives with the batch code.

This module adds what every data-set command shares: ``--unit`` and the command line's way
of opening a data set (:func:`~napari_iaa.cli._common.open_for_cli`).
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from napari_iaa.cli._common import add_unit_argument, check_not_input, open_for_cli
from napari_iaa.data import Dataset
from napari_iaa.predict.cli import add_predict_parser as _add_predict_parser
from napari_iaa.predict.cli import run_predict as _run_predict

__all__ = ["add_predict_parser", "run_predict"]


def _open(args: argparse.Namespace) -> Dataset:
    ds = open_for_cli(Path(args.dataset), args.layout, getattr(args, "unit", None))
    check_not_input(Path(args.out), ds, Path(args.dataset), "--out")
    return ds


def run_predict(args: argparse.Namespace) -> int:
    """Run ``napari-iaa predict`` on the data set opened as ``score`` opens it (``--unit``)."""
    return _run_predict(args, open_data=_open)


def add_predict_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``predict`` (with ``--unit slice|nodule``) to the sub-command parsers."""
    p = _add_predict_parser(sub)
    with contextlib.suppress(argparse.ArgumentError):  # already there: keep that one
        add_unit_argument(p)
    p.set_defaults(func=run_predict)
    return p
