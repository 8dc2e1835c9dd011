"""The settings of one fit, shared by the command line, the Python API and the GUI."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from napari_iaa.errors import ConfigError

__all__ = ["FitConfig", "TASK_NAMES"]

TASK_NAMES = ("iaa", "mhr", "calibrate", "quality")


@dataclass
class FitConfig:
    """Everything ``fit`` needs. Defaults are the command line's defaults.

    Parameters
    ----------
    task : {"iaa", "mhr", "calibrate", "quality"}
    data : str or Path
        Data set folder (any layout ``napari_iaa.data.open_dataset`` reads).
    layout : str, optional
        Force a layout instead of detecting it.
    diagnosis : str, optional
        IAA task: metadata column of the diagnosis head (multi-task model).
    backbone : str
        timm backbone (always ``pretrained=False``).
    size : int
        Square input size the images are resized to.
    epochs, batch_size, lr, weight_decay : training hyper-parameters.
    device : str
        ``auto`` (cuda, then mps, then cpu), ``cuda``, ``cuda:1``, ``mps`` or ``cpu``.
    out : str or Path
        Output folder: ``<name>.safetensors`` + ``<name>.json`` (best model),
        ``<name>.metrics.json``, ``<name>_state/`` (resumable state).
    name : str, optional
        Model name (default ``<task>-<data folder name>``).
    seed : int
    val_fraction, test_fraction, calib_fraction : float
        Fractions of the groups (patients) held out. ``calib_fraction`` is only carved
        out for the ``mhr`` task (its calibration split is what ``calibrate`` fits on).
    resume : bool
        Continue from ``<out>/<name>_state`` if present.
    max_cases : int, optional
        Use only the first N cases (quick runs).
    workers : int
        DataLoader worker processes (0 = load in the training thread) and threads used to
        read the data set.
    empty_pair : {"zero", "one", "ignore"}
        Empty-mask rule of the IAA target.
    n_levels : int
        MHR task: ordinal agreement levels.
    binary : bool
        MHR task: train the plain binary model against the majority vote.
    diag_weight, focal_gamma, seg_weight : loss weights.
    models : list of str
        Calibrate task: trained MHR checkpoints (an ensemble when several).
    cache_dir : str, optional
        Folder for the resized-array cache (``.npz``, no pickles) reused between fits.
    threads : int, optional
        ``torch.set_num_threads`` for this process.
    """

    task: str
    data: str | Path
    layout: str | None = None
    diagnosis: str | None = None
    backbone: str = "resnet10t"
    size: int = 128
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    device: str = "auto"
    out: str | Path = "models"
    name: str | None = None
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    calib_fraction: float = 0.15
    resume: bool = False
    max_cases: int | None = None
    workers: int = 0
    empty_pair: str = "zero"
    n_levels: int = 5
    binary: bool = False
    diag_weight: float = 0.5
    focal_gamma: float = 2.0
    seg_weight: float = 1.0
    models: list[str] = field(default_factory=list)
    cache_dir: str | Path | None = None
    threads: int | None = None
    augment: bool = True
    quality_clean_fraction: float = 0.35

    def __post_init__(self) -> None:
        problems = []
        if self.task not in TASK_NAMES:
            problems.append(f"task {self.task!r} is not one of {list(TASK_NAMES)}")
        if self.size < 16 or self.size > 1024:
            problems.append(f"size {self.size} must be in [16, 1024]")
        if self.epochs < 1:
            problems.append(f"epochs {self.epochs} must be >= 1")
        if self.batch_size < 1:
            problems.append(f"batch size {self.batch_size} must be >= 1")
        if not self.lr > 0:
            problems.append(f"learning rate {self.lr} must be > 0")
        for f in ("val_fraction", "test_fraction", "calib_fraction"):
            v = getattr(self, f)
            if not 0.0 <= v < 1.0:
                problems.append(f"{f} {v} must be in [0, 1)")
        if self.val_fraction + self.test_fraction + self.calib_fraction >= 0.9:
            problems.append("val + test + calib fractions leave less than 10% for training")
        if self.empty_pair not in ("zero", "one", "ignore"):
            problems.append(f"empty_pair {self.empty_pair!r} must be zero, one or ignore")
        if self.n_levels < 2:
            problems.append(f"n_levels {self.n_levels} must be >= 2")
        if self.max_cases is not None and self.max_cases < 2:
            problems.append(f"max_cases {self.max_cases} must be >= 2")
        if self.task == "calibrate" and not self.models:
            problems.append("task calibrate needs --model PATH (one or more trained mhr checkpoints)")
        if problems:
            raise ConfigError("invalid training settings: " + "; ".join(problems))
        if self.name is None:
            stem = Path(str(self.data)).resolve().name or "data"
            self.name = f"{self.task}-{stem}"

    @property
    def out_dir(self) -> Path:
        """Output folder as a Path."""
        return Path(self.out)

    @property
    def state_dir(self) -> Path:
        """Folder of the resumable state."""
        return self.out_dir / f"{self.name}_state"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, Path):
                d[k] = str(v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FitConfig:
        """Inverse of :meth:`to_dict` (unknown keys are an error)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"unknown training settings {sorted(unknown)}")
        return cls(**d)

    def to_json(self) -> str:  # noqa: D102
        return json.dumps(self.to_dict(), indent=1)
