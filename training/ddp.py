"""DistributedDataParallel helpers for ``torchrun``.

``torchrun --nproc-per-node 2 -m training fit ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`setup` then joins the process group (gloo on the CPU, nccl on
CUDA). Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "setup", "teardown", "is_main", "barrier", "wrap_model", "unwrap", "broadcast_flag"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: torch.device) -> DistInfo:
    """Join the process group if launched by torchrun (``WORLD_SIZE`` > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank=rank, world_size=world, local_rank=local, backend=backend)


def teardown(info: DistInfo) -> None:
    """Leave the process group (no-op when not distributed).

    Every rank waits for the others first: a rank that destroys its gloo group while a
    peer is still working (rank 0 writing the state) closes the pair's sockets under it,
    and gloo aborts the peer ("terminate called without an active exception").
    """
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def is_main(info: DistInfo | None) -> bool:
    """True on rank 0 or when not distributed."""
    return info is None or info.is_main


def barrier(info: DistInfo | None) -> None:
    """Wait for every rank (no-op when not distributed)."""
    if info is not None and info.enabled and dist.is_initialized():
        dist.barrier()


def broadcast_flag(info: DistInfo | None, flag: bool) -> bool:
    """Rank 0's boolean, on every rank (e.g. a stop request)."""
    if info is None or not info.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int64)
    if info.backend == "nccl":
        t = t.cuda()
    dist.broadcast(t, src=0)
    return bool(t.item())


def wrap_model(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """Wrap in DistributedDataParallel when distributed."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else info.local_rank] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=False)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside a DDP wrapper."""
    return model.module if hasattr(model, "module") and isinstance(model.module, torch.nn.Module) else model
