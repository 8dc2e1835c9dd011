"""GUI stalls of the Predictions dock: opening it, the first and later predictions (< 50 ms).

Opening the dock loads torch, timm and the model list in a worker (the dock says it is
loading); that import must not stall the event loop. Each measurement runs in a fresh
process (torch is imported once per process), under ``xvfb-run -a`` when no display:

- ``open``: a napari viewer with the review dock showing a synthetic sample case (256 x
  256, 4 annotators); the Predictions dock is created as napari creates it
  (``PredictionsWidget(viewer)``, automatic predictions on) and docked; measured until its
  model list is read and matched and the automatic first prediction is shown.
- ``plugin``: as ``open``, but both docks opened as napari's plugin menu opens them
  (``add_plugin_dock_widget``: the module imported then, the scrolled ``PredictionsDock``
  tabbed with the review dock).
- ``predict``: the same with automatic predictions off; after the model list is read,
  the first explicit prediction (loads the networks) and ``--reps`` later ones.

The probe is ``bench_gui.StallProbe`` (a 1 ms QTimer; the longest gap between its ticks).
Baseline: the same viewer and review dock idling for the same time (the event loop's own
longest gap under this display). napari's own baselines, in the same viewer: docking a
widget with one label, adding and updating the dock's three map layers, and its floor for
any action that adds a layer (one hidden 2 x 2 image layer). ``--why`` adds a watchdog
thread that records the GUI thread's Python stack whenever no tick came for 40 ms (a
stack inside an ``import`` means the GUI thread waited for the worker's import lock), per
action: the open, the first prediction, the later ones and napari's baselines are told
apart.

    python benchmarks/bench_gui_predictions.py [--quick] [--reps N] [--why]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    display_or_rerun,
    fmt_ratio,
    fmt_time,
    not_measured,
    run_marked_child,
    table,
    write_results,
)
from bench_gui import (
    StallProbe,
    plain_update_maps,
)

_MARK = "PRED_GUI "


class Watchdog:
    """Records the GUI thread's stack while the probe's ticks stop for over ``limit_s``."""

    def __init__(self, probe: StallProbe, limit_s: float = 0.04, depth: int = 8) -> None:
        self.probe = probe
        self.limit_s = limit_s
        self.depth = depth
        self.main = threading.main_thread().ident
        #: the action under way (set by the caller before each); stacks are kept per action
        self.action = "open"
        self.seen: dict[str, dict[str, int]] = {}
        self.late: list[float] = []  # how late the watchdog itself woke (GIL held elsewhere)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1.0)

    def _run(self) -> None:
        last_wake = time.perf_counter()
        while not self._stop.wait(0.005):
            now = time.perf_counter()
            if now - last_wake > 0.05:
                self.late.append(now - last_wake)
            last_wake = now
            ticks = self.probe.ticks
            if not ticks or now - ticks[-1] < self.limit_s:
                continue
            frame = sys._current_frames().get(self.main)
            if frame is None:
                continue
            stack = traceback.extract_stack(frame)[-self.depth:]
            key = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack))
            seen = self.seen.setdefault(self.action, {})
            seen[key] = seen.get(key, 0) + 1

    def top(self, n: int = 12) -> dict[str, list[tuple[str, int]]]:
        """The ``n`` stacks seen most often, per action."""
        return {a: sorted(s.items(), key=lambda kv: -kv[1])[:n] for a, s in self.seen.items()}


def _gaps(probe: StallProbe, top: int = 5) -> list[float]:
    t = np.array(probe.ticks)
    return sorted(np.diff(t).tolist(), reverse=True)[:top] if t.size > 1 else []


def _gap_times(probe: StallProbe, t0: float, over_s: float = 0.01) -> list[tuple[float, float]]:
    """``(start after t0, length)`` of every gap over ``over_s``, in order (seconds)."""
    t = np.array([t0] + probe.ticks)
    d = np.diff(t)
    return [(round(float(t[i] - t0), 3), round(float(d[i]), 3)) for i in np.flatnonzero(d > over_s)]


def _child(mode: str, reps: int, why: bool) -> int:
    """One fresh process: open the dock (and predict), print the records as JSON."""
    os.environ.setdefault("NAPARI_IAA_MODELS", tempfile.mkdtemp(prefix="napari-iaa-bench-models-"))
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_iaa.data import open_dataset, sample_data_path
    from napari_iaa.widgets import ReviewWidget

    viewer = napari.Viewer(show=True)
    probe = StallProbe(QApplication.instance())
    if mode == "plugin":
        review = viewer.window.add_plugin_dock_widget("napari-iaa", "Review")[1]
    else:
        review = ReviewWidget(viewer)
        viewer.window.add_dock_widget(review, name="IAA review", area="right")
    ds = open_dataset(sample_data_path("synthetic"))
    case = ds.load(ds.ids[0])
    probe.measure(lambda: review.show_case(case), settle_s=1.0, until=lambda: review.live is not None)
    idle = probe.measure(lambda: None, settle_s=3.0)
    dog = Watchdog(probe) if why else None
    if dog:
        dog.start()
    loaded = "torch" in sys.modules
    # the dock's own package imported before the click (the review dock's idle imports,
    # ``warmup.import_when_idle``: the plugin menu's ``ReviewDock`` asks for it)
    own_imported = "napari_iaa.widgets.predictions" in sys.modules
    holder: dict = {}

    def open_dock():
        if mode == "plugin":
            holder["dock"] = viewer.window.add_plugin_dock_widget("napari-iaa", "Predictions")[1]
            return
        from napari_iaa.widgets.predictions import PredictionsWidget

        holder["dock"] = PredictionsWidget(viewer, auto=(mode == "open"))
        viewer.window.add_dock_widget(holder["dock"], name="Predictions", area="right")

    def settled() -> bool:
        d = holder.get("dock")
        if d is None or d.settings.loading or d.busy:
            return False
        return mode == "predict" or d.case_tab.last_prediction is not None

    marks: dict[str, float] = {}

    from qtpy.QtCore import QTimer

    watch = QTimer()
    watch.setInterval(2)
    watch.timeout.connect(lambda: "torch" in sys.modules and marks.setdefault(
        "torch import began", time.perf_counter()))
    watch.start()

    def open_dock_marked():
        open_dock()
        d = holder["dock"]
        d.settings.loaded.connect(lambda: marks.setdefault("models listed", time.perf_counter()))
        d.case_predicted.connect(lambda _p: marks.setdefault("prediction shown", time.perf_counter()))

    t0 = time.perf_counter()
    opened = probe.measure(open_dock_marked, settle_s=1.0, until=settled, timeout_s=300)
    watch.stop()
    rec = {"mode": mode, "idle": idle, "open": opened, "open_gaps": _gaps(probe),
           "gaps_over_10ms": _gap_times(probe, t0),
           "marks": {k: round(v - t0, 3) for k, v in marks.items()},
           "torch_before_open": loaded, "own_package_before_open": own_imported,
           "open_wall_s": time.perf_counter() - t0}
    dock = holder["dock"]
    if dog:
        dog.action = "napari: docking a widget"
    rec["plain_dock"] = _plain_dock(probe, viewer)
    rec["predicted_on_open"] = dock.case_tab.last_prediction is not None
    rec["status_text"] = dock.settings.status_label.text()
    if mode == "predict":
        if dog:
            dog.action = "first prediction"
        first = probe.measure(dock.predict_current, settle_s=1.0, until=lambda: not dock.busy,
                              timeout_s=300)
        rec["first"], rec["first_gaps"] = first, _gaps(probe)
        if dock.case_tab.last_prediction is None:
            raise RuntimeError("the predictions dock showed no prediction")
        if dog:
            dog.action = "later predictions"
        rec["later"] = [probe.measure(dock.predict_current, settle_s=1.0,
                                      until=lambda: not dock.busy, timeout_s=300)
                        for _ in range(reps)]
        if dog:
            dog.action = "napari: new data for the 3 layers"
        rec["plain_update_maps"] = [plain_update_maps(probe, viewer) for _ in range(reps)]
        if dog:
            dog.action = "napari: adding the 3 layers"
        rec["plain_add_maps"] = _plain_add_maps(probe, viewer)
        if dog:
            dog.action = "napari: adding one 2 x 2 layer"
        rec["plain_add_tiny"] = [_plain_add_tiny(probe, viewer) for _ in range(max(reps, 3))]
    if dog:
        dog.stop()
        rec["why"] = dog.top()
        rec["watchdog_late_s"] = sorted(dog.late, reverse=True)[:5]
    print(_MARK + json.dumps(rec, default=float))
    sys.stdout.flush()
    os._exit(0)


def _plain_add_maps(probe: StallProbe, viewer) -> dict:
    """Baseline of the first prediction: napari adding the dock's three map layers (same
    data, colour maps, opacity and blending), one per event-loop turn, then removing them."""
    from qtpy.QtCore import QTimer

    from napari_iaa.widgets.predictions import LAYER_CAL, LAYER_DIFF, LAYER_RAW

    maps = [viewer.layers[n] for n in (LAYER_RAW, LAYER_CAL, LAYER_DIFF) if n in viewer.layers]
    specs = [dict(data=np.array(m.data), colormap=m.colormap, contrast_limits=m.contrast_limits,
                  opacity=m.opacity, blending=m.blending, visible=m.visible) for m in maps]
    added = []

    def plain_add():
        steps = list(specs)

        def nxt():
            if steps:
                added.append(viewer.add_image(name=f"plain {len(added)}", **steps.pop(0)))
                QTimer.singleShot(0, nxt)
        nxt()

    r = probe.measure(plain_add, settle_s=1.0, until=lambda: len(added) == len(specs))
    for layer in added:
        viewer.layers.remove(layer)
    return r


def _plain_add_tiny(probe: StallProbe, viewer) -> dict:
    """napari's floor for any action that adds a layer: adding one hidden 2 x 2 image layer
    to the same viewer (then removing it)."""
    added = []
    r = probe.measure(lambda: added.append(viewer.add_image(
        np.zeros((2, 2), np.float32), name="plain 2 x 2", visible=False)), settle_s=1.0)
    for layer in added:
        viewer.layers.remove(layer)
    return r


def _plain_dock(probe: StallProbe, viewer) -> dict:
    """Baseline of the open: napari docking a widget holding one label, in the same area."""
    from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

    def add():
        w = QWidget()
        QVBoxLayout(w).addWidget(QLabel("an empty dock"))
        viewer.window.add_dock_widget(w, name="empty dock", area="right")

    return probe.measure(add, settle_s=1.0)


def _load_stall(rec: dict) -> float:
    """The longest gap from the start of torch's import (in the worker) to the model list
    shown (the worker importing torch and timm and reading the cards); 10 ms when none is
    longer (gaps under 10 ms are not recorded)."""
    start = rec["marks"].get("torch import began", 0.0)
    end = rec["marks"].get("models listed", float("inf"))
    gaps = [g for t, g in rec["gaps_over_10ms"] if start <= t < end]
    return max(gaps, default=0.01)


def _open_stall(rec: dict) -> float:
    """The longest gap from the click to the model list shown (the open itself, without
    the automatic first prediction's layers)."""
    end = rec["marks"].get("models listed", float("inf"))
    gaps = [g for t, g in rec["gaps_over_10ms"] if t < end]
    return max(gaps, default=0.01)


def _run_child(mode: str, reps: int, why: bool) -> dict:
    return run_marked_child(__file__, ["--child", mode, "--reps", str(reps)] + (["--why"] if why else []),
                            _MARK)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=0, help="later predictions and fresh opens "
                    "(default 2 quick / 3)")
    ap.add_argument("--why", action="store_true", help="record the GUI thread's stack in stalls")
    ap.add_argument("--child", choices=["open", "plugin", "predict"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    reps = args.reps or (2 if args.quick else 3)
    rc = display_or_rerun(__file__, argv, "gui_predictions", "Predictions dock stalls")
    if rc is not None:
        return rc
    if args.child:
        return _child(args.child, reps, args.why)
    recs: dict[str, list[dict]] = {"open": [], "plugin": [], "predict": []}
    n_open = 1 if args.quick else reps
    try:
        for _ in range(n_open):
            recs["open"].append(_run_child("open", reps, args.why))
            recs["plugin"].append(_run_child("plugin", reps, args.why))
        recs["predict"].append(_run_child("predict", reps, args.why))
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"gui_predictions: {exc}", file=sys.stderr)
        return not_measured("gui_predictions", [{"what": "Predictions dock stalls",
                                                 "status": "not measured"}], str(exc)[:300])
    pr = recs["predict"][0]
    every = recs["open"] + recs["plugin"] + recs["predict"]
    idle = float(np.median([r["idle"]["max_stall_s"] for r in every]))
    opens = [r["open"]["max_stall_s"] for r in recs["open"]]
    rows = [
        ("open the dock (torch, timm, models in a worker) + automatic first prediction, "
         f"median of {len(opens)} fresh processes", float(np.median(opens)),
         f"ready after {fmt_time(float(np.median([r['open']['ready_s'] for r in recs['open']])))}"),
        ("  of which from the click to the model list shown (median)",
         float(np.median([_open_stall(r) for r in recs["open"]])), "-"),
        ("open the dock from napari's plugin menu (module import, scrolled dock tabbed with "
         "the review dock) + automatic first prediction, median",
         float(np.median([r["open"]["max_stall_s"] for r in recs["plugin"]])),
         f"ready after {fmt_time(float(np.median([r['open']['ready_s'] for r in recs['plugin']])))}"),
        ("  of which from the click to the model list shown (median)",
         float(np.median([_open_stall(r) for r in recs["plugin"]])), "-"),
        ("  of which the call that opens it (import, build, dock; median)",
         float(np.median([r["open"]["call_s"] for r in recs["plugin"]])), "-"),
        ("open the dock, automatic predictions off", pr["open"]["max_stall_s"],
         f"ready after {fmt_time(pr['open']['ready_s'])}"),
        ("  baseline: napari docking a widget with one label, same area (median)",
         float(np.median([r["plain_dock"]["max_stall_s"] for r in every])),
         "-"),
        ("  longest stall while torch, timm and the models load (from the open's end to the "
         "model list; median)", float(np.median([_load_stall(r) for r in every])),
         "-"),
        ("first prediction (loads the networks, adds the 3 map layers), sample case",
         pr["first"]["max_stall_s"], f"shown after {fmt_time(pr['first']['ready_s'])}"),
        ("  baseline: napari adding the same 3 image layers, one per turn",
         pr["plain_add_maps"]["max_stall_s"], "-"),
        ("  napari's floor for adding any layer: one hidden 2 x 2 image layer (median of "
         f"{len(pr['plain_add_tiny'])})",
         float(np.median([r["max_stall_s"] for r in pr["plain_add_tiny"]])), "-"),
        (f"later predictions, sample case (median of {reps})",
         float(np.median([r["max_stall_s"] for r in pr["later"]])),
         f"shown after {fmt_time(float(np.median([r['ready_s'] for r in pr['later']])))}"),
        ("  baseline: napari given new data for the 3 map layers, one per turn (median)",
         float(np.median([r["max_stall_s"] for r in pr["plain_update_maps"]])), "-"),
    ]
    out = [{"action": a, "longest stall": fmt_time(s), "time": t,
            "baseline (idle viewer)": fmt_time(idle), "ratio": fmt_ratio(s / idle) if idle > 0 else "-",
            "target < 50 ms": "met" if s < 0.05 else "MISSED"} for a, s, t in rows]
    for mode in ("open", "plugin"):
        n_pre = sum(bool(r.get("own_package_before_open")) for r in recs[mode])
        print(f"{mode}: the dock's own package imported before the click in {n_pre} of "
              f"{len(recs[mode])} processes")
    print("\nPredictions dock: longest Qt event-loop stall (1 ms probe timer, fresh processes):")
    print(table(out, list(out[0].keys())))
    if args.why:
        for r in every:
            print(f"\n{r['mode']}: gaps over 50 ms while opening, (start s, length s): "
                  f"{[g for g in r['gaps_over_10ms'] if g[1] > 0.05]}; events (s): {r['marks']}; watchdog late "
                  f"{[round(g * 1e3) for g in r.get('watchdog_late_s', [])]} ms")
            why = r.get("why", {})
            for action, stacks in (why.items() if isinstance(why, dict) else [("all", why)]):
                print(f" {action}: {sum(n for _k, n in stacks)} samples in stalls over 40 ms")
                for k, n in stacks:
                    print(f"  {n:4d} x {k}")
    summary = [{"what": f"GUI stall: {r['action']}", "figure": r["longest stall"],
                "baseline": f"idle viewer {r['baseline (idle viewer)']}", "ratio": r["ratio"],
                "target": "< 50 ms", "met": {"met": "yes", "MISSED": "NO"}[r["target < 50 ms"]]}
               for r in out]
    write_results("gui_predictions", {"quick": args.quick, "records": recs, "summary": summary,
                                      "status": "ok"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
