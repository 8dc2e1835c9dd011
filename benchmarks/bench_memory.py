"""Under load: peak memory and time of scoring 10,000 cases, and the review dock's table.

1. Writes (once, cached) a manifest data set of N synthetic cases (default 10,000): a
   64 x 64 grey image and 3 annotators' masks (jittered disks) per case, written directly
   with numpy + PIL (the dermoscopy generator is too slow for this size).
2. Runs ``napari-iaa score`` (``napari_iaa.cli.main``) on the first 1,000 and on all N
   cases, each in a fresh child process, and reports wall time, cases per second, peak
   RSS (``resource.getrusage``) and, in a second run, the peak of Python/numpy allocations
   (``tracemalloc``). Bounded memory = the peak barely moves between 1,000 and N cases.
3. The review dock's data-set table (``napari_iaa.widgets.DatasetPanel``, offscreen Qt):
   time to fill it with N rows, sort by IAA, filter by text, change the flag threshold, list
   flagged cases, and score all N cases through the panel (synchronous worker).

Standalone: ``python benchmarks/bench_memory.py [--n 10000] [--data DIR] [--no-gui]``.
Prints a table and writes ``benchmarks/results/memory.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "memory.json"
SIZE = 64
N_ANNOTATORS = 3


# ----------------------------------------------------------------------------- data
def make_dataset(root: Path, n: int, seed: int = 0) -> Path:
    """A manifest data set of ``n`` cases (cached: reused when complete)."""
    import numpy as np
    from PIL import Image

    done = root / f".complete-{n}"
    manifest = root / "manifest.csv"
    if done.is_file() and manifest.is_file():
        return manifest
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    lines = ["case_id,image,annotator,mask,diagnosis,group"]
    t0 = time.perf_counter()
    for i in range(n):
        cid = f"c{i:05d}"
        cy, cx, r = rng.uniform(20, 44), rng.uniform(20, 44), rng.uniform(6, 16)
        img = (rng.random((SIZE, SIZE)) * 60 + 100 * ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r)).astype(np.uint8)
        Image.fromarray(img).save(root / "images" / f"{cid}.png", compress_level=1)
        diag = "malignant" if i % 3 == 0 else "benign"
        for a in range(N_ANNOTATORS):
            jy, jx, jr = rng.normal(0, 1.5, 3)
            m = ((yy - cy - jy) ** 2 + (xx - cx - jx) ** 2 <= (r + jr) ** 2).astype(np.uint8) * 255
            name = f"{cid}_A{a}.png"
            Image.fromarray(m).save(root / "masks" / name, compress_level=1)
            lines.append(f"{cid},images/{cid}.png,A{a},masks/{name},{diag},p{i // 4}")
        if (i + 1) % 1000 == 0:
            print(f"  wrote {i + 1}/{n} cases ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    head = root / "manifest-1000.csv"
    head.write_text("\n".join(lines[: 1 + 1000 * N_ANNOTATORS]) + "\n", encoding="utf-8")
    done.write_text("ok\n")
    return manifest


# ----------------------------------------------------------------------------- children
def child_score(manifest: str, out_csv: str, trace: bool) -> dict:
    """In a fresh process: ``napari-iaa score`` and its peak memory."""
    import tracemalloc

    from napari_iaa.cli import main

    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    sink = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(sink):
        code = main(["score", manifest, "--out", out_csv, "-q"])
    wall = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = 0
    if code == 0:
        with open(out_csv, encoding="utf-8") as fh:
            rows = sum(1 for _ in fh) - 1
    return {"exit_code": code, "wall_s": wall, "rows": rows, "rss_after_import_mb": base_kb / 1024,
            "peak_rss_mb": peak_kb / 1024, "tracemalloc_peak_mb": None if traced is None else traced / 2**20,
            "stderr_tail": sink.getvalue()[-500:]}


def child_table(manifest: str) -> dict:
    """In a fresh process with an offscreen Qt: the data-set table at full size."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["NAPARI_IAA_NO_THREADS"] = "1"  # the panel's worker runs synchronously
    import pandas as pd
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from napari_iaa.data import open_dataset
    from napari_iaa.widgets import DatasetPanel

    out: dict = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        value = fn()
        app.processEvents()
        out[name] = time.perf_counter() - t0
        return value

    ds = timed("open_dataset_s", lambda: open_dataset(manifest))
    panel = DatasetPanel()
    panel.resize(800, 600)
    panel.show()
    timed("set_dataset_s", lambda: panel.set_dataset(ds, compute=False))
    out["rows"] = panel.model.rowCount()
    # fill the agreement columns as scoring would (from a score table), one update per case
    rng = __import__("numpy").random.default_rng(0)
    values = rng.uniform(0.4, 1.0, len(ds.ids))

    def update_all():
        for cid, v in zip(ds.ids, values):
            panel.model.update_case(cid, {"IAA": float(v), "min pair": float(v) - 0.05, "lowest pair": "A0-A1"})

    timed("update_all_rows_s", update_all)
    col = panel.model.columns.index("IAA")
    timed("sort_by_iaa_s", lambda: panel.view.sortByColumn(col, Qt.AscendingOrder))
    out["first_after_sort"] = panel.visible_ids()[0]
    timed("sort_by_case_id_desc_s", lambda: panel.view.sortByColumn(0, Qt.DescendingOrder))
    timed("filter_text_s", lambda: panel.filter_edit.setText("c012"))
    out["rows_after_filter"] = panel.proxy.rowCount()
    timed("filter_metadata_s", lambda: panel.filter_edit.setText("malignant"))
    out["rows_malignant"] = panel.proxy.rowCount()
    timed("clear_filter_s", lambda: panel.filter_edit.setText(""))
    timed("set_threshold_s", lambda: panel.set_threshold(0.8))
    flagged = timed("flagged_ids_s", panel.flagged_ids)
    out["flagged"] = len(flagged)
    timed("next_flagged_s", panel.next_flagged)
    # the real thing: score every case through the panel (worker run synchronously)
    t0 = time.perf_counter()
    panel.compute()
    app.processEvents()
    out["score_all_in_panel_s"] = time.perf_counter() - t0
    df = panel.model.frame()
    out["scored_rows"] = int(pd.to_numeric(df["IAA"], errors="coerce").notna().sum())
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    panel.close()
    return out


