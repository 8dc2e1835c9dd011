"""Checkpoint files without torch: where a card and its weights lie, and reading a card.

The model registry, the dock's model list and the command line's model choice read cards
on any thread; :mod:`.checkpoint` (which imports torch) loads and saves the weights.
"""

from __future__ import annotations

from pathlib import Path

from napari_iaa.errors import CheckpointError
from napari_iaa.models.card import ModelCard, read_card

__all__ = ["PICKLE_SUFFIXES", "checkpoint_paths", "read_checkpoint_card", "weights_path_of"]

#: file suffixes refused outright: these formats execute code when unpickled
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".joblib", ".npy", ".npz")


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(card_path, default_weights_path)`` for a ``.json``, ``.safetensors`` or stem path.

    Raises
    ------
    CheckpointError
        For pickle-based suffixes (.pt, .pth, .ckpt, .pkl, ...).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{p}: '{suffix}' files are pickle-based and can run code when loaded; "
            "napari-iaa only loads .safetensors weights with a .json model card"
        )
    stem = p.with_suffix("") if suffix in (".json", ".safetensors") else p
    return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".safetensors")


def weights_path_of(card: ModelCard, card_path: Path, default: Path) -> Path:
    """The weights file a card names (``default`` when it names none).

    It must be a ``.safetensors`` file in the card's own folder.

    Raises
    ------
    CheckpointError
        When the name leaves the card's folder or is not a ``.safetensors`` file.
    """
    name = card.weights if card.weights else default.name
    rel = Path(name)
    if rel.is_absolute() or rel.name != name or name in (".", "..") or "\\" in name:
        raise CheckpointError(
            f"{card_path}: 'weights' must be a plain file name in the card's folder, got {name!r}"
        )
    folder = card_path.parent.resolve()
    target = (card_path.parent / rel).resolve()
    if target.parent != folder:
        raise CheckpointError(
            f"{card_path}: weights {name!r} resolve to {target}, outside the card's folder"
        )
    if target.suffix.lower() != ".safetensors":
        raise CheckpointError(
            f"{card_path}: weights {name!r} are not a .safetensors file; refusing to load"
        )
    return target


def read_checkpoint_card(path: str | Path) -> tuple[ModelCard, Path, Path]:
    """Read a checkpoint's card without touching the weights.

    Returns
    -------
    card, card_path, weights_path
        ``weights_path`` is checked to lie inside the card's folder (it may not exist).
    """
    card_path, default = checkpoint_paths(path)
    if not card_path.is_file():
        raise CheckpointError(f"{card_path}: model card not found (expected beside the weights)")
    card = read_card(card_path)
    return card, card_path, weights_path_of(card, card_path, default)
