"""Multi-task (diagnosis + IAA) vs diagnosis-only over seeds: mean +- sd and the paired gain.

    python scripts/compare_mtl.py RUNS_DIR [--seeds 0 1 2]

Reads ``RUNS_DIR/mtl-w1-s<seed>.metrics.json`` (multi-task, ``--iaa-weight 1``) and
``RUNS_DIR/mtl-w0-s<seed>.metrics.json`` (diagnosis only, ``--iaa-weight 0``), as written by
the loop in docs/training.md, and prints a Markdown table: balanced accuracy and AUROC
of the diagnosis on each seed's test lesions, mean +- sample sd over seeds, and the gain
(multi-task minus diagnosis-only) per seed, paired on the same split.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def _load(folder: Path, w: int, seed: int) -> dict:
    path = folder / f"mtl-w{w}-s{seed}.metrics.json"
    if not path.is_file():
        raise SystemExit(f"{path}: missing (run the loop in docs/training.md first)")
    return json.loads(path.read_text(encoding="utf-8"))


def _ms(vals: list[float]) -> str:
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):.3f} +- {sd:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a = ap.parse_args(argv)
    cols = {"balanced_accuracy": "balanced accuracy", "auroc": "AUROC"}
    rows = {w: {k: [] for k in cols} for w in (1, 0)}
    mae = {w: [] for w in (1, 0)}
    for seed in a.seeds:
        for w in (1, 0):
            m = _load(a.runs, w, seed)
            for k in cols:
                rows[w][k].append(float(m["diagnosis"][k]))
            mae[w].append(float(m["iaa"]["mae"]))
    print("| model | " + " | ".join(cols.values()) + " | IAA MAE | per seed (balanced accuracy) |")
    print("|---|" + "---|" * (len(cols) + 2))
    for w, label in ((1, "diagnosis + IAA (multi-task)"), (0, "diagnosis only")):
        per = ", ".join(f"{v:.3f}" for v in rows[w]["balanced_accuracy"])
        print(f"| {label} | " + " | ".join(_ms(rows[w][k]) for k in cols)
              + f" | {_ms(mae[w])} | {per} |")
    gain = {k: [x - y for x, y in zip(rows[1][k], rows[0][k])] for k in cols}
    per = ", ".join(f"{v:+.3f}" for v in gain["balanced_accuracy"])
    print("| gain (paired, same lesions) | " + " | ".join(_ms(gain[k]) for k in cols)
          + f" | - | {per} |")
    print(f"\nseeds {a.seeds}; the diagnosis-only model's IAA head is untrained (its MAE is "
          "not a result)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
