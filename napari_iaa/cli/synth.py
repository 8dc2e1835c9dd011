"""``napari-iaa synth``: write a synthetic dermoscopy-like data set in the IMA++ layout."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from napari_iaa.cli._common import progress_bar
from napari_iaa.data import generate_synthetic_dataset
from napari_iaa.errors import ConfigError

__all__ = ["add_synth_parser", "run_synth"]


def add_synth_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``synth`` to the sub-command parsers."""
    p = sub.add_parser("synth", help="write a synthetic data set (IMA++ layout)")
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument("--n", type=int, default=40, help="number of images (default 40)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=_parse_size, default=(256, 256), metavar="WxH",
                   help="image size (default 256x256)")
    p.add_argument("--annotators", type=_parse_range, default=(2, 5), metavar="LO-HI",
                   help="annotators per image, a range or one number (default 2-5, at most 8)")
    p.add_argument("--format", choices=["jpg", "png"], default="jpg", help="image format (default jpg)")
    p.add_argument("--force", action="store_true", help="replace a synthetic data set in OUT")
    p.set_defaults(func=run_synth)
    return p


def _parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX*,]\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"size must look like WIDTHxHEIGHT (e.g. 256x256), not {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small (at least 16x16)")
    return w, h


def _parse_range(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if not m:
        raise argparse.ArgumentTypeError(f"annotators must look like LO-HI (e.g. 2-5) or N, not {text!r}")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    return lo, hi


def run_synth(args: argparse.Namespace) -> int:
    """Run ``napari-iaa synth``: the data set in ``OUT``, one line on stdout."""
    if args.n < 1:
        raise ConfigError(f"--n must be at least 1, not {args.n}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise ConfigError(f"{out} is not empty (use --force to replace a synthetic data set there)")
    w, h = args.size
    bar, progress = progress_bar(args.n, "case", "generating", show=True)
    try:
        path = generate_synthetic_dataset(
            out, n=args.n, seed=args.seed, size=(h, w), n_annotators=args.annotators,
            image_format=args.format, overwrite=args.force, progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote {args.n} synthetic cases ({w}x{h}, seed {args.seed}) to {path}")
    return 0


