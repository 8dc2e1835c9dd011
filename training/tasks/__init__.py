"""The tasks, one module each: ``iaa``, ``mhr``, ``quality`` (trained by the
:class:`~training.engine.Trainer`) and ``calibrate`` (post-hoc, a function).

:data:`TASKS` maps a task name to its :class:`Task` class; importing this package
registers them all.
"""

from __future__ import annotations

from training.tasks.base import TASKS, Task, register, select_split, split_record, task_for_card
from training.tasks.calibrate import calibrate
from training.tasks.iaa import IAATask
from training.tasks.mhr import MHRTask
from training.tasks.quality import QualityTask

__all__ = [
    "TASKS",
    "IAATask",
    "MHRTask",
    "QualityTask",
    "Task",
    "calibrate",
    "register",
    "select_split",
    "split_record",
    "task_for_card",
]
