"""``napari-iaa predict``: the argparse sub-command and its runner."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from napari_iaa.data import Dataset, open_dataset
from napari_iaa.data.io import mask_warnings_to
from napari_iaa.errors import CheckpointError, ConfigError, IAAError
from napari_iaa.predict.choose import choose_models, describe_choice
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
            "for every case of DATASET and write them to a CSV, with the model behind "
            "each column. Without --model, each task uses the registered model whose card "
            "best matches the data (image kind, unit, intensities, size), printed with "
            "the reason; a warning says when the data do not match. Volumes are predicted "
            "slice by slice and aggregated per volume (IAA weighted by the predicted "
            "lesion area per slice, quality by the mask's area per slice). Under torchrun "
            "the cases are sharded over the processes and rank 0 merges the CSV."
        ),
    )
    p.add_argument("dataset", help="data set folder (any supported layout)")
    p.add_argument("--model", action="append", default=None, metavar="MODEL",
                   help="a model card (.json), its weights (.safetensors) or the path "
                        "without suffix, or the name of a registered model (shipped, in "
                        "the user folder or $NAPARI_IAA_MODELS); repeat for several tasks "
                        "(the card names the task). Default: per task, the registered "
                        "model whose card best matches the data set (printed with the "
                        "reason)")
    p.add_argument("--tasks", default="iaa,mhr,quality", metavar="LIST",
                   help="without --model: the tasks to pick models for (comma-separated "
                        "of iaa, mhr, quality; default all three)")
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


def _note(text: str) -> None:
    """``napari-iaa predict: <text>`` on one line of stderr."""
    print("napari-iaa predict: " + " ".join(str(text).split()), file=sys.stderr)


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
        if rank == 0:
            for problem in getattr(ds, "problems", ()):  # files the index left out
                _note(f"warning: {problem}")
        with mask_warnings_to(lambda text: _note(f"warning: {text}")):  # one line each
            models = _chosen_models(args, ds, ModelRegistry(), rank)
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
            used = ", ".join(f"{s} {models.name(s)}" for s in models.slots)
            print(f"wrote {args.out}: {n_cases} cases, {len(df)} rows "
                  f"(models: {used}; device {models.device})")
        return 0
    except IAAError as exc:
        print(f"napari-iaa predict: error: {exc}", file=sys.stderr)
        return 2


def _chosen_models(args: argparse.Namespace, ds: Dataset, registry: Any, rank: int) -> Any:
    """The models of ``--model``, else per task the best match; says which and why
    (stderr, rank 0) and warns when the data do not match a model's card."""
    slots = [t.strip() for t in str(args.tasks).split(",") if t.strip()]
    bad = [t for t in slots if t not in ("iaa", "mhr", "quality")]
    if bad:
        raise ConfigError(f"--tasks: unknown task(s) {bad}; use iaa, mhr, quality")
    choices = choose_models(ds, registry, explicit=args.model, slots=slots)
    if not choices:
        raise CheckpointError(
            f"{args.dataset}: no model found for {', '.join(slots)}: give one with --model "
            f"or put checkpoints in the user model folder ($NAPARI_IAA_MODELS)")
    if rank == 0:
        for c in choices:
            print(f"napari-iaa predict: {describe_choice(c)}", file=sys.stderr)
            if c.warning:
                print(f"napari-iaa predict: warning: {c.warning}", file=sys.stderr)
            if c.slot == "mhr" and not c.calibrated:
                print(f"napari-iaa predict: warning: {c.name} has no calibrator: its MHR "
                      f"maps are uncalibrated (written as <case>_mhr_uncalibrated.*)",
                      file=sys.stderr)
    return load_models({c.slot: c.path for c in choices}, device=args.device,
                       registry=registry)


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
    """``python -m napari_iaa.predict DATASET [--model ...] --out FILE.csv`` (as the CLI)."""
    parser = argparse.ArgumentParser(prog="napari-iaa")
    sub = parser.add_subparsers(dest="command", required=True)
    add_predict_parser(sub)
    args = parser.parse_args(["predict", *(sys.argv[1:] if argv is None else argv)])
    return run_predict(args)
