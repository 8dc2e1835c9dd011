"""Store shipped float32 models as float16 only where their test metrics do not change.

    python scripts/check_float16.py --data DATA [--max-cases N] [--apply] NAME [NAME ...]

For each NAME in sample_data/models: writes a float16 copy to a temporary folder
(``training.export.ship(half=True)``: same card, ``extra.stored_dtype`` and the weights'
SHA-256 updated), evaluates both on the test split recorded in the card
(``training.evaluate``) and compares every numeric metric rounded to 4 decimals. With
``--apply`` a copy whose metrics all agree replaces the shipped one; any other model is
left untouched. Exit code 1 when a model's metrics differ.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from napari_iaa.data.sample import bundled_root
from training.evaluate import evaluate_checkpoint
from training.export import ship


def _numbers(d: Any, prefix: str = "") -> dict[str, float]:
    """Every finite number in a nested metrics dict, by dotted key (lists by index)."""
    out: dict[str, float] = {}
    items = d.items() if isinstance(d, dict) else enumerate(d) if isinstance(d, list) else ()
    for k, v in items:
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            if math.isfinite(v):
                out[key] = float(v)
        else:
            out.update(_numbers(v, key))
    return out


def compare(name: str, models: Path, data: str, max_cases: int | None,
            cache: str | None) -> dict[str, bytes] | None:
    """Evaluate NAME and its float16 copy; print the differences.

    Returns the float16 copy's files (suffix -> bytes) when no metric differs, else None.
    """
    with tempfile.TemporaryDirectory() as tmp:
        ship([name], models, tmp, half=True)
        kw = {"split": "test", "max_cases": max_cases, "device": "cpu", "workers": 0,
              "cache_dir": cache}
        full = _numbers(evaluate_checkpoint(models / f"{name}.json", data, **kw))
        half = _numbers(evaluate_checkpoint(Path(tmp) / f"{name}.json", data, **kw))
        diff = {k: (full[k], half.get(k)) for k in full
                if half.get(k) is None or round(full[k], 4) != round(half[k], 4)}
        print(f"{name}: {len(full)} numbers compared, {len(diff)} differ at 4 decimals")
        for k, (a, b) in sorted(diff.items())[:20]:
            print(f"  {k}: float32 {a!r} float16 {b!r}")
        if diff:
            return None
        return {s: (Path(tmp) / f"{name}{s}").read_bytes() for s in (".safetensors", ".json")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the data set the models' cards were split on")
    ap.add_argument("--max-cases", type=int, default=None)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--models", default=str(bundled_root() / "models"))
    ap.add_argument("--apply", action="store_true", help="replace the models whose metrics agree")
    ap.add_argument("names", nargs="+")
    a = ap.parse_args(argv)
    models = Path(a.models)
    ok = {n: compare(n, models, a.data, a.max_cases, a.cache_dir) for n in a.names}
    if a.apply:
        for n, files in ok.items():
            if files is None:
                continue
            for suffix, data in files.items():  # weights first: the card names their hash
                tmp = models / f".{n}{suffix}.tmp"
                tmp.write_bytes(data)
                tmp.replace(models / f"{n}{suffix}")
            print(f"{n}: float16 copy shipped")
    return 0 if all(v is not None for v in ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
