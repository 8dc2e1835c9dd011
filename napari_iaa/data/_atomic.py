"""The last two steps of every atomic write: rename into place, make it durable.

The finished temporary file is renamed onto the target (and removed if that fails), then
the folder is fsynced. Used by ``writers.py`` and ``volumes.py``.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename inside ``folder`` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_into(tmp: Path, path: Path) -> Path:
    """Rename ``tmp`` onto ``path`` and fsync the folder; ``tmp`` is removed on failure."""
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(Path(path).parent)
    return Path(path)
