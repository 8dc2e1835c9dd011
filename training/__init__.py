"""Training for napari-iaa's models: IAA regression, MHR maps, calibration, mask quality.

Python API::

    from training import FitConfig, fit
    result = fit(FitConfig(task="iaa", data="path/to/data", epochs=5),
                 progress=lambda done, total: ..., should_stop=lambda: False)
    result.checkpoint_path, result.metrics

Command line: ``python -m training fit --task iaa --data DATA`` and
``python -m training evaluate --model CARD --data DATA`` (``--help`` for the options);
``torchrun --nproc-per-node N -m training fit ...`` trains with DistributedDataParallel.
"""

from __future__ import annotations

from training.config import TASK_DEFAULTS, TASK_NAMES, FitConfig
from training.engine import (
    Callback,
    HistoryCallback,
    ProgressCallback,
    QueueCallback,
    Trainer,
    TrainerResult,
)
from training.evaluate import evaluate_checkpoint
from training.fitting import fit
from training.results import FitResult
from training.tasks import calibrate

__all__ = [
    "FitConfig",
    "FitResult",
    "TASK_NAMES",
    "TASK_DEFAULTS",
    "fit",
    "calibrate",
    "evaluate_checkpoint",
    "Trainer",
    "TrainerResult",
    "Callback",
    "ProgressCallback",
    "QueueCallback",
    "HistoryCallback",
]
