"""``napari-iaa predict``: batch prediction; the sub-command lives with the batch code.

This module adds the options every data-set command shares (``--unit``) to it.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from napari_iaa.cli._common import add_unit_argument
from napari_iaa.predict.cli import add_predict_parser as _add_predict_parser
from napari_iaa.predict.cli import run_predict

__all__ = ["add_predict_parser", "run_predict"]


def add_predict_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``predict`` (with ``--unit slice|nodule``) to the sub-command parsers."""
    p = _add_predict_parser(sub)
    with contextlib.suppress(argparse.ArgumentError):  # already there: keep that one
        add_unit_argument(p)
    return p
