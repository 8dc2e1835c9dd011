"""The resumable state of a fit on disk: optimizer tensors as safetensors, the rest as JSON.

No pickles: ``torch.optim`` state tensors go to ``<stem>.safetensors``, its scalars and
param groups to JSON (NaN and inf as null, :func:`napari_iaa.data.json_safe`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from napari_iaa.data import json_safe

__all__ = ["latest_state_dir", "load_optimizer_state", "save_optimizer_state"]


def save_optimizer_state(optimizer: torch.optim.Optimizer, path_stem: Path) -> dict:
    """Tensors of ``optimizer.state_dict()`` to ``<stem>.safetensors``; returns the rest (JSON)."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for pid, st in sd["state"].items():
        sc = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                sc[k] = json_safe(v)
        scalars[str(pid)] = sc
    save_file(tensors, str(path_stem) + ".safetensors")
    return {"state": scalars, "param_groups": json_safe(sd["param_groups"])}


def load_optimizer_state(optimizer: torch.optim.Optimizer, path_stem: Path, meta: dict) -> None:
    """Inverse of :func:`save_optimizer_state`."""
    tensors = load_file(str(path_stem) + ".safetensors")
    state: dict[int, dict[str, Any]] = {int(pid): dict(sc) for pid, sc in meta["state"].items()}
    for key, t in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = t
    groups = meta["param_groups"]
    for g in groups:
        if "betas" in g and isinstance(g["betas"], list):
            g["betas"] = tuple(g["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def latest_state_dir(state_dir: Path) -> Path | None:
    """The complete epoch folder that ``latest.json`` points at, or None."""
    pointer = Path(state_dir) / "latest.json"
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text(encoding="utf-8"))["dir"]
    except (ValueError, KeyError):
        return None
    d = Path(state_dir) / name
    if d.parent.resolve() != Path(state_dir).resolve() or not (d / "state.json").is_file():
        return None
    return d
