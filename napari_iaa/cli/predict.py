"""``napari-iaa predict``: batch prediction; the sub-command lives with the batch code."""

from __future__ import annotations

from napari_iaa.predict.cli import add_predict_parser, run_predict

__all__ = ["add_predict_parser", "run_predict"]
