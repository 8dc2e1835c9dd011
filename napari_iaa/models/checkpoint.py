"""Checkpoint format: ``<name>.safetensors`` (weights) + ``<name>.json`` (model card).

Nothing is unpickled. Loading reads the card first, builds the network it names through
:data:`~napari_iaa.models.networks.ARCHITECTURES`, and only then reads the weights with
safetensors, refusing anything that does not match exactly.

Writing is atomic per file (temporary file in the same folder, fsync, ``os.replace``);
both temporary files are complete and synced before either is renamed, the card records
the SHA-256 of its weights, and the previous weights stay hard-linked as
``.<name>.safetensors.prev`` until the new card is in place. A crash at any point
therefore leaves the previous card with its own weights loadable, and a card/weights
pair that does not belong together is never loaded as a good model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from napari_iaa.data.writers import fsync_dir, write_temp_file
from napari_iaa.errors import CheckpointError, ConfigError
from napari_iaa.models.card import ModelCard
from napari_iaa.models.card_files import (
    PICKLE_SUFFIXES,
    checkpoint_paths,
    read_checkpoint_card,
)
from napari_iaa.models.networks import build_model

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_paths",
    "read_checkpoint_card",
    "unwrap_model",
    "PICKLE_SUFFIXES",
]

_MAX_HEADER = 100 * 1024 * 1024


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod  # torch.compile
        elif isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        else:
            return model


def save_checkpoint(model: nn.Module, card: ModelCard, path: str | Path) -> Path:
    """Write ``<name>.safetensors`` and ``<name>.json`` atomically.

    Parameters
    ----------
    model : nn.Module
        The network (DDP / compiled wrappers are unwrapped). Its state dict must match
        ``build_model(card)``.
    card : ModelCard
        Its card; ``weights`` and ``weights_sha256`` are filled in (the caller's object is
        updated too).
    path : str or Path
        ``<folder>/<name>``, ``<name>.json`` or ``<name>.safetensors``.

    Returns
    -------
    Path
        The card's path.
    """
    card_path, weights_path = checkpoint_paths(path)
    bad = card.problems()
    if bad:
        raise CheckpointError(f"{card_path}: refusing to save an invalid card: " + "; ".join(bad))
    folder = card_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    state = unwrap_model(model).state_dict()
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    data = st_save(tensors, metadata={"format": "pt", "napari_iaa_card": card_path.name})
    card.weights = weights_path.name
    card.weights_sha256 = hashlib.sha256(data).hexdigest()
    text = card.to_json().encode("utf-8")
    tmp_w = write_temp_file(weights_path, data)
    try:
        tmp_c = write_temp_file(card_path, text)
    except BaseException:
        tmp_w.unlink(missing_ok=True)
        raise
    prev = _prev_path(weights_path)
    weights_replaced = False
    try:
        # keep the old weights reachable (hard link, no copy) until the new card is in
        # place: a crash between the two renames leaves the old card + old weights loadable
        prev.unlink(missing_ok=True)
        if weights_path.is_file():
            try:
                os.link(weights_path, prev)
            except OSError:  # no hard links on this file system: copy instead
                shutil.copyfile(weights_path, prev)
        os.replace(tmp_w, weights_path)
        weights_replaced = True
        os.replace(tmp_c, card_path)
        prev.unlink(missing_ok=True)
    finally:
        tmp_w.unlink(missing_ok=True)
        tmp_c.unlink(missing_ok=True)
        if not weights_replaced:
            prev.unlink(missing_ok=True)
    fsync_dir(folder)
    return card_path


def _prev_path(weights_path: Path) -> Path:
    return weights_path.with_name(f".{weights_path.name}.prev")


def _check_safetensors_bytes(data: bytes, path: Path) -> None:
    ok = len(data) >= 10
    if ok:
        (n,) = struct.unpack("<Q", data[:8])
        ok = n <= _MAX_HEADER and 8 + n <= len(data) and data[8:9] == b"{"
    if ok:
        return
    if (data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")) or data[
        :4
    ] == b"PK\x03\x04":
        raise CheckpointError(
            f"{path}: looks like a pickle/zip (torch.save) file, not safetensors; refusing to load"
        )
    raise CheckpointError(f"{path}: not a safetensors file (bad header, {len(data)} bytes)")


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelCard]:
    """Load a checkpoint safely.

    Parameters
    ----------
    path : str or Path
        The ``.json`` card, the ``.safetensors`` weights or their common stem.
    device : str or torch.device
        Where to put the model (``"auto"`` resolves with :func:`pick_device`).

    Returns
    -------
    model, card
        The model in eval mode on ``device`` and its card.

    Raises
    ------
    CheckpointError
        Naming the file, for: pickle files (by suffix or content), missing or malformed
        card JSON, unknown architecture or backbone, weights outside the card's folder,
        a weights hash that differs from the card's, missing/unexpected keys or shapes
        that differ from the network the card describes.
    """
    card, card_path, weights_path = read_checkpoint_card(path)
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: weights file not found (named by {card_path.name})")
    try:
        data = weights_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{weights_path}: cannot be read: {exc.strerror or exc}") from exc
    if card.weights_sha256 and hashlib.sha256(data).hexdigest() != card.weights_sha256:
        # a save interrupted between its two renames: the card's own weights are kept
        prev = _prev_path(weights_path)
        if prev.is_file() and not prev.is_symlink():
            prev_data = prev.read_bytes()
            if hashlib.sha256(prev_data).hexdigest() == card.weights_sha256:
                data = prev_data
    _check_safetensors_bytes(data, weights_path)
    if card.weights_sha256 and hashlib.sha256(data).hexdigest() != card.weights_sha256:
        raise CheckpointError(
            f"{weights_path}: SHA-256 differs from the one in {card_path.name}: the weights "
            "were changed or belong to another card"
        )
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise CheckpointError(f"{weights_path}: not a valid safetensors file: {exc}") from exc
    try:
        model = build_model(card)
    except ConfigError as exc:
        raise CheckpointError(f"{card_path}: {exc}") from exc
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(
        k for k in set(expected) & set(tensors) if tuple(expected[k].shape) != tuple(tensors[k].shape)
    )
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} shape mismatches (e.g. {k}: weights {tuple(tensors[k].shape)}, "
                f"card's network {tuple(expected[k].shape)})"
            )
        raise CheckpointError(
            f"{weights_path}: weights do not match the network described by {card_path.name}: "
            + "; ".join(parts)
        )
    model.load_state_dict(tensors, strict=True)
    from napari_iaa.models.device import pick_device

    model.to(pick_device(device)).eval()
    return model, card
