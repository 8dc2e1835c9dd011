"""``napari-iaa synth``: a synthetic dermoscopy-like data set in the IMA++ layout, or (``--3d``)
CT-like lesion volumes as NIfTI in the folders layout."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from napari_iaa.cli._common import progress_bar
from napari_iaa.data import generate_synthetic_dataset, generate_synthetic_volumes
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
    p.add_argument("--3d", dest="volumes", action="store_true",
                   help="CT-like lesion volumes (NIfTI, folders layout, 2.5 x 0.7 x 0.7 mm) "
                   "instead of dermoscopy images; --size and --format do not apply")
    p.add_argument("--shape", type=_parse_shape, default=(24, 64, 64), metavar="ZxYxX",
                   help="--3d: volume shape in voxels (default 24x64x64)")
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


def _parse_shape(text: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"shape must look like ZxYxX (e.g. 24x64x64), not {text!r}")
    z, y, x = (int(v) for v in m.groups())
    if min(z, y, x) < 8:
        raise argparse.ArgumentTypeError(f"shape {text!r} is too small (at least 8 voxels a side)")
    return z, y, x


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
    bar, progress = progress_bar(args.n, "case", "generating", show=True)
    try:
        if args.volumes:
            path = generate_synthetic_volumes(
                out, n=args.n, seed=args.seed, shape=args.shape,
                n_annotators=max(2, min(args.annotators[1], 6)), overwrite=args.force,
                progress=progress,
            )
            what = "x".join(map(str, args.shape)) + " NIfTI"
        else:
            w, h = args.size
            path = generate_synthetic_dataset(
                out, n=args.n, seed=args.seed, size=(h, w), n_annotators=args.annotators,
                image_format=args.format, overwrite=args.force, progress=progress,
            )
            what = f"{w}x{h}"
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote {args.n} synthetic cases ({what}, seed {args.seed}) to {path}")
    return 0


