"""The predictors a batch run uses: one per slot (iaa, mhr, quality), from checkpoints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from napari_iaa.errors import CheckpointError, ConfigError

if TYPE_CHECKING:  # torch is imported only when models are loaded
    from napari_iaa.models import (
        IAAPredictor,
        MHRPredictor,
        ModelCard,
        ModelEntry,
        ModelRegistry,
        QualityPredictor,
    )
    from napari_iaa.predict.result import CasePrediction

__all__ = [
    "ModelSet",
    "checkpoint_path",
    "entry_card",
    "entry_name",
    "entry_path",
    "load_models",
    "task_slot",
]

SLOTS = ("iaa", "mhr", "quality")

#: Model-card task -> predictor slot.
_SLOTS = {
    "iaa": "iaa",
    "iaa+diagnosis": "iaa",
    "iaa_diagnosis": "iaa",
    "iaa-diagnosis": "iaa",
    "mhr": "mhr",
    "calibrate": "mhr",
    "quality": "quality",
}


def task_slot(task: str) -> str:
    """Map a model card's task onto the predictor slot it fills (iaa, mhr, quality).

    Raises
    ------
    ConfigError
        If the task is unknown.
    """
    t = str(task).strip().lower()
    if t in _SLOTS:
        return _SLOTS[t]
    for prefix in SLOTS:
        if t.startswith(prefix):
            return prefix
    raise ConfigError(f"unknown model task {task!r}: expected iaa, mhr, calibrate or quality")


@dataclass
class ModelSet:
    """At most one predictor per slot, with the checkpoint it came from."""

    iaa: IAAPredictor | None = None
    mhr: MHRPredictor | None = None
    quality: QualityPredictor | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    cards: dict[str, ModelCard] = field(default_factory=dict)
    device: str = "cpu"

    def __bool__(self) -> bool:
        return any(p is not None for p in (self.iaa, self.mhr, self.quality))

    @property
    def slots(self) -> list[str]:
        """The slots that hold a predictor."""
        return [s for s, p in zip(SLOTS, (self.iaa, self.mhr, self.quality)) if p is not None]

    def name(self, slot: str) -> str:
        """The model name (its card's) in ``slot``; "" when the slot is empty."""
        card = self.cards.get(slot)
        return card.name if card is not None else ""

    @property
    def mhr_calibrated(self) -> bool:
        """True when the MHR model has a calibrator (its "calibrated" map is calibrated)."""
        return self.mhr is not None and self.mhr.calibrator is not None

    def stamp(self, pred: CasePrediction) -> CasePrediction:
        """Record in ``pred`` which model predicts each value and whether its MHR map is
        calibrated (an MHR model without a calibrator gives its raw map as "calibrated")."""
        pred.models = {slot: self.name(slot) for slot in self.slots if self.name(slot)}
        pred.mhr_is_calibrated = self.mhr is None or self.mhr_calibrated
        return pred

    def put(self, slot: str, predictor: IAAPredictor | MHRPredictor | QualityPredictor,
            path: Path) -> None:
        """Hold ``predictor`` (loaded from ``path``) in ``slot``."""
        if slot == "iaa":
            self.iaa = predictor  # type: ignore[assignment]
        elif slot == "mhr":
            self.mhr = predictor  # type: ignore[assignment]
        else:
            self.quality = predictor  # type: ignore[assignment]
        self.paths[slot] = path
        self.cards[slot] = predictor.card


def entry_path(entry: ModelEntry) -> Path:
    """The card path of a registry entry."""
    return entry.path


def entry_name(entry: ModelEntry) -> str:
    """The display name of a registry entry (its card's model name)."""
    return entry.name or entry.path.stem


def entry_card(entry: ModelEntry) -> ModelCard:
    """The model card of a registry entry."""
    return entry.card


def checkpoint_path(spec: str | Path, registry: ModelRegistry | None = None) -> Path:
    """A ``--model`` value: a checkpoint (card, weights or stem path) or a registered name.

    Raises
    ------
    CheckpointError
        Neither a checkpoint file nor a registered model's name.
    """
    p = Path(spec).expanduser()
    for c in (p, p.with_suffix(".json"), p.with_suffix(".safetensors")):
        if c.is_file() and c.suffix in (".json", ".safetensors"):
            return c
    if registry is not None:
        for entry in registry.list():  # invalid cards are skipped and kept in .problems
            if str(spec) in {entry_name(entry), str(entry.path)}:
                return entry.path
    raise CheckpointError(
        f"{spec}: model file not found (give a .safetensors/.json path or a registered model name)"
    )


def _card_task(path: Path) -> str:
    """Read the task from a checkpoint's card without loading the weights."""
    from napari_iaa.models import read_checkpoint_card

    card, _card_path, _weights = read_checkpoint_card(path)
    return str(card.task)


def load_models(
    models: Mapping[str, str | Path | None] | Sequence[str | Path] | None,
    device: str = "auto",
    registry: ModelRegistry | None = None,
) -> ModelSet:
    """Load checkpoints into predictors, one per slot (iaa, mhr, quality).

    Parameters
    ----------
    models
        Either ``slot -> checkpoint`` or a list of checkpoints (their cards name the task;
        a later one for the same slot replaces an earlier one). Registered model names are
        looked up in ``registry``.
    device
        ``"auto"``, ``"cuda"``, ``"mps"`` or ``"cpu"``.
    registry
        A ``ModelRegistry`` for names (optional).

    Raises
    ------
    CheckpointError
        A file is missing, unsafe, or its card does not match the slot asked for.
    """
    from napari_iaa.models import PREDICTORS, pick_device

    dev = str(pick_device(device))
    out = ModelSet(device=dev)
    if not models:
        return out
    items: list[tuple[str | None, str | Path]]
    if isinstance(models, Mapping):
        items = [(k, v) for k, v in models.items() if v]
    else:
        items = [(None, v) for v in models]
    for want, spec in items:
        path = checkpoint_path(spec, registry)
        slot = task_slot(_card_task(path))
        if want is not None and task_slot(want) != slot:
            raise CheckpointError(
                f"{path}: model card task is {slot!r}, but it was chosen for {want!r}"
            )
        out.put(slot, PREDICTORS[slot].from_checkpoint(path, device=dev), path)
    return out
