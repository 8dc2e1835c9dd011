"""One Markdown table of calibrate runs on the same test split (TwinTrack vs ordinal).

    python scripts/compare_calibration.py LABEL=RUN.metrics.json [LABEL=RUN.metrics.json ...]

Each file is what ``python -m training fit --task calibrate`` (or ``python -m training
twintrack``) wrote as ``<name>.metrics.json``: the uncalibrated map, isotonic and
temperature scaling on the test split. One row per (run, calibration), with the pooled
and the CURVAS numbers (``training.metrics.mhr_summary``). Runs compared in one table
must share the test split (same data, ``--seed``, fractions and ``--max-cases``); the
script refuses files whose test case counts differ.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = (("curvas_ece", "CURVAS ECE", 4), ("ece_pooled", "pooled ECE", 4),
           ("curvas_thresholded_dice", "CURVAS thr. Dice", 3),
           ("thresholded_dice_pooled", "pooled thr. Dice", 3), ("brier", "Brier", 4))


def rows(label: str, path: Path) -> tuple[int, list[str]]:
    """The test case count and the table rows of one calibrate run."""
    m = json.loads(path.read_text(encoding="utf-8"))
    summary = m.get("summary")
    if summary is None:
        raise SystemExit(f"{path}: no 'summary' (written before the CURVAS metrics); rerun calibrate")
    out = []
    for kind in ("uncalibrated", "isotonic", "temperature"):
        vals = summary[kind]
        cells = [f"{vals[k]:.{nd}f}" if vals.get(k) is not None else "n/a" for k, _, nd in COLUMNS]
        out.append(f"| {label} | {kind} | " + " | ".join(cells) + " |")
    return int(m["n_cases"]), out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    lines = ["| model | calibration | " + " | ".join(t for _, t, _ in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    counts = set()
    for arg in argv:
        label, _, path = arg.partition("=")
        n, r = rows(label, Path(path))
        counts.add(n)
        lines += r
    if len(counts) != 1:
        raise SystemExit(f"the runs were measured on different test splits ({sorted(counts)} cases)")
    print("\n".join(lines))
    print(f"\n{counts.pop()} test cases")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
