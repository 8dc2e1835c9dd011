"""Command line: ``python -m training fit ...`` and ``python -m training evaluate ...``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from napari_iaa.errors import IAAError
from training.config import TASK_NAMES, FitConfig


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training", description="Train and evaluate napari-iaa models.")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="train a model (or fit a calibrator)")
    f.add_argument("--task", required=True, choices=TASK_NAMES)
    f.add_argument("--data", required=True, help="data set folder")
    f.add_argument("--layout", default=None, help="force a layout (lidc, imapp, manifest, folders)")
    f.add_argument("--diagnosis", default=None, help="iaa: metadata column of the diagnosis head")
    f.add_argument("--backbone", default="resnet10t", help="timm backbone (pretrained=False)")
    f.add_argument("--size", type=int, default=128, help="input size in pixels (square)")
    f.add_argument("--epochs", type=int, default=10)
    f.add_argument("--batch-size", type=int, default=32)
    f.add_argument("--lr", type=float, default=1e-3)
    f.add_argument("--weight-decay", type=float, default=1e-4)
    f.add_argument("--device", default="auto", help="auto, cuda, cuda:N, mps or cpu")
    f.add_argument("--out", default="models", help="output folder")
    f.add_argument("--name", default=None, help="model name (default <task>-<data folder>)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--val-fraction", type=float, default=0.15)
    f.add_argument("--test-fraction", type=float, default=0.15)
    f.add_argument("--calib-fraction", type=float, default=0.15, help="mhr: groups kept for calibrate")
    f.add_argument("--resume", action="store_true", help="continue from <out>/<name>_state")
    f.add_argument("--max-cases", type=int, default=None)
    f.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    f.add_argument("--empty-pair", default="zero", choices=("zero", "one", "ignore"))
    f.add_argument("--n-levels", type=int, default=5, help="mhr: ordinal agreement levels")
    f.add_argument("--binary", action="store_true", help="mhr: plain binary baseline vs majority vote")
    f.add_argument("--diag-weight", type=float, default=0.5)
    f.add_argument("--seg-weight", type=float, default=1.0)
    f.add_argument("--model", dest="models", action="append", default=[],
                   help="calibrate: a trained mhr checkpoint (repeat for an ensemble)")
    f.add_argument("--cache-dir", default=None, help="reuse resized arrays between runs")
    f.add_argument("--threads", type=int, default=None, help="torch threads")
    f.add_argument("--no-augment", dest="augment", action="store_false")

    e = sub.add_parser("evaluate", help="held-out metrics of a checkpoint")
    e.add_argument("--model", required=True, help="checkpoint (.json card, .safetensors or stem)")
    e.add_argument("--data", required=True)
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


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for a user error)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        if args.command == "fit":
            d = vars(args).copy()
            d.pop("command")
            config = FitConfig(**d)
            from training.engine import Callback
            from training.fitting import fit

            class _Log(Callback):
                def on_epoch_end(self, trainer, epoch, metrics):
                    vals = " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
                    print(f"epoch {epoch + 1}/{trainer.epochs} {vals}", flush=True)

            res = fit(config, progress=_Printer(), callbacks=[_Log()])
            print(json.dumps({"checkpoint": str(res.checkpoint_path), "cancelled": res.cancelled,
                              "images_per_second": res.images_per_second, "seconds": res.seconds,
                              "metrics": res.metrics}, indent=1, default=str))
        else:
            from training.evaluate import evaluate_checkpoint

            m = evaluate_checkpoint(args.model, args.data, layout=args.layout, split=args.split,
                                    max_cases=args.max_cases, device=args.device, out=args.out,
                                    workers=args.workers, cache_dir=args.cache_dir)
            print(json.dumps(m, indent=1, default=str))
    except IAAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
