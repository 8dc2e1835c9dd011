"""Event-loop gaps on a timeline, with what ran in them (shared by the ``timeline_*.py``
diagnoses; not a benchmark).

:class:`Timeline` wraps a :class:`bench_gui.StallProbe`: each probe tick also records the
GUI thread's CPU time (``time.thread_time``) and the whole process's (``time.process_time``).
:meth:`Timeline.run` measures one action and prints, for every gap of the 1 ms probe over
``min_gap_s``, its wall time, the GUI thread's CPU time in it (nearly blind to other
processes' load: a wall time well above it means the GUI thread waited, for a core or for
the GIL), the other threads' CPU time in it (the process's minus the GUI thread's), the
garbage collections in it and the traced callbacks that ran in it (start in ms after the
gap's start, own duration). :func:`trace` puts a class's methods on the timeline.
"""

from __future__ import annotations

import functools
import gc
import importlib
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: (start, end, name) of the traced calls and of the garbage collections
Log = list[tuple[float, float, str]]


def trace(log: Log, targets: Iterable[tuple[str, str | None, list[str]]]) -> None:
    """Wrap ``module.Class.method`` for each ``(module, class, methods)`` to log its calls
    (``class`` None: the module's functions, for callers that look them up at call time).
    Calls in any thread are logged."""
    for module, cls_name, names in targets:
        mod = importlib.import_module(module)
        cls = mod if cls_name is None else getattr(mod, cls_name)
        cls_name = cls_name or module.rsplit(".", 1)[-1]
        for name in names:
            if not hasattr(cls, name):
                continue
            f = getattr(cls, name)

            def traced(*a, _f=f, _n=f"{cls_name}.{name}", **k):
                t = time.perf_counter()
                try:
                    return _f(*a, **k)
                finally:
                    log.append((t, time.perf_counter(), _n))

            setattr(cls, name, functools.wraps(f)(traced))


def thread_cpu() -> dict[str, float]:
    """CPU seconds of this process's threads so far, by thread name (Linux; else empty):
    the GUI thread is ``main``, Qt's pool threads ``Thread (pooled)``, Mesa's software GL
    ``llvmpipe-N``; threads of one name are summed."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    main = str(os.getpid())
    for task in Path("/proc/self/task").glob("*"):
        try:
            name = "main" if task.name == main else (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


class Timeline:
    """Gaps of ``probe`` (a ``StallProbe``) with CPU times, collections and traced calls."""

    def __init__(self, probe, min_gap_s: float = 0.015) -> None:
        self.probe = probe
        self.min_gap_s = min_gap_s
        self.log: Log = []
        self.gui_cpu: list[float] = []
        self.proc_cpu: list[float] = []
        self._gc_start: dict[int, float] = {}
        probe.timer.timeout.connect(self._tick)
        gc.callbacks.append(self._on_gc)

    def _tick(self) -> None:
        self.gui_cpu.append(time.thread_time())
        self.proc_cpu.append(time.process_time())

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start[info["generation"]] = time.perf_counter()
        else:
            t0 = self._gc_start.pop(info["generation"], None)
            if t0 is not None:
                self.log.append((t0, time.perf_counter(), f"gc gen{info['generation']}"))

    def run(self, label: str, action: Callable[[], None], until: Callable[[], bool] | None = None,
            settle_s: float = 1.0, timeout_s: float = 300.0) -> dict:
        """Measure ``action`` with the probe and print its gaps; the probe's record, plus
        ``gaps`` (a list of dicts: ``at_s``, ``wall_s``, ``gui_cpu_s``, ``other_cpu_s``,
        ``inside``)."""
        self.log.clear()
        self.gui_cpu.clear()
        self.proc_cpu.clear()
        c0, p0, t0 = time.thread_time(), time.process_time(), time.perf_counter()
        threads0 = thread_cpu()
        r = self.probe.measure(action, settle_s=settle_s, until=until, timeout_s=timeout_s)
        threads = {k: v - threads0.get(k, 0.0) for k, v in thread_cpu().items()}
        n = len(self.probe.ticks)
        ticks = np.array([t0, *self.probe.ticks])
        walls = np.diff(ticks)
        gui = np.diff(np.array([c0, *self.gui_cpu[:n]]))
        proc = np.diff(np.array([p0, *self.proc_cpu[:n]]))
        total_gui = (self.gui_cpu[n - 1] - c0) if n else 0.0
        total_proc = (self.proc_cpu[n - 1] - p0) if n else 0.0
        print(f"\n== {label}: longest stall {r['max_stall_s'] * 1e3:.0f} ms; {r['total_s']:.2f} s; "
              f"CPU: GUI thread {total_gui * 1e3:.0f} ms, other threads {(total_proc - total_gui) * 1e3:.0f} ms")
        print("  CPU by thread: " + ", ".join(f"{k} {v:.2f} s" for k, v in
                                             sorted(threads.items(), key=lambda kv: -kv[1]) if v >= 0.01))
        gaps = []
        for i in np.flatnonzero(walls > self.min_gap_s):
            a, b = ticks[i], ticks[i + 1]
            inside = [f"{name} {(e - s) * 1e3:.1f} ms @{(s - a) * 1e3:.0f}" for s, e, name in self.log
                      if s < b and e > a and e - s < 1.0]  # phases of a second or more: below
            other = proc[i] - gui[i]
            gaps.append({"at_s": float(a - t0), "wall_s": float(walls[i]), "gui_cpu_s": float(gui[i]),
                         "other_cpu_s": float(other), "inside": inside})
            print(f"  gap {walls[i] * 1e3:5.1f} ms (GUI CPU {gui[i] * 1e3:5.1f}, other threads "
                  f"{other * 1e3:5.1f} ms) at {a - t0:6.3f} s: {', '.join(inside)}")
        long = [f"{name} @{s - t0:.2f} s for {(e - s) * 1e3:.0f} ms" for s, e, name in self.log
                if e - s > 0.1 and not name.startswith("gc ")]
        if long:
            print(f"  calls over 100 ms: {'; '.join(long)}")
        sys.stdout.flush()
        return {**r, "gaps": gaps, "thread_cpu_s": threads}
