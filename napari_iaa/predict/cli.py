"""``napari-iaa predict``: the argparse sub-command and its runner."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from napari_iaa.data import Dataset, open_dataset
from napari_iaa.errors import IAAError
from napari_iaa.predict.dataset import predict_dataset, shard_info
from napari_iaa.predict.models import load_models

__all__ = ["add_predict_parser", "main", "run_predict"]


def add_predict_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``predict`` to an argparse sub-parser set (``napari-iaa predict``)."""
    p = subparsers.add_parser(
        "predict",
        help="predict IAA, per-mask quality and MHR maps for a data set",
        description=(
            "Predict per-case IAA, per-mask quality and (with --maps) calibrated MHR maps "
            "for every case of DATASET and write them to a CSV. Volumes are predicted "
            "slice by slice and aggregated per volume (IAA weighted by the predicted "
            "lesion area per slice, quality by the mask's area per slice). Under torchrun "
            "the cases are sharded over the processes and rank 0 merges the CSV."
        ),
    )
    p.add_argument("dataset", help="data set folder (any supported layout)")
    p.add_argument("--model", action="append", required=True, metavar="CHECKPOINT",
                   help="checkpoint (.safetensors) or registered model name; repeat for "
                        "several tasks (the model card names the task)")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--maps", default=None, metavar="DIR",
                   help="folder for the calibrated MHR maps (<case>_mhr.png; a volume's "
                        "<case>_mhr.nii.gz with its spacing)")
    p.add_argument("--batch-size", type=int, default=8,
                   help="images (or a volume's slices) per forward pass")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    p.add_argument("--layout", default=None, help="data set layout (default: detected)")
    p.add_argument("--empty-pair", default="zero", choices=["zero", "one", "ignore"],
                   help="Dice of a pair with an empty mask, for the empirical IAA")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_predict)
    return p


def _progress_bar(args: argparse.Namespace, n_cases: int, rank: int, world: int
                  ) -> tuple[Any, Callable[[int, int], None]]:
    """A tqdm bar on stderr (None with ``--no-progress``) and the callback that feeds it."""
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=n_cases, desc=f"predict[{rank}/{world}]" if world > 1 else "predict",
                   unit="case", file=sys.stderr, position=rank if world > 1 else None)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    return bar, progress


def run_predict(args: argparse.Namespace,
                open_data: Callable[[argparse.Namespace], Dataset] | None = None) -> int:
    """Run ``napari-iaa predict``; returns the exit code (IAAError -> one line, code 2).

    ``open_data(args)`` opens the data set (default: ``open_dataset(args.dataset,
    layout=args.layout)``); the command line passes its own, which knows ``--unit``.
    Volume cases are predicted slice by slice (see :mod:`napari_iaa.predict.volume`).
    """
    from napari_iaa.models import ModelRegistry

    try:
        rank, world = shard_info()
        own_group = _init_dist(world)
        ds = (open_data(args) if open_data is not None
              else open_dataset(args.dataset, layout=args.layout))
        models = load_models(args.model, device=args.device, registry=ModelRegistry())
        bar, progress = _progress_bar(args, len(ds.ids[rank::world]), rank, world)
        df = predict_dataset(ds, models, args.out, maps_dir=args.maps,
                             batch_size=args.batch_size, progress=progress,
                             empty=args.empty_pair)
        if bar is not None:
            bar.close()
        if own_group:
            import torch.distributed as dist

            dist.destroy_process_group()
        if rank == 0:
            n_cases = df["case_id"].nunique() if len(df) else 0
            print(f"wrote {args.out}: {n_cases} cases, {len(df)} rows "
                  f"(models: {', '.join(models.slots)}, device {models.device})")
        return 0
    except IAAError as exc:
        print(f"napari-iaa predict: error: {exc}", file=sys.stderr)
        return 2


def _init_dist(world: int) -> bool:
    """Under torchrun (MASTER_ADDR set), join a gloo group for the final barrier.

    Returns True if this call created the process group (the caller destroys it).
    """
    if world <= 1 or "MASTER_ADDR" not in os.environ:
        return False
    import torch.distributed as dist

    if dist.is_available() and not dist.is_initialized():
        dist.init_process_group("gloo")
        return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m napari_iaa.predict DATASET --model ... --out FILE.csv`` (same as the CLI)."""
    parser = argparse.ArgumentParser(prog="napari-iaa")
    sub = parser.add_subparsers(dest="command", required=True)
    add_predict_parser(sub)
    args = parser.parse_args(["predict", *(sys.argv[1:] if argv is None else argv)])
    return run_predict(args)
