"""Shared helpers for the benchmark scripts: timing, machine description, tables, JSON.

Every figure is reported as an absolute time plus a ratio against a named baseline
measured in the same run. Results go to ``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
PROJECT_ROOT = BENCH_DIR.parent


def cache_dir() -> Path:
    """Where generated benchmark data is kept between runs (outside the repository)."""
    env = os.environ.get("NAPARI_IAA_BENCH_CACHE")
    if env:
        d = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        d = Path(base) / "napari-iaa-bench"
    d.mkdir(parents=True, exist_ok=True)
    return d


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, Python and library versions."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    import numpy

    info = {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gb": ram_gb,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }
    from importlib.metadata import PackageNotFoundError, version

    for mod, dist in (("torch", "torch"), ("torchmetrics", "torchmetrics"), ("napari", "napari"),
                      ("skimage", "scikit-image"), ("pandas", "pandas"), ("timm", "timm")):
        with contextlib.suppress(PackageNotFoundError):
            info[mod] = version(dist)  # no import: napari takes seconds to import
    return info


def timeit(fn: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None,
           warmup: int = 1) -> dict[str, float]:
    """Median/min/max wall time of ``fn`` over ``repeats`` runs (``setup`` untimed)."""
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "repeats": repeats}


def timeit_pair(fn_a: Callable[[], Any], fn_b: Callable[[], Any], repeats: int,
                warmup: int = 1) -> tuple[dict[str, float], dict[str, float]]:
    """Time two contenders alternately (a, b, a, b, ...) so load drift hits both alike."""
    for _ in range(warmup):
        fn_a()
        fn_b()
    ta, tb = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn_a()
        t1 = time.perf_counter()
        fn_b()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    stat = lambda t: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t),  # noqa: E731
                      "repeats": repeats}
    return stat(ta), stat(tb)


def fmt_time(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(x: float | None) -> str:
    if x is None or x != x:
        return "-"
    if x >= 100:
        return f"{x:,.0f}x"
    return f"{x:.2f}x"


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table (also valid Markdown)."""
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"  # noqa: E731
    out = [line(list(columns)), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` with the machine description added."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    if payload.get("quick"):
        name = f"{name}-quick"  # never overwrite the full run's figures
    payload = {"benchmark": name, "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "command": " ".join([Path(sys.executable).name] + sys.argv),
               "machine": machine(), **payload}
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_default) + "\n")
    os.replace(tmp, path)
    return path


def _default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def not_measured(name: str, rows: list[dict[str, str]], reason: str) -> int:
    """Record a benchmark whose dependency is missing: a clear row, exit 0."""
    print(f"{name}: not yet measured: {reason}")
    print(table(rows, list(rows[0].keys())))
    write_results(name, {"status": "not measured", "reason": reason, "rows": rows})
    return 0


# ----------------------------------------------------------------------------- GUI runs
def run_marked_child(script: str, args: list[str], mark: str, timeout_s: float = 900) -> dict:
    """Run ``script args`` in a fresh process; its result is the JSON on the line of its
    output that starts with ``mark`` (RuntimeError with the output's end when none)."""
    import subprocess

    proc = subprocess.run([sys.executable, str(Path(script).resolve()), *args],
                          capture_output=True, text=True, timeout=timeout_s)
    for line in proc.stdout.splitlines():
        if line.startswith(mark):
            return json.loads(line[len(mark):])
    raise RuntimeError(f"{' '.join(args)}: no result\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}")


def display_or_rerun(script: str, argv: list[str] | None, name: str, what: str) -> int | None:
    """None when there is a display. Without one: ``script`` re-run under ``xvfb-run -a``
    (its exit code), or, without xvfb-run, a "not measured" result for ``name`` (``what``)."""
    if not _no_display():
        return None
    rc = rerun_under_xvfb(script, argv)
    if rc is not None:
        return rc
    return not_measured(name, [{"what": what, "status": "not measured"}], "needs a display or xvfb-run")


def rerun_under_xvfb(script: str, argv: list[str] | None) -> int | None:
    """Run ``script`` again under ``xvfb-run -a`` (its exit code); None where that cannot be."""
    import shutil
    import subprocess

    if not shutil.which("xvfb-run") or os.environ.get("NAPARI_IAA_BENCH_IN_XVFB"):
        return None
    env = dict(os.environ, NAPARI_IAA_BENCH_IN_XVFB="1")
    cmd = ["xvfb-run", "-a", sys.executable, str(Path(script).resolve())]
    return subprocess.run(cmd + list(argv or sys.argv[1:]), env=env).returncode


def _no_display() -> bool:
    return sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
