"""Scoring a data set in the review dock's table against ``napari-iaa score`` on the same data.

The review dock (``napari_iaa.widgets.ReviewWidget``, in a napari viewer) opens the LIDC
folder without loading a case, then its data-set table scores every case in a worker
(``DatasetPanel.compute``). Measured while it runs: the wall time until the table says it
is done and the event-loop gaps of a 1 ms timer, with the Qt event loop running as it
does for a user (``QEventLoop.exec_``: idle waits sleep, nothing spins). The baseline is
``napari-iaa score FOLDER --unit U --out X.csv -q`` in a fresh process on the same folder
and the same unit (both compute HD95/ASSD, their default), timed in the same run, the two
alternating. Target (issue 16): the table takes <= 1.3x the command line's time, with no
stall over 50 ms. The stalls are given at the run's start (the Score click: our set-up and
napari creating its activity-dock bar, which calls ``processEvents`` three times) and
later (the scored batches), each beside napari alone doing the same with one bar. The
viewer's window is 1280 x 900 in every run, the review dock shows its Data set tab (the
table repaints, as for a user watching it; ``--tab case`` as in the first three passes).

LIDC comes from ``NAPARI_IAA_LIDC_DIR`` or the archive in ``../shared/data`` (extracted
once into the benchmark cache, see ``bench_score.py``); without it the row says so.
``--patients K`` scores the first K patients (default: all 606 = 10,681 slices;
``--quick``: 20). ``--unit slice,nodule`` picks the units (the dock opens LIDC per nodule by
default, the command line per slice: each is compared with the command line in its unit).

    python benchmarks/bench_gui_table.py [--quick] [--patients K] [--unit slice,nodule] [--tab case]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    PROJECT_ROOT,
    display_or_rerun,
    fmt_ratio,
    fmt_time,
    not_measured,
    table,
    write_results,
)
from bench_score import lidc_root, lidc_subset

TARGET_RATIO = 1.3
TARGET_STALL_S = 0.05
#: the viewer's window (width, height) in every run
WINDOW_SIZE = (1280, 900)


def cli_score(root: Path, unit: str, out: Path) -> float:
    """Wall time of ``napari-iaa score`` in a fresh process (interpreter start excluded)."""
    code = (
        "import sys, time\n"
        "from napari_iaa.cli import main\n"
        "t = time.perf_counter()\n"
        f"rc = main(['score', {str(root)!r}, '--unit', {unit!r}, '--out', {str(out)!r}, '-q'])\n"
        "print('ELAPSED', time.perf_counter() - t)\n"
        "sys.exit(rc)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, check=False)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("ELAPSED")]
    if res.returncode != 0 or not line:
        raise RuntimeError(f"napari-iaa score failed ({res.returncode}): {res.stderr[-500:]}")
    return float(line[0].split()[1])


def table_score(app, panel) -> dict:
    """Score every case through the panel's worker; wall time and event-loop gaps."""
    from qtpy.QtCore import QEventLoop, QTimer

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(1)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    watch = None
    if os.environ.get("NAPARI_IAA_BENCH_STALLS"):  # where the GUI thread is in stalls
        from _stallwatch import StallWatch

        watch = StallWatch()
        timer.timeout.connect(watch.tick)
        watch.start()
        slots = _time_slots(panel)
        if _PAINTS.filter is None:
            _PAINTS.install(app)
    loop = QEventLoop()
    done: dict = {}

    def finished(ok: bool) -> None:
        done.update(t=time.perf_counter(), ok=ok)
        loop.quit()

    panel.scoring_finished.connect(finished)
    objects_before = _tracked_objects()
    # the census of the oldest generation (_GcPauses, ~400k objects) before the clock starts:
    # in the block it was charged to the first gap, the stall at the start
    with _GcPauses() as gc_pauses:
        timer.start()
        t0 = time.perf_counter()
        QTimer.singleShot(0, panel.compute)
        loop.exec_()
    timer.stop()
    objects_after = _tracked_objects()
    panel.scoring_finished.disconnect(finished)
    if watch is not None:
        watch.stop()
        watch.report()
        _PAINTS.report()
        print("longest GUI-thread calls:", {k: f"{max(v, default=0) * 1e3:.1f} ms (n={len(v)})"
                                            for k, v in slots.items() if v and max(v) > 0.005},
              file=sys.stderr)
    return {"elapsed_s": done["t"] - t0, "completed": bool(done["ok"]),
            **_gap_stats(np.array([t0, *ticks, done["t"]])), **gc_pauses.summary(t0),
            "gc_tracked_growth": objects_after - objects_before}


