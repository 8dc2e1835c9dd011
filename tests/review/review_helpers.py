"""Helpers of the review-store tests (imported by them)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def raw_rows(path: Path, sql: str) -> list[tuple]:
    """Rows straight from the SQLite file (bypassing the store)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def sha_tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` outside hidden folders, by relative path."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            out[rel.as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def child_env() -> dict[str, str]:
    """Environment for a child Python: the project importable, one thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env
