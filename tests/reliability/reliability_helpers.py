"""Helpers of the cross-cutting reliability suite (imported by its tests and conftest).

The suite talks to the public entry points only: ``napari_iaa.cli.main``,
``napari_iaa.data.open_dataset``, ``ReviewWidget``, ``load_checkpoint`` / ``ModelRegistry``,
``napari_iaa.predict`` and ``training.fit``.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

_ROOT = str(Path(__file__).resolve().parents[2])
PROJECT_ROOT = Path(_ROOT)
PYTHON = sys.executable


# ----------------------------------------------------------------------------- kills
# Source for the killed children (run with ``python -c``): ``kill_at_fraction(frac, dry,
# real)`` counts the profile events of ``dry()`` (the same work on a scratch copy), then
# runs ``real()`` and SIGKILLs the process at event ``frac`` x that count.
KILL_AT_FRACTION = """
import os as _os, signal as _signal, sys as _sys

def kill_at_fraction(frac, dry, real):
    n = [0]
    def count(frame, event, a):
        n[0] += 1
    _sys.setprofile(count)
    dry()
    _sys.setprofile(None)
    kill_at = max(1, int(float(frac) * n[0]))
    seen = [0]
    def killer(frame, event, a):
        seen[0] += 1
        if seen[0] >= kill_at:
            _os.kill(_os.getpid(), _signal.SIGKILL)
    print("events", n[0], "kill at", kill_at, flush=True)
    _sys.setprofile(killer)
    real()
    _sys.setprofile(None)
"""


# ----------------------------------------------------------------------------- files
def write_png(path: Path, arr: np.ndarray) -> Path:
    """Write ``arr`` as PNG with PIL (bool -> 0/255), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.asarray(arr)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    Image.fromarray(a).save(path)
    return path


def disk(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    """Boolean disk."""
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_huge_png(path: Path, width: int = 20000, height: int = 20000, bit_depth: int = 8) -> Path:
    """A *valid* grey PNG of ``width x height`` (all zero), written without allocating it.

    Decoding it would need ``width * height`` bytes (400 MB at 20000 x 20000), so a reader
    that does not refuse it from the header shows up as a jump in peak memory.
    """
    row_bytes = (width * bit_depth + 7) // 8
    comp = zlib.compressobj(1)
    block_rows = 200
    block = (b"\x00" * (row_bytes + 1)) * block_rows
    parts = []
    done = 0
    while done < height:
        n = min(block_rows, height - done)
        parts.append(comp.compress(block if n == block_rows else block[: n * (row_bytes + 1)]))
        done += n
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def truncated_png(path: Path, shape: tuple[int, int] = (48, 48)) -> Path:
    """A PNG cut in the middle of its pixel data."""
    rng = np.random.default_rng(0)
    write_png(path, (rng.random(shape) > 0.5).astype(np.uint8) * 255)
    raw = Path(path).read_bytes()
    Path(path).write_bytes(raw[: len(raw) // 2])
    return Path(path)


def sha_tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (relative path -> digest)."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def case_folder(root: Path, case: str, image: np.ndarray, masks: dict[str, np.ndarray | Callable]) -> Path:
    """``<root>/<case>/image.png`` + one file per mask (arrays -> PNG; callables write)."""
    d = Path(root) / case
    d.mkdir(parents=True, exist_ok=True)
    write_png(d / "image.png", image)
    for name, m in masks.items():
        target = d / (name if "." in name else f"{name}.png")
        if callable(m):
            m(target)
        elif target.suffix == ".npy":
            np.save(target, m)
        else:
            write_png(target, m)
    return d


# ----------------------------------------------------------------------------- CLI
def read_score_csv(path: Path):
    """The ``napari-iaa score`` table with ids as strings."""
    import pandas as pd

    return pd.read_csv(path, dtype={"case_id": str, "annotators": str, "group": str})


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python: project importable, one thread, no display."""
    env = dict(os.environ)
    env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env
