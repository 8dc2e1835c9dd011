"""Where models are found: shipped, user folder, extra paths, single registered files.

Search order (first wins for :meth:`ModelRegistry.default` ties): checkpoints registered
with :meth:`~ModelRegistry.register`, extra paths (:meth:`~ModelRegistry.add_path`), the
user folder (``$NAPARI_IAA_MODELS`` or ``platformdirs.user_cache_dir("napari-iaa")/models``)
and the shipped ``sample_data/models``. Only cards are read while listing; weights are read
when a model is loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_iaa import _env
from napari_iaa.data.sample import bundled_root
from napari_iaa.errors import CheckpointError
from napari_iaa.models.card import TASKS, ModelCard, headline_metric
from napari_iaa.models.card_files import checkpoint_paths, read_checkpoint_card
from napari_iaa.models.domain import DataDomain, DomainMatch, match_score

__all__ = [
    "ModelEntry",
    "RankedModel",
    "RegistryProblem",
    "rank_entries",
    "ModelRegistry",
    "shipped_models_dir",
    "user_models_dir",
    "MODELS_ENV",
]

MODELS_ENV = _env.MODELS


def shipped_models_dir() -> Path:
    """``models/`` of the bundled sample data (the models shipped with napari-iaa)."""
    return bundled_root() / "models"


def user_models_dir() -> Path:
    """``$NAPARI_IAA_MODELS`` or ``platformdirs.user_cache_dir("napari-iaa")/models``."""
    env = _env.path_value(_env.MODELS)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("napari-iaa")) / "models"


@dataclass(frozen=True)
class ModelEntry:
    """A model found by the registry: its card file, weights file, card and source."""

    path: Path
    card: ModelCard = field(compare=False)
    weights_path: Path = field(compare=False)
    source: str = field(default="path", compare=False)

    @property
    def name(self) -> str:
        """The card's model name."""
        return self.card.name

    @property
    def task(self) -> str:
        """The card's task."""
        return self.card.task

    @property
    def calibrated(self) -> bool:
        """True when the card carries a calibrator (an MHR map it gives is calibrated)."""
        return self.card.calibrator is not None

    def match(self, domain: DataDomain) -> DomainMatch:
        """How well data of ``domain`` match this model's training domain."""
        return match_score(self.card.domain, domain)

    def load(self, device: str = "cpu") -> tuple[Any, ModelCard]:
        """``load_checkpoint(self.path, device)``."""
        from napari_iaa.models.checkpoint import load_checkpoint

        return load_checkpoint(self.path, device)

    def predictor(self, device: str = "auto") -> Any:
        """The task's predictor for this checkpoint (``make_predictor(self.path, device)``)."""
        from napari_iaa.models.predictors import make_predictor

        return make_predictor(self.path, device)

    def describe(self) -> dict[str, Any]:
        """A flat dictionary for tables in the GUI."""
        c = self.card
        return {
            "name": c.name,
            "task": c.task,
            "backbone": c.backbone,
            "architecture": c.architecture,
            "input_size": f"{c.input_size[0]}x{c.input_size[1]}",
            "calibrated": c.calibrator is not None,
            "data": c.training_data if isinstance(c.training_data, str)
            else (c.training_data or {}).get("name", ""),
            "metrics": c.metrics,
            "created": c.created,
            "source": self.source,
            "path": str(self.path),
        }


@dataclass(frozen=True)
class RankedModel:
    """A model of a task with its match to the data (see :meth:`ModelRegistry.ranked`)."""

    entry: ModelEntry
    match: DomainMatch

    def why(self) -> str:
        """Why it was picked, in one line (see :meth:`describe`)."""
        return self.describe(self.entry.card, self.match)

    @staticmethod
    def describe(card: ModelCard, match: DomainMatch) -> str:
        """A card's training domain, how data match it, calibration and held-out figure."""
        trained = ""
        if card.domain is not None:
            try:
                trained = f"trained on {DataDomain.from_dict(card.domain).describe()}; "
            except ValueError:
                trained = ""
        held = headline_metric(card)
        held_s = f"; held-out {held}" if held is not None else ""
        cal = "" if card.task != "mhr" else (
            "; calibrated" if card.calibrator is not None else "; UNCALIBRATED (no calibrator)")
        return f"{trained}match {match.score:.2f}: {match.explain()}{cal}{held_s}"


def _rank_key(index: int, entry: ModelEntry, match: DomainMatch) -> tuple[Any, ...]:
    """Sort key: best match first (scores within 0.1 count as equal).

    Then a calibrated MHR model before an uncalibrated one, the better held-out figure,
    search order.
    """
    held = headline_metric(entry.card)
    signed = math.inf if held is None else (-held.value if held.higher_is_better else held.value)
    return (-round(match.score * 10.0), entry.task == "mhr" and not entry.calibrated,
            held is None, signed, index)


def rank_entries(entries: list[ModelEntry], domain: DataDomain | None) -> list[RankedModel]:
    """Entries of one task, best first, as :meth:`ModelRegistry.ranked` orders them.

    With ``domain`` None (no data to match against) every entry matches fully and the
    order is calibration, held-out figure, then the given order.
    """
    matches = [e.match(domain) if domain is not None else DomainMatch(1.0) for e in entries]
    order = sorted(range(len(entries)), key=lambda i: _rank_key(i, entries[i], matches[i]))
    return [RankedModel(entries[i], matches[i]) for i in order]


@dataclass(frozen=True)
class RegistryProblem:
    """A card that could not be used, and why."""

    path: Path
    message: str


