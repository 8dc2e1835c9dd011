"""Cases and data sets: readers for four layouts, volumes, atomic writers, synthetic lesions.

Nothing here imports Qt, napari or torch.
"""

from __future__ import annotations

from napari_iaa.data.case import (
    Case,
    CaseEntry,
    Problem,
    ValidationReport,
    case_id_to_filename,
    check_case_id,
    rater_of,
)
from napari_iaa.data.dataset import CaseNotFoundError, Dataset
from napari_iaa.data.io import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    ExifOrientationWarning,
    MaskEncodingWarning,
    get_max_pixels,
    has_image_suffix,
    image_shape,
    read_image,
    read_image_grid,
    read_mask,
    to_bool_mask,
)
from napari_iaa.data.layouts import (
    LAYOUTS,
    LayoutReader,
    detect_layout,
    has_manifest_columns,
    header_delimiter,
    open_case,
    open_dataset,
    parse_imapp_mask_name,
    read_csv_rows,
    register_layout,
)
from napari_iaa.data.opening import open_any
from napari_iaa.data.sample import sample_data_path
from napari_iaa.data.synthetic import ANNOTATOR_POOL, generate_synthetic_dataset
from napari_iaa.data.synthetic3d import (
    VOLUME_ANNOTATORS,
    generate_synthetic_volumes,
    render_volume_case,
)
from napari_iaa.data.volumes import (
    VOLUME_SUFFIXES,
    Volume,
    VolumeHeader,
    is_volume_path,
    read_volume,
    volume_header,
    write_volume,
)
from napari_iaa.data.writers import (
    adjudicated_mask_name,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_png,
    edited_mask_name,
    edited_mask_suffix,
    json_safe,
    save_adjudicated_mask,
    save_edited_mask,
    volume_mask_suffix,
    write_mask_like,
    write_temp_file,
)

__all__ = [
    "adjudicated_mask_name",
    "save_adjudicated_mask",
    "VOLUME_ANNOTATORS",
    "generate_synthetic_volumes",
    "render_volume_case",
    "ANNOTATOR_POOL",
    "Case",
    "CaseEntry",
    "CaseNotFoundError",
    "Dataset",
    "IMAGE_EXTENSIONS",
    "LAYOUTS",
    "LayoutReader",
    "MAX_PIXELS",
    "ExifOrientationWarning",
    "MaskEncodingWarning",
    "Problem",
    "VOLUME_SUFFIXES",
    "ValidationReport",
    "Volume",
    "VolumeHeader",
    "atomic_write_bytes",
    "atomic_write_json",
    "json_safe",
    "open_any",
    "atomic_write_png",
    "case_id_to_filename",
    "check_case_id",
    "detect_layout",
    "edited_mask_name",
    "edited_mask_suffix",
    "generate_synthetic_dataset",
    "get_max_pixels",
    "has_image_suffix",
    "image_shape",
    "is_volume_path",
    "open_case",
    "open_dataset",
    "parse_imapp_mask_name",
    "rater_of",
    "has_manifest_columns",
    "header_delimiter",
    "read_csv_rows",
    "read_image",
    "read_image_grid",
    "read_mask",
    "read_volume",
    "register_layout",
    "sample_data_path",
    "save_edited_mask",
    "write_temp_file",
    "to_bool_mask",
    "volume_header",
    "volume_mask_suffix",
    "write_mask_like",
    "write_volume",
]
