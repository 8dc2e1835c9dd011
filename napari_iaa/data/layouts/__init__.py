"""Layout readers: find cases on disk without decoding any pixel.

Four layouts are registered in :data:`LAYOUTS`, one module each:

``lidc`` (:mod:`.lidc`)
    ``<root>/<patient>/<nodule>/images/slice-<n>.png`` + ``mask-<r>/slice-<n>.png``; the
    root may also be the folder that contains ``LIDC-IDRI-slices``.
``imapp`` (:mod:`.imapp`)
    IMA++: ``images/``, ``masks/`` named ``{ISIC_id}_{annotator}_{tool}_{skill}_{objectid}``
    and optional ``*seg_metadata.csv`` / ``*img_metadata.csv``.
``manifest`` (:mod:`.manifest`)
    A CSV with ``case_id,image,annotator,mask`` (+ optional columns copied to ``meta``).
``folders`` (:mod:`.folders`)
    ``<root>/<case>/image.<ext>`` + ``<root>/<case>/<annotator>.<ext>``.

Problems found while indexing (a mask without an image, a missing file named by a CSV, a
duplicate id ...) are collected in ``Dataset.problems``; the rest of the data set loads.
"""

from __future__ import annotations

from napari_iaa.data.layouts._csv import header_delimiter, read_csv_rows
from napari_iaa.data.layouts.folders import open_case, read_folders
from napari_iaa.data.layouts.imapp import parse_imapp_mask_name, read_imapp
from napari_iaa.data.layouts.lidc import read_lidc
from napari_iaa.data.layouts.manifest import has_manifest_columns, read_manifest
from napari_iaa.data.layouts.registry import (
    LAYOUTS,
    LayoutReader,
    detect_layout,
    open_dataset,
    register_layout,
)

__all__ = [
    "LAYOUTS",
    "LayoutReader",
    "detect_layout",
    "open_case",
    "open_dataset",
    "parse_imapp_mask_name",
    "header_delimiter",
    "read_csv_rows",
    "read_folders",
    "read_imapp",
    "read_lidc",
    "has_manifest_columns",
    "read_manifest",
    "register_layout",
]
