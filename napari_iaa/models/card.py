"""The model card: a JSON description of a checkpoint, read before any weight is touched.

A checkpoint is ``<name>.safetensors`` (weights, no code) plus ``<name>.json`` (this card).
The card says which network to build (``architecture`` + ``backbone`` + ``options``), how
to prepare its input (``input_size``, ``mean``, ``std``), what it predicts (``task``,
``n_levels``, ``classes``), the post-hoc ``calibrator`` and where the model came from
(training data, split, metrics).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from napari_iaa.data import json_safe
from napari_iaa.errors import CheckpointError

__all__ = [
    "CARD_FORMAT_VERSION",
    "TASKS",
    "DEFAULT_ARCHITECTURE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ModelCard",
    "read_card",
    "MAX_CARD_BYTES",
    "HeldOut",
    "headline_metric",
    "refuse_slice_context",
]

CARD_FORMAT_VERSION = 1
TASKS = ("iaa", "mhr", "quality")
#: architecture used when a card is made for a task without naming one
DEFAULT_ARCHITECTURE: dict[str, str] = {
    "iaa": "iaa_regressor",
    "mhr": "mhr_unet",
    "quality": "quality_regressor",
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: a card larger than this is refused before parsing
MAX_CARD_BYTES = 10 * 1024 * 1024


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ModelCard:
    """Everything needed to rebuild and run a model, stored as JSON beside its weights.

    Parameters
    ----------
    name : str
        Model name (usually the checkpoint's file stem).
    task : {"iaa", "mhr", "quality"}
        What the model predicts.
    architecture : str
        Key in :data:`napari_iaa.models.ARCHITECTURES`. Defaults to the task's default.
    backbone : str
        timm model name (always created with ``pretrained=False``).
    in_chans : int
        Input channels (3: grey images are repeated).
    input_size : tuple of int
        ``(height, width)`` the image is resized to.
    mean, std : tuple of float
        Per-channel normalisation applied after scaling to [0, 1].
    n_levels : int or None
        MHR task: number of ordinal agreement levels (2 = plain binary model).
    classes : list of str or None
        IAA task: diagnosis class names of the multi-task head (None = IAA only).
    calibrator : dict or None
        ``to_dict()`` of a calibrator from :mod:`napari_iaa.calibration`.
    options : dict
        Extra keyword arguments of the architecture (e.g. decoder channels, members).
    weights : str or None
        File name of the weights, relative to the card's folder. ``None`` means
        ``<card stem>.safetensors``.
    weights_sha256 : str or None
        SHA-256 of the weights file, written by ``save_checkpoint`` and checked on load.
    training_data, split, metrics, extra
        Free descriptions: data set, split rule and sizes, held-out metrics.
    domain : dict or None
        The training data's domain (``DataDomain.to_dict()`` of :mod:`.domain`: image
        kind, unit, modality in words, intensity statistics, typical size, annotators).
        None on older cards: they still load and match weakly.
    created : str
        ISO-8601 UTC time stamp.
    """

    name: str
    task: str
    backbone: str
    architecture: str = ""
    in_chans: int = 3
    input_size: tuple[int, int] = (224, 224)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    n_levels: int | None = None
    classes: list[str] | None = None
    calibrator: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    weights_sha256: str | None = None
    training_data: dict[str, Any] | str | None = None
    domain: dict[str, Any] | None = None
    split: dict[str, Any] | str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=_now)
    format_version: int = CARD_FORMAT_VERSION

    def __post_init__(self) -> None:
        if not self.architecture and self.task in DEFAULT_ARCHITECTURE:
            self.architecture = DEFAULT_ARCHITECTURE[self.task]
        if isinstance(self.input_size, int):
            self.input_size = (int(self.input_size), int(self.input_size))
        self.input_size = tuple(int(v) for v in self.input_size)  # type: ignore[assignment]
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        if self.task == "mhr" and self.n_levels is None:
            self.n_levels = 2

    @property
    def slice_context(self) -> bool:
        """Trained on 2.5D input (slices n-1, n, n+1 as channels; ``training --slice-context``).

        The plugin's predictors feed one image, so they refuse such a model.
        """
        return bool(((self.extra or {}).get("config") or {}).get("slice_context"))

    # -- validation ---------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Return what is wrong with this card (empty list when valid)."""
        out: list[str] = []
        if not isinstance(self.name, str) or not self.name:
            out.append("'name' must be a non-empty string")
        if self.task not in TASKS:
            out.append(f"'task' is {self.task!r}, expected one of {list(TASKS)}")
        if not isinstance(self.backbone, str) or not self.backbone:
            out.append("'backbone' must be a non-empty string")
        if not isinstance(self.architecture, str) or not self.architecture:
            out.append("'architecture' must be a non-empty string")
        if not isinstance(self.format_version, int) or self.format_version > CARD_FORMAT_VERSION:
            out.append(
                f"'format_version' is {self.format_version!r}; this napari-iaa reads "
                f"versions up to {CARD_FORMAT_VERSION}"
            )
        if not isinstance(self.in_chans, int) or not 1 <= self.in_chans <= 16:
            out.append(f"'in_chans' must be an integer in [1, 16], got {self.in_chans!r}")
        if len(self.input_size) != 2 or not all(16 <= v <= 4096 for v in self.input_size):
            out.append(f"'input_size' must be [height, width] in [16, 4096], got {self.input_size}")
        for key in ("mean", "std"):
            vals = getattr(self, key)
            if len(vals) not in (1, self.in_chans) or not all(math.isfinite(v) for v in vals):
                out.append(f"'{key}' must have 1 or in_chans finite values, got {list(vals)}")
        if any(v <= 0 for v in self.std):
            out.append("'std' values must be positive")
        if self.task == "mhr" and (
            not isinstance(self.n_levels, int) or not 2 <= self.n_levels <= 256
        ):
            out.append(f"'n_levels' must be an integer in [2, 256] for task mhr, got {self.n_levels!r}")
        if self.classes is not None and (
            not isinstance(self.classes, list) or not all(isinstance(c, str) for c in self.classes)
        ):
            out.append("'classes' must be a list of strings or null")
        if self.calibrator is not None and not isinstance(self.calibrator, dict):
            out.append("'calibrator' must be an object or null")
        if not isinstance(self.options, dict):
            out.append("'options' must be an object")
        if self.domain is not None and not isinstance(self.domain, dict):
            out.append("'domain' must be an object or null")
        if self.weights is not None and not isinstance(self.weights, str):
            out.append("'weights' must be a file name or null")
        return out

    # -- JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (tuples become lists, numpy values become Python ones)."""
        return json_safe(asdict(self))

    def to_json(self) -> str:
        """Pretty JSON text of the card."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | Path = "<card>") -> ModelCard:
        """Build and validate a card from a dictionary.

        Raises
        ------
        CheckpointError
            Naming ``source`` when keys are missing, unknown or invalid.
        """
        if not isinstance(d, dict):
            raise CheckpointError(f"{source}: model card must be a JSON object")
        names = {f.name for f in fields(cls)}
        missing = [k for k in ("name", "task", "backbone") if k not in d]
        if missing:
            raise CheckpointError(f"{source}: model card lacks required keys {missing}")
        unknown = sorted(set(d) - names)
        if unknown:
            raise CheckpointError(f"{source}: model card has unknown keys {unknown}")
        try:
            card = cls(**d)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: invalid model card: {exc}") from exc
        bad = card.problems()
        if bad:
            raise CheckpointError(f"{source}: invalid model card: " + "; ".join(bad))
        return card

    @classmethod
    def from_json(cls, text: str, source: str | Path = "<card>") -> ModelCard:
        """Parse card JSON text (``source`` names the file in error messages)."""
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{source}: model card is not valid JSON: {exc}") from exc
        return cls.from_dict(d, source)

    def summary(self) -> str:
        """One line for lists in the GUI."""
        what = {"iaa": "IAA", "mhr": f"MHR ({self.n_levels} levels)", "quality": "quality"}
        return f"{self.name}: {what.get(self.task, self.task)}, {self.backbone} {self.input_size[0]}x{self.input_size[1]}"


@dataclass(frozen=True)
class HeldOut:
    """A card's headline held-out figure: ``name``, ``value``, whether higher is better."""

    name: str
    value: float
    higher_is_better: bool

    def better_than(self, other: HeldOut | None) -> bool:
        """True when this figure beats ``other`` (same name; anything beats None)."""
        if other is None:
            return True
        if other.name != self.name:
            return False
        return self.value > other.value if self.higher_is_better else self.value < other.value

    def __str__(self) -> str:
        return f"{self.name} {self.value:.3g}"


