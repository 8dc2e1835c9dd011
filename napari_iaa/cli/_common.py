"""What every sub-command shares: the parser that does not exit, one-line messages, files."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_iaa.data import atomic_write_bytes
from napari_iaa.errors import ConfigError

__all__ = [
    "LAYOUT_CHOICES",
    "PROG",
    "Parser",
    "UsageError",
    "atomic_write_text",
    "check_writable_target",
    "err",
    "one_line",
    "progress_bar",
    "warn",
]

PROG = "napari-iaa"
LAYOUT_CHOICES = ["lidc", "imapp", "manifest", "folders"]


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