def run_child(args: list[str], timeout: float = 3600) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE.parent) + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", *args],
                         capture_output=True, text=True, env=env, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"child {args} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- main
def _machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_gb"] = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return info


def _table(rows: list[dict], cols: list[str]) -> str:
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    w = [max([len(c)] + [len(x[i]) for x in cells]) for i, c in enumerate(cols)]
    fmt = lambda v: "| " + " | ".join(s.ljust(k) for s, k in zip(v, w)) + " |"  # noqa: E731
    return "\n".join([fmt(cols), "|" + "|".join("-" * (k + 2) for k in w) + "|", *map(fmt, cells)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000, help="cases (default 10000)")
    p.add_argument("--data", default=None, help="where the data set is written/reused "
                   "(default: $NAPARI_IAA_BENCH_CACHE or ~/.cache/napari-iaa-bench, memory-N)")
    p.add_argument("--no-gui", action="store_true", help="skip the table measurements")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        kind, *rest = a.child
        if kind == "score":
            result = child_score(rest[0], rest[1], rest[2] == "trace")
        else:
            result = child_table(rest[0])
        print(json.dumps(result))
        return 0

    base = Path(a.data) if a.data else Path(
        os.environ.get("NAPARI_IAA_BENCH_CACHE") or Path.home() / ".cache" / "napari-iaa-bench")
    root = base / f"memory-{a.n}" if not a.data else base
    print(f"data set: {root} ({a.n} cases of {SIZE}x{SIZE}, {N_ANNOTATORS} annotators)", file=sys.stderr)
    t0 = time.perf_counter()
    manifest = make_dataset(root, a.n)
    gen_s = time.perf_counter() - t0
    out_csv = str(root.parent / f".bench-memory-{os.getpid()}.csv")
    rows = []
    try:
        runs = [("1000 cases", root / "manifest-1000.csv")] if a.n > 1000 else []
        runs.append((f"{a.n} cases", manifest))
        for label, path in runs:
            r = run_child(["score", str(path), out_csv, "plain"])
            t = run_child(["score", str(path), out_csv, "trace"])
            rows.append({"run": f"score {label}", "cases": r["rows"], "wall_s": round(r["wall_s"], 2),
                         "cases_per_s": round(r["rows"] / r["wall_s"], 1),
                         "rss_after_import_mb": round(r["rss_after_import_mb"], 1),
                         "peak_rss_mb": round(r["peak_rss_mb"], 1),
                         "tracemalloc_peak_mb": round(t["tracemalloc_peak_mb"], 1),
                         "exit_code": r["exit_code"]})
    finally:
        Path(out_csv).unlink(missing_ok=True)
    print(_table(rows, ["run", "cases", "wall_s", "cases_per_s", "rss_after_import_mb", "peak_rss_mb",
                        "tracemalloc_peak_mb", "exit_code"]))
    growth = None
    if len(rows) == 2:
        growth = round((rows[1]["peak_rss_mb"] - rows[0]["peak_rss_mb"]) / ((rows[1]["cases"] - rows[0]["cases"]) / 1000), 2)
        print(f"peak RSS growth: {growth} MB per 1000 extra cases")
    table = None
    if not a.no_gui:
        try:
            table = run_child(["table", str(manifest)])
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            table = {"error": str(exc)[-1000:]}
        print()
        print(_table([{"measure": k, "value": (f"{v:.3f}" if isinstance(v, float) else v)}
                      for k, v in table.items()], ["measure", "value"]))
    payload = {"benchmark": "memory", "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": _machine(),
               "n_cases": a.n, "image_size": SIZE, "annotators": N_ANNOTATORS,
               "generate_s": round(gen_s, 1), "score": rows,
               "peak_rss_growth_mb_per_1000_cases": growth, "table": table}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, RESULTS)
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
