"""Batch prediction over a data set: predicted IAA, per-mask quality and MHR maps.

The same code serves the ``napari-iaa predict`` command, the predictions dock and the
triage table. It runs under ``torchrun``: every process reads ``RANK`` and ``WORLD_SIZE``
from the environment, takes ``cases[rank::world]``, writes a part file beside the output,
and rank 0 merges the parts (in data-set order) once all of them exist.

CSV layout (one row per mask; a case without masks gets one row with an empty
``mask_id``): ``case_id, n_masks, predicted_iaa, empirical_iaa, mask_id, annotator,
predicted_quality, loo_dice, mhr_map``.

Volumes (NIfTI, NRRD, MetaImage, stacked slices) are predicted slice by slice and
aggregated per volume as :mod:`.volume` documents; their MHR maps are written as NIfTI
(``<case>_mhr.nii.gz``, with the case's spacing, origin and direction).

Modules: :mod:`.models` (checkpoints -> one predictor per slot), :mod:`.result` (what a
prediction holds), :mod:`.case` (one case), :mod:`.volume` (a volume, slice by slice),
:mod:`.dataset` (a data set, sharded), :mod:`.cli` (the sub-command). Importing this
package does not import torch; loading a model does.
"""

from __future__ import annotations

from napari_iaa.predict.case import predict_case, predict_iaa_images, predict_quality
from napari_iaa.predict.cli import add_predict_parser, main, run_predict
from napari_iaa.predict.dataset import CSV_COLUMNS, predict_dataset, shard_info, write_csv_atomic
from napari_iaa.predict.models import (
    ModelSet,
    entry_card,
    entry_name,
    entry_path,
    load_models,
    task_slot,
)
from napari_iaa.predict.result import (
    CasePrediction,
    bin_reliability,
    curvas_ece_of,
    curvas_ece_value,
    ece_value,
    fill_reliability,
)
from napari_iaa.predict.volume import (
    aggregate_iaa,
    aggregate_quality,
    iaa_slices,
    volume_quality,
    volume_steps,
)

__all__ = [
    "CSV_COLUMNS",
    "CasePrediction",
    "ModelSet",
    "add_predict_parser",
    "aggregate_iaa",
    "aggregate_quality",
    "bin_reliability",
    "curvas_ece_of",
    "curvas_ece_value",
    "ece_value",
    "entry_card",
    "entry_name",
    "entry_path",
    "fill_reliability",
    "iaa_slices",
    "load_models",
    "main",
    "predict_case",
    "predict_dataset",
    "predict_iaa_images",
    "predict_quality",
    "run_predict",
    "shard_info",
    "task_slot",
    "volume_quality",
    "volume_steps",
    "write_csv_atomic",
]
