"""The Models tab's worker bodies (no Qt): list the models, match them to the open data.

Importing :mod:`napari_iaa.models` loads torch and timm (seconds), so the tab never does it
on the GUI thread: :func:`scan_models` runs in a worker when the dock opens (and on
"Rescan"), :func:`match_models` when the open data change. Both return plain data the tab
shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_iaa.errors import ConfigError, IAAError
from napari_iaa.predict import task_slot

if TYPE_CHECKING:
    from napari_iaa.data import Case, Dataset
    from napari_iaa.models import ModelCard, ModelEntry, ModelRegistry
    from napari_iaa.models.card import HeldOut
    from napari_iaa.models.domain import DataDomain, DomainMatch

__all__ = ["Listing", "Matching", "ModelInfo", "info_of", "match_models", "scan_models"]


@dataclass
class ModelInfo:
    """One row of the model list: the registry entry, its held-out figure, its match."""

    entry: ModelEntry
    held: HeldOut | None = None
    match: DomainMatch | None = None
    why: str = ""

    @property
    def name(self) -> str:
        """The card's model name."""
        return self.entry.name

    @property
    def path(self) -> Path:
        """The card file."""
        return self.entry.path

    @property
    def card(self) -> ModelCard:
        """The model card."""
        return self.entry.card

    @property
    def source(self) -> str:
        """Where it was found: registered, path, user, shipped or picked."""
        return self.entry.source

    @property
    def task(self) -> str:
        """The card's task."""
        return self.card.task

    @property
    def slot(self) -> str | None:
        """The predictor slot the model fills (None for a task no slot takes)."""
        try:
            return task_slot(self.task)
        except ConfigError:
            return None

    @property
    def calibrated(self) -> bool:
        """False for an MHR model without a calibrator (its maps are raw)."""
        return self.task != "mhr" or self.card.calibrator is not None

    def label(self) -> str:
        """The text of its entry in a model choice."""
        text = f"{self.name} [{self.source}]"
        if not self.calibrated:
            text += " · uncalibrated"
        if self.match is not None and not self.match.ok:
            text += " · does not match the data"
        return text


@dataclass
class Listing:
    """What :func:`scan_models` found: the models, the unusable cards (``problems``: in
    the registry's folders; ``errors``: the registry itself or a picked file), the devices."""

    models: list[ModelInfo]
    problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    devices: dict[str, Any] = field(default_factory=dict)
    device_choices: tuple[str, ...] = ("auto",)


@dataclass
class Matching:
    """What :func:`match_models` found: the data's domain, each model's match and the best
    model per slot (card paths)."""

    domain: DataDomain | None
    matches: dict[Path, tuple[DomainMatch, str]]
    best: dict[str, Path]


def info_of(entry: ModelEntry) -> ModelInfo:
    """A model-list row for a registry entry (its held-out figure read from its card)."""
    from napari_iaa.models.card import headline_metric

    return ModelInfo(entry, headline_metric(entry.card))


def scan_models(registry: ModelRegistry, extra: Sequence[Path]) -> Listing:
    """Worker: import torch and timm, list the registry and the picked files, the devices.

    Parameters
    ----------
    registry
        The registry to list (re-read from disk).
    extra
        Checkpoints the user picked that the registry does not hold.

    Returns
    -------
    Listing
    """
    from napari_iaa.models import (
        DEVICE_CHOICES,
        ModelEntry,
        describe_devices,
        load_torch,
        read_checkpoint_card,
    )

    load_torch()  # here in the worker, not at the first prediction, without stalling the GUI

    errors: list[str] = []
    try:
        entries = registry.refresh()
    except (IAAError, OSError) as exc:  # a broken folder must not break the dock
        entries = []
        errors.append(f"model registry: {exc}")
    problems = [f"{p.path}: {p.message}" for p in registry.problems]
    seen = {e.path.resolve() for e in entries}
    for p in extra:
        if p.resolve() in seen:
            continue
        try:
            card, card_path, weights = read_checkpoint_card(p)
            entries.append(ModelEntry(card_path, card, weights, "picked"))
        except (IAAError, OSError) as exc:
            errors.append(str(exc))
    return Listing([info_of(e) for e in entries], problems, errors, describe_devices(),
                   tuple(DEVICE_CHOICES))


def match_models(models: Sequence[ModelInfo], data: Dataset | Sequence[Case] | None
                 ) -> Matching:
    """Worker: the open data's domain (a sample of its cases), each model's match to it,
    and per slot the best model (:func:`~napari_iaa.models.registry.rank_entries`).

    Parameters
    ----------
    models
        The listed models.
    data
        The open data set, or the open case(s), or None (nothing open: the order is then
        calibration and held-out figures only).

    Returns
    -------
    Matching
    """
    from napari_iaa.models.domain import domain_of
    from napari_iaa.models.registry import rank_entries

    domain = None
    if data is not None:
        try:
            domain = domain_of(data)
        except ValueError:  # nothing readable: rank without the data
            domain = None
    matches: dict[Path, tuple[DomainMatch, str]] = {}
    best: dict[str, Path] = {}
    for slot in ("iaa", "mhr", "quality"):
        ranked = rank_entries([m.entry for m in models if m.slot == slot], domain)
        for r in ranked:
            matches[r.entry.path] = (r.match, r.why() if domain is not None else "")
        if ranked:
            best[slot] = ranked[0].entry.path
    return Matching(domain, matches, best)
