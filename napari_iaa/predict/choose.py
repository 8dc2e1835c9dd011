"""Which model to use for a data set: per task, the registered model whose card best
matches the data (or the one the user named), with the reason and a warning on mismatch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from napari_iaa.errors import ConfigError
from napari_iaa.predict.models import SLOTS, checkpoint_path, task_slot

if TYPE_CHECKING:
    from napari_iaa.data import Dataset
    from napari_iaa.models import ModelRegistry
    from napari_iaa.models.domain import DataDomain, DomainMatch

__all__ = ["ModelChoice", "choose_models", "describe_choice"]


@dataclass(frozen=True)
class ModelChoice:
    """The model chosen for one slot, why, and how well the data match its card."""

    slot: str
    path: Path
    name: str
    match: DomainMatch
    why: str
    auto: bool
    calibrated: bool = True

    @property
    def warning(self) -> str | None:
        """A warning when the data do not match the model's training domain."""
        if self.match.ok:
            return None
        return (f"the data do not match {self.name}'s training data (match "
                f"{self.match.score:.2f}): {self.match.explain()}; its {self.slot} "
                f"predictions may be meaningless")


def describe_choice(choice: ModelChoice) -> str:
    """One line: "iaa: iaa-lidc (picked: best match) - trained on ...".

    Parameters
    ----------
    choice
        A chosen model.

    Returns
    -------
    str
    """
    how = "picked: best match for the data" if choice.auto else "given with --model"
    return f"{choice.slot}: {choice.name} ({how}) - {choice.why}"


def choose_models(data: Dataset | DataDomain, registry: ModelRegistry,
                  explicit: Sequence[str | Path] | None = None,
                  slots: Sequence[str] = SLOTS) -> list[ModelChoice]:
    """The model per slot for a data set.

    Parameters
    ----------
    data
        The data set (its domain is measured from a sample of its cases) or its domain.
    registry
        Where models are looked for (by name, and for the automatic choice).
    explicit
        Checkpoints or registered names the user gave (``--model``): their cards name
        their slot; slots without one are not filled. None or empty: per slot in
        ``slots``, the registered model that best matches the data.
    slots
        The slots to fill automatically.

    Returns
    -------
    list of ModelChoice
        In slot order; a slot no model fills is left out.

    Raises
    ------
    CheckpointError
        A named model is not found or its card is invalid.
    ConfigError
        Two given models are for one slot.
    """
    from napari_iaa.models import read_checkpoint_card
    from napari_iaa.models.domain import DataDomain, domain_of, match_score
    from napari_iaa.models.registry import RankedModel

    domain = data if isinstance(data, DataDomain) else domain_of(data)
    out: dict[str, ModelChoice] = {}
    if explicit:
        for spec in explicit:
            card, card_path, _w = read_checkpoint_card(checkpoint_path(spec, registry))
            slot = task_slot(card.task)
            if slot in out:  # the later one would silently replace the earlier
                raise ConfigError(
                    f"--model {spec}: a second {slot} model (after {out[slot].name}); give "
                    f"one model per task")
            match = match_score(card.domain, domain)
            why = RankedModel.describe(card, match)
            out[slot] = ModelChoice(slot, card_path, card.name, match, why, False,
                                    card.calibrator is not None)
    else:
        for slot in slots:
            best = registry.best_for(slot, domain)
            if best is not None:
                e = best.entry
                out[slot] = ModelChoice(slot, e.path, e.name, best.match, best.why(), True,
                                        e.calibrated)
    return [out[s] for s in SLOTS if s in out]
