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

import importlib
from typing import Any

#: each public name -> the module that defines it. Imported on first use (PEP 562), so
#: ``import training.config`` (the training dock's form, built on the GUI thread) does not
#: import torch; ``from training import fit`` imports what it needs
_EXPORTS = {
    "FitConfig": "config", "TASK_DEFAULTS": "config", "TASK_NAMES": "config",
    "Callback": "callbacks", "HistoryCallback": "callbacks", "ProgressCallback": "callbacks",
    "QueueCallback": "callbacks", "TrainerResult": "callbacks",
    "Trainer": "engine",
    "evaluate_checkpoint": "evaluate",
    "fit": "fitting",
    "FitResult": "results",
    "calibrate": "tasks",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'training' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"training.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
