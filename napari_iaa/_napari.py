"""Old home of the npe2 hooks; they live in ``_reader``, ``_writer``, ``_sample_data``.

# shim: removed at integration
"""

from __future__ import annotations

from napari_iaa._dock import PLUGIN_NAME, REVIEW_WIDGET_NAME, open_review_dock
from napari_iaa._reader import get_reader, read_path
from napari_iaa._sample_data import lidc_sample, synthetic_sample
from napari_iaa._sample_data import pick_case as _pick_case
from napari_iaa._writer import write_labels
from napari_iaa.data import open_any as _open_any

__all__ = [
    "PLUGIN_NAME",
    "REVIEW_WIDGET_NAME",
    "_open_any",
    "_pick_case",
    "get_reader",
    "lidc_sample",
    "open_review_dock",
    "read_path",
    "synthetic_sample",
    "write_labels",
]