def _gc_line(rec: dict) -> str:
    """A run's garbage collections in words."""
    n = rec["gc_collections"]
    line = (f"collections {n[0]} / {n[1]} / {n[2]} (generation 0 / 1 / 2), "
            f"{rec['gc_promoted']:,} objects promoted to the oldest generation (it held "
            f"{rec['gc_oldest_at_start']:,})")
    if "gc_tracked_growth" in rec:
        line += f", GC-tracked objects {rec['gc_tracked_growth']:+,}"
    pauses = ", ".join(f"gen {g} {d * 1e3:.0f} ms" for _, g, d in rec["gc_pauses"])
    return line + (f"; pauses over 10 ms: {pauses}" if pauses else "")


def _tracked_objects() -> int:
    """Objects the garbage collector tracks now, after a generation-0 collection (which
    untracks the new tuples of plain values): their growth over a run is what it left."""
    import gc

    gc.collect(0)
    return len(gc.get_objects())


class _GcPauses(list):
    """Python's garbage collections over 10 ms while in the block (on any thread):
    ``(start, generation, seconds)``; a full collection holds the GIL, so it stalls the
    GUI thread too. Also counted: the collections of each generation and the objects
    promoted into the oldest one (the survivors of each generation-1 collection). CPython
    (3.8-3.12) runs a full collection once those promoted since the last one exceed a
    quarter of the oldest generation, so the promotions are what brings it on."""

    def __enter__(self) -> _GcPauses:
        import gc

        self._began: dict[str, float] = {}
        self.collections = [0, 0, 0]
        self.promoted = 0
        self.oldest = len(gc.get_objects(2))
        gc.callbacks.append(self._callback)
        return self

    def summary(self, t0: float) -> dict:
        """What a result row records: the long pauses (start after ``t0``, generation,
        seconds), the collections per generation, the objects promoted, the oldest
        generation's size at the start."""
        return {"gc_pauses": [(round(a - t0, 3), g, round(d, 4)) for a, g, d in self],
                "gc_collections": list(self.collections), "gc_promoted": self.promoted,
                "gc_oldest_at_start": self.oldest}

    def __exit__(self, *_exc: object) -> None:
        import gc

        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        import gc

        now = time.perf_counter()
        gen = info["generation"]
        if phase == "start":
            if gen == 1:  # generations 0 and 1, whose survivors go to the oldest
                self._began["young"] = len(gc.get_objects(0)) + len(gc.get_objects(1))
            self._began["t"] = time.perf_counter()
            return
        self.collections[gen] += 1
        if gen == 1 and "young" in self._began:
            self.promoted += self._began.pop("young") - info["collected"]
        if "t" in self._began and now - self._began["t"] > 0.01:
            self.append((self._began["t"], gen, now - self._began["t"]))


#: gaps that begin within this many seconds of a run's start count as its start (the Score
#: click: our set-up and napari creating its activity-dock bar); the first scored batch
#: comes 0.5 s (``jobs.BATCH_SECONDS``) after the processes start
START_S = 0.4


def _gap_stats(times: np.ndarray) -> dict:
    """Event-loop gaps between probe ticks ``times`` (the first: the run's start)."""
    gaps = np.diff(times)
    at = times[:-1] - times[0]
    longest = np.argsort(gaps)[::-1][:5]
    start, later = gaps[at < START_S], gaps[at >= START_S]
    return {"max_stall_s": float(gaps.max()),
            "start_stall_s": float(start.max(initial=0.0)),
            "run_stall_s": float(later.max(initial=0.0)),
            # the five longest: (seconds after the start, length)
            "longest_gaps": [(float(at[i]), float(gaps[i])) for i in longest],
            "p95_gap_s": float(np.percentile(gaps, 95)), "median_gap_s": float(np.median(gaps)),
            "ticks": len(times) - 2}


