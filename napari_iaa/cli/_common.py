"""What every sub-command shares: the parser that does not exit, one-line messages, files."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_iaa.data import (
    LAYOUTS,
    Dataset,
    atomic_write_bytes,
    detect_layout,
    has_manifest_columns,
    open_dataset,
)
from napari_iaa.errors import ConfigError, DatasetError

__all__ = [
    "LAYOUT_CHOICES",
    "PROG",
    "UNIT_CHOICES",
    "UNIT_LAYOUTS",
    "Parser",
    "UsageError",
    "add_unit_argument",
    "atomic_write_text",
    "check_not_input",
    "check_writable_target",
    "err",
    "one_line",
    "open_for_cli",
    "progress_bar",
    "warn",
]

PROG = "napari-iaa"
LAYOUT_CHOICES = ["lidc", "imapp", "manifest", "folders"]
#: what a case is (``--unit``): one slice, or one lesion stacked from its slices
UNIT_CHOICES = sorted({u for r in LAYOUTS.values() for u in r.units})
#: layouts that offer the choice; the command line keeps ``slice`` as their default
#: (scripts rely on one row per slice), whatever the dock opens by default
UNIT_LAYOUTS = {name: r.units for name, r in LAYOUTS.items() if r.units}


class UsageError(Exception):
    """Raised by the parser instead of exiting, so ``main`` can return 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors raise :class:`UsageError` instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Raise the usage error (one line, with a pointer to ``--help``)."""
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def one_line(message: str) -> str:
    """``message`` with every run of blanks and line breaks made one space."""
    return " ".join(str(message).split())


def err(message: str) -> None:
    """Print ``napari-iaa: error: <message>`` on stderr."""
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr)


def warn(message: str) -> None:
    """Print ``napari-iaa: warning: <message>`` on stderr."""
    print(f"{PROG}: warning: {one_line(message)}", file=sys.stderr)


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically, making its folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))


def check_writable_target(path: Path, what: str) -> None:
    """Refuse an output file that is a folder or whose folder does not exist."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder, not a file")
    if not parent.is_dir():
        raise ConfigError(f"{what} {path}: folder {parent} does not exist")


_METADATA_CSV_ENDINGS = ("seg_metadata.csv", "img_metadata.csv")  # the IMA++ layout's tables


def check_not_input(out: Path, ds: Dataset, dataset: Path, what: str) -> None:
    """Refuse an output file that is one of the data set's own files: an image, a mask,
    the manifest (given, or a CSV with the manifest columns beside the cases) or a
    metadata table. Writing there would overwrite an annotation or the index itself.
    """
    if not out.is_file():
        return
    target = out.resolve()
    if dataset.is_file() and dataset.resolve() == target:
        raise ConfigError(f"{what} {out} is the data set's own CSV; write the table elsewhere")
    if target.suffix.lower() == ".csv":
        root = ds.root.resolve()
        if target.parent in (root, root / "metadata"):
            if target.name.lower().endswith(_METADATA_CSV_ENDINGS):
                raise ConfigError(f"{what} {out} is a metadata table of the data set; "
                                  "write the table elsewhere")
            if has_manifest_columns(target):
                raise ConfigError(f"{what} {out} is the data set's manifest; write the table "
                                  "elsewhere")
    # a table is never an image or mask: a 10,000-case set's files are not resolved one by
    # one each time its scores are written again
    if target.suffix.lower() != ".csv" and any(
            Path(f).resolve() == target for e in ds.entries for f in e.files()):
        raise ConfigError(f"{what} {out} is an image or mask of the data set; it is never "
                          "overwritten")


def progress_bar(total: int, unit: str, desc: str, show: bool
                 ) -> tuple[Any, Callable[[int, int], None] | None]:
    """A tqdm bar on stderr when it is a terminal and ``show``; and its callback."""
    if not (show and sys.stderr.isatty()):
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, leave=False)

    def progress(done: int, n: int) -> None:
        bar.update(done - bar.n)

    return bar, progress


def add_unit_argument(p: argparse.ArgumentParser) -> None:
    """Add ``--unit slice|nodule`` (default: slice where the layout offers the choice)."""
    p.add_argument("--unit", choices=UNIT_CHOICES, default=None,
                   help="unit of review where the layout offers the choice (LIDC): one case "
                   "per slice (default) or per nodule (its slices stacked into one volume, "
                   "id <patient>/<nodule>); other layouts have one unit and refuse this option")


def open_for_cli(path: Path, layout: str | None, unit: str | None) -> Dataset:
    """Open ``path`` as the command line does: ``unit`` checked against the layout.

    Raises
    ------
    DatasetError
        ``path`` does not exist or is no data set.
    ConfigError
        ``unit`` given for a layout that has no choice of unit.
    """
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    name = layout or detect_layout(path)
    units = UNIT_LAYOUTS.get(name)
    if units is None:
        if unit is not None:
            raise ConfigError(
                f"--unit {unit}: {path} is in the {name} layout, which has one case per "
                f"image and no choice of unit (--unit applies to the "
                f"{', '.join(UNIT_LAYOUTS)} layout)")
        return open_dataset(path, layout=layout)
    return open_dataset(path, layout=layout, unit=unit or units[0])