def _looks_like_card(path: Path) -> bool:
    """Cheap test that a .json file is meant to be a model card.

    It is when it has a sibling weights file or mentions the card keys; other JSON files
    (histories, metrics) are ignored.
    """
    if path.with_suffix(".safetensors").exists():
        return True
    try:
        head = path.read_bytes()[:4096].decode("utf-8", "replace")
    except OSError:
        return False
    return '"architecture"' in head and '"task"' in head and '"backbone"' in head


class ModelRegistry:
    """Find model checkpoints and pick one per task.

    Parameters
    ----------
    paths : sequence of path, optional
        Extra folders to search (non-recursive, plus one level of subfolders).
    include_shipped, include_user : bool
        Whether to search the shipped and user folders.
    """

    def __init__(
        self,
        paths: list[str | Path] | None = None,
        include_shipped: bool = True,
        include_user: bool = True,
    ) -> None:
        self.extra_paths: list[Path] = [Path(p) for p in (paths or [])]
        self.include_shipped = include_shipped
        self.include_user = include_user
        self.registered: list[Path] = []
        self.problems: list[RegistryProblem] = []
        self._defaults: dict[str, Path] = {}
        self._entries: list[ModelEntry] | None = None

    # -- configuration ------------------------------------------------------------------
    def search_paths(self) -> list[tuple[Path, str]]:
        """``(folder, source)`` in search order."""
        out = [(p, "path") for p in self.extra_paths]
        if self.include_user:
            out.append((user_models_dir(), "user"))
        if self.include_shipped:
            out.append((shipped_models_dir(), "shipped"))
        return out

    def add_path(self, path: str | Path) -> None:
        """Search another folder too."""
        p = Path(path)
        if p not in self.extra_paths:
            self.extra_paths.append(p)
        self._entries = None

    def register(self, path: str | Path) -> ModelEntry:
        """Add one checkpoint (card, weights or stem path) and return its entry.

        Raises
        ------
        CheckpointError
            If the card is invalid or its weights are missing.
        """
        entry = self._entry(Path(path), "registered")
        if entry.path not in self.registered:
            self.registered.insert(0, entry.path)
        self._entries = None
        return entry

    def set_default(self, task: str, path: str | Path) -> None:
        """Make the checkpoint at ``path`` the default for ``task``."""
        self._defaults[task] = checkpoint_paths(path)[0].resolve()

    # -- listing ------------------------------------------------------------------------
    @staticmethod
    def _entry(path: Path, source: str) -> ModelEntry:
        card, card_path, weights = read_checkpoint_card(path)
        if not weights.is_file():
            raise CheckpointError(f"{weights}: weights file not found (named by {card_path.name})")
        return ModelEntry(card_path.resolve(), card, weights, source)

    def _scan(self, folder: Path, source: str, seen: set[Path], out: list[ModelEntry]) -> None:
        if not folder.is_dir():
            return
        try:
            cards = sorted(folder.glob("*.json")) + sorted(folder.glob("*/*.json"))
        except OSError as exc:
            self.problems.append(RegistryProblem(folder, f"cannot list folder: {exc}"))
            return
        for card_path in cards:
            if card_path.name.startswith(".") or not _looks_like_card(card_path):
                continue
            key = card_path.resolve()
            if key in seen:
                continue
            seen.add(key)
            try:
                out.append(self._entry(card_path, source))
            except CheckpointError as exc:
                self.problems.append(RegistryProblem(card_path, str(exc)))

    def refresh(self) -> list[ModelEntry]:
        """Re-read every folder; returns the entries."""
        self.problems = []
        seen: set[Path] = set()
        out: list[ModelEntry] = []
        for p in list(self.registered):
            key = p.resolve()
            if key in seen:
                continue
            seen.add(key)
            try:
                out.append(self._entry(p, "registered"))
            except CheckpointError as exc:
                self.problems.append(RegistryProblem(p, str(exc)))
        for folder, source in self.search_paths():
            self._scan(folder, source, seen, out)
        self._entries = out
        return out

    def list(self, refresh: bool = False) -> list[ModelEntry]:
        """All valid entries (invalid cards are skipped and recorded in ``problems``)."""
        if self._entries is None or refresh:
            self.refresh()
        assert self._entries is not None
        return list(self._entries)

    def by_task(self, task: str) -> list[ModelEntry]:
        """Entries for one task, in search order."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {list(TASKS)}")
        return [e for e in self.list() if e.card.task == task]

    def default(self, task: str) -> ModelEntry | None:
        """The model to use for ``task`` (None if there is none).

        The one set with :meth:`set_default`, else the most recently created among the
        first search location that has one.
        """
        entries = self.by_task(task)
        if not entries:
            return None
        chosen = self._defaults.get(task)
        for e in entries:
            if chosen is not None and e.path == chosen:
                return e
        first_source = entries[0].source
        same = [e for e in entries if e.source == first_source]
        return max(same, key=lambda e: e.card.created or "")

    def ranked(self, task: str, domain: DataDomain) -> list[RankedModel]:
        """The models of ``task``, the best for data of ``domain`` first.

        Ordered by the match of their card's training domain (:func:`match_score`;
        scores within 0.1 count as equal), then a calibrated MHR model before an
        uncalibrated one, then the better held-out figure on the card
        (:func:`~napari_iaa.models.card.headline_metric`), then search order. A model
        only because it is newer is never preferred.
        """
        return rank_entries(self.by_task(task), domain)

    def best_for(self, task: str, domain: DataDomain) -> RankedModel | None:
        """The model of ``task`` that best matches data of ``domain`` (None without one)."""
        ranked = self.ranked(task, domain)
        return ranked[0] if ranked else None