def progress_baseline(app, seconds: float, busy: bool) -> dict:
    """napari alone: one activity-dock progress bar created (on the first event-loop turn,
    as a table run creates its bar) and advanced every 0.5 s (as the table's run advances
    it) for ``seconds``, nothing of ours running; ``busy``: meanwhile a separate process
    spins one core, as the table's scoring process does. Event-loop gaps of the same 1 ms
    timer, the bar's creation counted in the start's."""
    from napari.utils import progress
    from qtpy.QtCore import QEventLoop, QTimer

    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(1)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    steps = int(seconds / 0.5)
    bars: list = []
    step = QTimer()
    step.setInterval(500)
    loop = QEventLoop()

    def advance() -> None:
        bars[0].update(1)
        if bars[0].n >= steps:
            loop.quit()

    step.timeout.connect(advance)
    with _GcPauses() as gc_pauses:  # its census before the clock starts, as for the table
        timer.start()
        t0 = time.perf_counter()
        QTimer.singleShot(0, lambda: (bars.append(progress(total=steps, desc="baseline")),
                                      step.start()))
        loop.exec_()
    t1 = time.perf_counter()
    timer.stop()
    step.stop()
    bars[0].close()
    if spin is not None:
        spin.kill()
        spin.wait()
    return {"busy_core": busy, "seconds": t1 - t0, **_gap_stats(np.array([t0, *ticks, t1])),
            **gc_pauses.summary(t0)}


_SLOT_TIMES: dict[str, list[float]] = {}


class _Paints:
    """The widgets painted inside each of the main window's repaints (``UpdateRequest``)
    and the layout requests meanwhile: which part of the window a long repaint redrew."""

    def __init__(self) -> None:
        self.current: list[str] | None = None
        self.repaints: list[tuple[float, list[str]]] = []
        self.layouts: dict[str, int] = {}
        self.filter = None

    def install(self, app) -> None:
        from qtpy.QtCore import QEvent, QObject

        paints = self

        class _Filter(QObject):
            def eventFilter(self, obj, ev):
                kind = ev.type()
                if kind == QEvent.Paint and paints.current is not None:
                    r = ev.rect()
                    paints.current.append(f"{type(obj).__name__} {r.width()}x{r.height()}")
                elif kind == QEvent.LayoutRequest:
                    name = type(obj).__name__
                    paints.layouts[name] = paints.layouts.get(name, 0) + 1
                return False

        self.filter = _Filter()
        app.installEventFilter(self.filter)

    def begin(self) -> list[str]:
        self.current = []
        return self.current

    def end(self, took: float) -> None:
        self.repaints.append((took, self.current or []))
        self.current = None

    def report(self, top: int = 4) -> None:
        print("longest window repaints and the widgets painted in them:", file=sys.stderr)
        for took, what in sorted(self.repaints, key=lambda r: -r[0])[:top]:
            print(f"  {took * 1e3:6.1f} ms: {len(what)} paints: {what[:14]}", file=sys.stderr)
        print("layout requests (receiver: count):",
              sorted(self.layouts.items(), key=lambda kv: -kv[1])[:12], file=sys.stderr)
        self.repaints.clear()
        self.layouts.clear()


_PAINTS = _Paints()


def _time_slots(panel) -> dict[str, list[float]]:
    """Durations of the panel's and the cohort tab's GUI-thread slots (diagnostics)."""
    from napari_iaa.widgets.dataset.cohort import CohortPanel

    for owner, name in ((type(panel), "_on_message"), (type(panel), "_on_finished"),
                        (CohortPanel, "refresh_columns")):
        times = _SLOT_TIMES.setdefault(name, [])
        times.clear()
        orig = getattr(owner, name)
        if getattr(orig, "_timed", False):
            continue

        def wrapped(*a, _orig=orig, _times=times, **k):
            t = time.perf_counter()
            try:
                return _orig(*a, **k)
            finally:
                _times.append(time.perf_counter() - t)

        wrapped._timed = True
        setattr(owner, name, wrapped)
    from napari._qt.qt_main_window import _QtMainWindow

    orig_event = _QtMainWindow.event
    if not getattr(orig_event, "_timed", False):
        def timed_event(self, ev, _orig=orig_event):
            t = time.perf_counter()
            kind = int(ev.type())
            painted = _PAINTS.begin() if kind == 77 else None
            try:
                return _orig(self, ev)
            finally:
                took = time.perf_counter() - t
                _SLOT_TIMES.setdefault(f"main window event {kind}", []).append(took)
                if painted is not None:
                    _PAINTS.end(took)

        timed_event._timed = True
        _QtMainWindow.event = timed_event
    from vispy.app.backends import _qt as vispy_qt

    for owner in (vispy_qt.CanvasBackendDesktop,):  # the canvas's own GL paint, within 77
        orig_paint = owner.paintGL
        if not getattr(orig_paint, "_timed", False):
            def timed_paint(self, _orig=orig_paint):
                t = time.perf_counter()
                try:
                    return _orig(self)
                finally:
                    _SLOT_TIMES.setdefault("main window canvas paintGL", []).append(
                        time.perf_counter() - t)

            timed_paint._timed = True
            owner.paintGL = timed_paint
    for key in [k for k in _SLOT_TIMES if k.startswith("main window")]:
        _SLOT_TIMES[key].clear()
    return _SLOT_TIMES


