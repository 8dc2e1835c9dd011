"""Command line: ``python -m training fit|twintrack|evaluate ...``.

The options of ``fit`` are generated from :class:`training.config.FitConfig`'s fields
(:func:`training.config.add_config_arguments`), so ``--help`` shows the dataclass's
defaults and help texts.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from napari_iaa._malloc import tune_malloc
from napari_iaa.errors import IAAError
from training.config import add_config_arguments, config_fields, config_from_args
from training.engine import Callback, Trainer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training", description="Train and evaluate napari-iaa models.")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="train a model (or fit a calibrator)")
    add_config_arguments(f)

    t = sub.add_parser("twintrack", help="TwinTrack: N binary mhr members, averaged, isotonic "
                       "calibration to the MHR (fit x N + calibrate)")
    t.add_argument("--members", type=int, default=3, help="ensemble members, >= 3 (default: 3)")
    add_config_arguments(t, skip=("task", "binary", "models", "n_levels", "diagnosis", "diag_weight",
                                      "focal_gamma", "quality_clean_fraction"))

    e = sub.add_parser("evaluate", help="held-out metrics of a checkpoint")
    e.add_argument("--model", required=True,
                   help="checkpoint: its card (.json), its weights (.safetensors, the card beside "
                   "them) or the path without suffix")
    e.add_argument("--data", required=True, help=config_fields()["data"].metadata["help"])
    e.add_argument("--layout", default=None)
    e.add_argument("--split", default="test", choices=("test", "val", "calib", "train", "all"))
    e.add_argument("--max-cases", type=int, default=None)
    e.add_argument("--device", default="auto")
    e.add_argument("--out", default=None, help="folder for <name>.eval.json and plots")
    e.add_argument("--cache-dir", default=None)
    e.add_argument("--workers", type=int, default=2)
    return p


class _Printer:
    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last > 10 or done >= total:
            self.last = now
            print(f"progress {done / max(1, total):6.1%}", flush=True)


class _Log(Callback):
    """Prints one line per finished epoch."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        vals = " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        print(f"epoch {epoch + 1}/{trainer.epochs} {vals}", flush=True)


def _print_warnings(warnings: list[str]) -> None:
    """Repeat the run's warnings after the long JSON, where they are seen."""
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)


def _fit(args: argparse.Namespace) -> None:
    from training.fitting import fit

    res = fit(config_from_args(args), progress=_Printer(), callbacks=[_Log()])
    print(json.dumps({"checkpoint": str(res.checkpoint_path), "cancelled": res.cancelled,
                      "images_per_second": res.images_per_second, "seconds": res.seconds,
                      "warnings": res.warnings, "metrics": res.metrics}, indent=1, default=str))
    _print_warnings(res.warnings)


def _twintrack(args: argparse.Namespace) -> None:
    from training.twintrack import twintrack, twintrack_name

    args.task = "mhr"
    if getattr(args, "name", None) is None:
        args.name = twintrack_name(args.data)
    res = twintrack(config_from_args(args), members=args.members, progress=_Printer(),
                    callbacks=[_Log()])
    print(json.dumps({"checkpoint": str(res.checkpoint_path), "cancelled": res.cancelled,
                      "seconds": res.seconds, "warnings": res.warnings, "metrics": res.metrics},
                     indent=1, default=str))
    _print_warnings(res.warnings)


def _evaluate(args: argparse.Namespace) -> None:
    from training.evaluate import evaluate_checkpoint

    m = evaluate_checkpoint(args.model, args.data, layout=args.layout, split=args.split,
                            max_cases=args.max_cases, device=args.device, out=args.out,
                            workers=args.workers, cache_dir=args.cache_dir)
    print(json.dumps(m, indent=1, default=str))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for a user error)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    tune_malloc()  # each step's activations reuse the last step's memory (napari_iaa._malloc)
    try:
        {"fit": _fit, "twintrack": _twintrack, "evaluate": _evaluate}[args.command](args)
    except IAAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
