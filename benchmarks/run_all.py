"""Run every benchmark, print their tables and a summary against the targets.

    python benchmarks/run_all.py [--quick] [--only tracker,score,...]

Each benchmark runs in its own process (``benchmarks/bench_<name>.py``) and writes
``benchmarks/results/<name>.json``; this script then writes ``benchmarks/results/summary.md``
(the table BENCHMARKS.md quotes). Full run: under 15 minutes on 2 cores once the cached
synthetic data exist; ``--quick``: under 2 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, fmt_ratio, fmt_time, machine, table

BENCHES = ["tracker", "score", "inference", "training", "gui", "gui_table", "gui_case",
           "gui_predictions", "gui_training"]
HERE = Path(__file__).resolve().parent


QUICK = False


def _load(name: str) -> dict | None:
    p = RESULTS_DIR / f"{name}{'-quick' if QUICK else ''}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def summary_rows() -> list[dict[str, str]]:
    """One row per target: figure, baseline, ratio, target, verdict."""
    rows = []
    tr = _load("tracker")
    if tr and tr.get("targets"):
        t = tr["targets"]
        rows.append({"what": f"stroke via update() (pixel lists), 15 x 6000x4000 (worst radius {t['stroke_15x6000x4000_radius']} px)",
                     "figure": fmt_time(t["stroke_15x6000x4000_median_s"]), "baseline": "-",
                     "ratio": "-", "target": "< 1 ms", "met": "yes" if t["stroke_under_1ms"] else "NO"})
        if "region_stroke_15x6000x4000_median_s" in t:
            rows.append({"what": "stroke via update_region (napari >= 0.8 paint payload), 15 x 6000x4000, worst radius",
                         "figure": fmt_time(t["region_stroke_15x6000x4000_median_s"]),
                         "baseline": "(a) numpy all pairs", "ratio": fmt_ratio(t["region_speedup_vs_numpy_min"]),
                         "target": "< 1 ms, >= 500x",
                         "met": "yes" if t["region_stroke_under_1ms"] and t["region_speedup_at_least_500x"] else "NO"})
        rows.append({"what": "stroke via update() vs recomputing all pairs, 15 x 6000x4000 (worst radius)",
                     "figure": "", "baseline": "(a) numpy all pairs",
                     "ratio": fmt_ratio(t["stroke_speedup_vs_numpy_min"]), "target": ">= 500x",
                     "met": "yes" if t["stroke_speedup_at_least_500x"] else "NO"})
        big = next(r for r in tr["full_recompute"] if r["size"] == "6000x4000" and r["annotators"] == 15)
        one = big.get("tracker_recompute_1_thread")
        rows.append({"what": "tracker full recompute, 15 x 6000x4000"
                             + (f" ({big.get('recompute_threads', '?')} threads; on 1 thread "
                                f"{fmt_time(one['median_s'])} = "
                                f"{fmt_ratio(big['recompute_1_thread_vs_read_once'])})" if one else ""),
                     "figure": fmt_time(big["tracker_recompute"]["median_s"]),
                     "baseline": f"(c) read once {fmt_time(big['read_once']['median_s'])}",
                     "ratio": fmt_ratio(t["recompute_vs_read_once_15x6000x4000"]), "target": "<= 1.5x",
                     "met": "yes" if t["recompute_within_1_5x"] else "NO"})
        mem = t.get("memory_per_px_per_annotator")
        rows.append({"what": "tracker memory beyond the masks", "figure":
                     f"{mem:.4f} B/px/annotator" if mem is not None else "-", "baseline": "masks: 1 B/px/annotator",
                     "ratio": "-", "target": "(report)", "met": "-"})
    elif tr:
        rows.append({"what": "live agreement", "figure": "not measured", "baseline": "-", "ratio": "-",
                     "target": "", "met": "-"})
    sc = _load("score")
    if sc:
        for d in sc.get("datasets", []):
            surface = (f"; with HD95/ASSD (the default) {fmt_time(d['score_surface_s'])}"
                       if "score_surface_s" in d else "")
            rows.append({"what": f"score --no-surface {d['dataset']} ({d['cases']} cases)",
                         "figure": f"{d['score_cases_per_s']:.0f} cases/s ({fmt_time(d['score_s'])}); "
                                   f"2 workers {d['score_workers2_cases_per_s']:.0f}/s{surface}",
                         "baseline": f"skimage+numpy loop {d['baseline_cases_per_s']:.0f}/s",
                         "ratio": f"{fmt_ratio(d['speedup_vs_baseline'])} / {fmt_ratio(d['speedup_workers2_vs_baseline'])}",
                         "target": "(report)", "met": "-"})
        for n in sc.get("notes", []):
            rows.append({"what": "score", "figure": n, "baseline": "-", "ratio": "-", "target": "", "met": "-"})
    for name in ("inference", "training", "gui", "gui_table", "gui_case", "gui_predictions",
                 "gui_training"):
        r = _load(name)
        if r is None:
            continue
        for row in r.get("summary", []) or []:
            rows.append(row)
        if r.get("status") == "not measured":
            rows.append({"what": name, "figure": f"not yet measured: {r.get('reason')}", "baseline": "-",
                         "ratio": "-", "target": r.get("target", ""), "met": "-"})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes and few repeats (< 2 min)")
    ap.add_argument("--only", default=None, help="comma-separated subset of " + ",".join(BENCHES))
    args = ap.parse_args(argv)
    global QUICK
    QUICK = args.quick
    names = [n.strip() for n in args.only.split(",")] if args.only else BENCHES
    t_all = time.perf_counter()
    status = {}
    for name in names:
        script = HERE / f"bench_{name}.py"
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        print(f"\n===== {name}: {' '.join(Path(c).name if i < 2 else c for i, c in enumerate(cmd))}", flush=True)
        t = time.perf_counter()
        rc = subprocess.run(cmd, cwd=HERE.parent).returncode
        status[name] = (rc, time.perf_counter() - t)
        print(f"===== {name}: exit {rc} in {time.perf_counter() - t:.0f} s", flush=True)
    total = time.perf_counter() - t_all
    rows = summary_rows()
    m = machine()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "-"
    head = (f"Machine: {m['cpu']}, {m['cores']} cores (load average at the end {load}), {m['ram_gb']} GB RAM; Python {m['python']}, "
            f"numpy {m['numpy']}, torch {m.get('torch', '-')}\n"
            f"Command: python benchmarks/run_all.py{' --quick' if args.quick else ''}"
            f"{' --only ' + args.only if args.only else ''} "
            f"({total / 60:.1f} min; " + ", ".join(f"{k} {v[1]:.0f} s" for k, v in status.items()) + ")")
    text = head + "\n\n" + table(rows, ["what", "figure", "baseline", "ratio", "target", "met"]) if rows else head
    print("\n===== summary\n" + text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / ("summary-quick.md" if args.quick else "summary.md")).write_text(text + "\n")
    return 0 if all(rc == 0 for rc, _ in status.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