def profile_gui_thread(app, panel) -> None:
    """One table run under cProfile (GUI thread) with a count of the events Qt delivers."""
    import cProfile
    import pstats
    from collections import Counter

    from qtpy.QtCore import QObject

    seen: Counter = Counter()

    class _Types(QObject):
        def eventFilter(self, obj, ev):
            seen[(type(obj).__name__, int(ev.type()))] += 1
            return False

    spy = _Types()
    app.installEventFilter(spy)
    prof = cProfile.Profile()
    prof.runcall(table_score, app, panel)
    app.removeEventFilter(spy)
    pstats.Stats(prof).sort_stats("tottime").print_stats(12)
    print("events (receiver, QEvent type):", seen.most_common(25))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the first 20 patients, 2 repetitions")
    ap.add_argument("--patients", type=int, default=0, help="the first K patients (0: all)")
    ap.add_argument("--unit", default="slice,nodule", help="comma-separated: slice, nodule")
    ap.add_argument("--reps", type=int, default=0, help="repetitions (default 2 quick / 3)")
    ap.add_argument("--tab", choices=("dataset", "case"), default="dataset",
                    help="the review dock's tab shown while scoring: the Data set tab (the "
                         "table, its counts and bar repaint: what a user watching the run "
                         "sees; default) or the Case tab (the first three passes' runs)")
    args = ap.parse_args(argv)
    rc = display_or_rerun(__file__, argv, "gui_table", "table scoring")
    if rc is not None:
        return rc
    root, how = lidc_root()
    if root is None:
        return not_measured("gui_table", [{"what": "table scoring", "status": "not measured"}], how)
    patients = args.patients or (20 if args.quick else 0)
    if patients:
        root = lidc_subset(root, patients)
    reps = args.reps or (2 if args.quick else 3)
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_iaa.widgets import ReviewWidget
    from napari_iaa.widgets.review.navigation import open_in_unit

    viewer = napari.Viewer(show=True)
    # napari restores the last session's window size (other runs change it): every run
    # here gets the same window, so repaints cost alike from run to run
    viewer.window.resize(*WINDOW_SIZE)
    app = QApplication.instance()
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="IAA review", area="right")
    tmp = Path(tempfile.mkdtemp(prefix="napari-iaa-bench-table-"))
    rows, recs, summary = [], [], []
    base = [progress_baseline(app, 20.0, busy) for busy in (False, True)]
    for b in base:
        print(f"baseline, napari's progress bar alone{' + one busy core' if b['busy_core'] else ''}: "
              f"longest stall at its creation {fmt_time(b['start_stall_s'])}, later "
              f"{fmt_time(b['run_stall_s'])}, p95 gap {fmt_time(b['p95_gap_s'])}; "
              f"{_gc_line(b)}", flush=True)
    for unit in [u.strip() for u in args.unit.split(",") if u.strip()]:
        ds, unit = open_in_unit(str(root), unit)
        panel = widget.dataset_panel
        objects_before = _tracked_objects()
        with _GcPauses() as opening:
            widget.set_dataset(ds, source=str(root), load=False, unit=unit)
            panel.cancel()  # the open starts a run: measure whole runs only
        opened = {**opening.summary(0.0), "gc_tracked_growth": _tracked_objects() - objects_before}
        print(f"opening the {len(ds):,} {unit}s in the table: {_gc_line(opened)}", flush=True)
        if args.tab == "dataset":
            widget.tabs.setCurrentWidget(panel)
        cli_s, tab = [], []
        warm = table_score(app, panel)  # warm-up (imports, compiled kernels, first paint)
        print(f"{unit}s, warm-up run: {_gc_line(warm)}", flush=True)
        if os.environ.get("NAPARI_IAA_BENCH_PROFILE"):  # what the GUI thread does meanwhile
            profile_gui_thread(app, panel)
        for _ in range(reps):  # alternating, so load drift hits both alike
            cli_s.append(cli_score(root, unit, tmp / f"score-{unit}.csv"))
            tab.append(table_score(app, panel))
            print(f"{unit}s, run {len(tab)}: {fmt_time(tab[-1]['elapsed_s'])}, longest stall "
                  f"{fmt_time(tab[-1]['max_stall_s'])}; {_gc_line(tab[-1])}", flush=True)
        cli_med = statistics.median(cli_s)
        tab_med = statistics.median(t["elapsed_s"] for t in tab)
        worst = max(t["max_stall_s"] for t in tab)
        start = max(t["start_stall_s"] for t in tab)
        during = max(t["run_stall_s"] for t in tab)
        rec = {"unit": unit, "cases": len(ds), "patients": patients or "all",
               "tab": args.tab, "opening": opened, "warm_up": warm, "cli_s": cli_s, "table": tab, "cli_median_s": cli_med, "table_median_s": tab_med,
               "ratio": tab_med / cli_med, "ratio_min": min(t["elapsed_s"] for t in tab) / min(cli_s),
               "max_stall_s": worst, "start_stall_s": start, "run_stall_s": during,
               "all_completed": all(t["completed"] for t in tab)}
        recs.append(rec)
        rows.append({"unit": unit, "cases": f"{len(ds):,}", "napari-iaa score": fmt_time(cli_med),
                     "table": fmt_time(tab_med), "ratio": fmt_ratio(rec["ratio"]),
                     "ratio of minimums": fmt_ratio(rec["ratio_min"]),
                     "longest stall at the start": fmt_time(start),
                     "longest stall later": fmt_time(during),
                     "p95 gap": fmt_time(statistics.median(t["p95_gap_s"] for t in tab))})
        what = f"score LIDC in the dock's table, {len(ds):,} {unit}s"
        summary.append({"what": what, "figure": fmt_time(tab_med),
                        "baseline": f"napari-iaa score --unit {unit} {fmt_time(cli_med)}",
                        "ratio": fmt_ratio(rec["ratio"]), "target": f"<= {TARGET_RATIO}x",
                        "met": "yes" if rec["ratio"] <= TARGET_RATIO else "NO"})
        for key, when, what_base in (
                ("start_stall_s", "at the start (Score clicked)", "creating its bar"),
                ("run_stall_s", "later", "its bar advanced every 0.5 s")):
            fig = max(t[key] for t in tab)
            b = max(x[key] for x in base)
            summary.append({"what": f"GUI stall while scoring ({unit}s), {when}",
                            "figure": fmt_time(fig),
                            "baseline": f"napari alone, {what_base} (idle / one busy core, "
                                        f"the longer): {fmt_time(b)}",
                            "ratio": fmt_ratio(fig / b), "target": "< 50 ms",
                            "met": "yes" if fig < TARGET_STALL_S else "NO"})
        runs = [warm, *tab]
        full = sum(t["gc_collections"][2] for t in runs)
        promoted = statistics.median(t["gc_promoted"] for t in runs)
        per_s = statistics.median(x["gc_promoted"] / x["seconds"] for x in base)
        summary.append({"what": f"full garbage collections in the table runs ({unit}s), "
                                f"{len(runs)} runs with the warm-up",
                        "figure": f"{full} (objects promoted to the oldest generation per "
                                  f"run: median {promoted:,.0f})",
                        "baseline": f"napari alone promotes {per_s:,.0f} objects/s "
                                    f"({per_s * tab_med:,.0f} in a run's time)",
                        "ratio": fmt_ratio(promoted / max(per_s * tab_med, 1.0)),
                        "target": "0 (a full collection stalls the viewer 150-180 ms)",
                        "met": "yes" if full == 0 else "NO"})
    import gc

    t = time.perf_counter()  # baseline of a gen-2 pause in a run: one full collection here
    gc.collect()
    full_gc_s = time.perf_counter() - t
    print(f"a full garbage collection in this viewer process: {fmt_time(full_gc_s)} (what a "
          "run that brings one on stalls the viewer; NAPARI_IAA_GC_FREEZE=1 shortens it)")
    print(f"\nScoring LIDC ({how}) in the review dock's table vs the command line "
          f"(median of {reps}, alternating):")
    print(table(rows, list(rows[0].keys())))
    write_results("gui_table", {"quick": args.quick, "records": recs, "summary": summary,
                                "progress_baselines": base, "full_gc_s": full_gc_s,
                                "status": "ok"})
    sys.stdout.flush()
    from napari_iaa import scoring_pool

    for pool in scoring_pool._SPAWNED.values():  # os._exit would leave them orphaned
        pool.shutdown(wait=True, cancel_futures=True)
    os._exit(0)  # the viewer's workers may still be winding down


if __name__ == "__main__":
    sys.exit(main())