def _dig(d: Any, *keys: str) -> float | None:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    try:
        v = float(d)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def headline_metric(card: ModelCard) -> HeldOut | None:
    """The held-out figure models of one task are compared by (None when the card has none).

    IAA: test MAE over the constant-median baseline's (lower is better); quality: test
    Pearson with the actual Dice (higher); MHR: test Brier score of the calibrated map
    when the card has a calibrator, else of the raw map (lower).
    """
    m = card.metrics or {}
    if card.task == "iaa":
        v = _dig(m, "test", "iaa", "mae_vs_baseline")
        return None if v is None else HeldOut("IAA MAE / baseline", v, False)
    if card.task == "quality":
        v = _dig(m, "test", "quality", "pearson")
        return None if v is None else HeldOut("quality Pearson", v, True)
    if card.calibrator is not None:
        kind = card.calibrator.get("kind", "isotonic") if isinstance(card.calibrator, dict) else "isotonic"
        v = _dig(m, "calibration_test", kind, "brier")
        if v is None:
            v = _dig(m, "calibration_test", "calibrated", "brier")
        return None if v is None else HeldOut("calibrated MHR Brier", v, False)
    v = _dig(m, "test", "uncalibrated", "brier")
    return None if v is None else HeldOut("uncalibrated MHR Brier", v, False)


def read_card(path: str | Path) -> ModelCard:
    """Read and validate a model card file.

    Raises
    ------
    CheckpointError
        If the file is missing, too large, not JSON or not a valid card.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CheckpointError(f"{path}: model card cannot be read: {exc.strerror or exc}") from exc
    if size > MAX_CARD_BYTES:
        raise CheckpointError(f"{path}: model card is {size} bytes, larger than {MAX_CARD_BYTES}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: model card cannot be read: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path}: model card is not UTF-8 text") from exc
    return ModelCard.from_json(text, source=path)


def refuse_slice_context(card: ModelCard) -> None:
    """Raise for a model trained on 2.5D input: the predictors feed it one image."""
    if card.slice_context:
        raise CheckpointError(
            f"model {card.name!r} was trained on 2.5D input (slices n-1, n, n+1 of a nodule as its "
            "channels, --slice-context); the plugin feeds one image, so it is for measurement with "
            "python -m training evaluate only")
