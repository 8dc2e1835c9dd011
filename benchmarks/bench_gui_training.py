"""GUI stalls of a first training in a process: opening the Training dock, its first run.

What a user does once per napari session: the Training dock opened from napari's plugin
menu (``add_plugin_dock_widget``: napari imports the dock's module then, on the GUI
thread), then Start. That first run imports torch, timm and the training package; each
measurement is a fresh process (torch is imported once per process), under ``xvfb-run -a``
when there is no display. The viewer shows the review dock (plugin menu) with a synthetic
sample case open, as in ``bench_gui_predictions.py``.

- ``dock``: the Training dock opened (measured until it is shown) and its first run, the
  benchmark's fit of ``bench_gui.set_training`` (1 epoch, 40 images, mobilenetv2_050 at
  96 px), measured from the click until the run ended and settled.
- ``plain`` (the baseline of the first run): the same fit in a plain thread of a fresh
  process, its imports (torch, timm, the training package) in that thread too, nothing
  shown: what a first fit costs the event loop without the dock's care. Baseline of the
  open: napari docking a widget holding one label (``bench_gui_predictions._plain_dock``).

The probe is ``bench_gui.StallProbe`` (a 1 ms QTimer; the longest gap between its ticks).

    python benchmarks/bench_gui_training.py [--reps N]
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
    TRAIN_SETTLE_S,
    StallProbe,
    ready_to_click,
    set_training,
)
from bench_gui_predictions import Watchdog, _gap_times, _plain_dock

_MARK = "TRAIN_GUI "


def _viewer_with_a_case(probe_holder: dict):
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_iaa.data import open_dataset, sample_data_path

    viewer = napari.Viewer(show=True)
    probe = StallProbe(QApplication.instance())
    review = viewer.window.add_plugin_dock_widget("napari-iaa", "Review")[1]
    ds = open_dataset(sample_data_path("synthetic"))
    case = ds.load(ds.ids[0])
    probe.measure(lambda: review.show_case(case), settle_s=1.0, until=lambda: review.live is not None)
    probe_holder["idle"] = probe.measure(lambda: None, settle_s=3.0)
    return viewer, probe


def _plain_first_fit(out: Path) -> tuple:
    """``(act, finished, error)``: imports and the benchmark's fit (``set_training``'s
    values, the torch threads the dock would give it) in a plain thread."""
    done: list[object] = []
    error: list[str] = []

    def body() -> None:
        try:
            import torch

            from napari_iaa.data import sample_data_path
            from napari_iaa.widgets.training.run import make_config
            from training.fitting import fit

            config = make_config({
                "data": sample_data_path("synthetic"), "task": "iaa", "backbone": "mobilenetv2_050",
                "epochs": 1, "batch_size": 8, "image_size": 96, "device": "cpu", "out": out,
                "name": "bench-plain-first", "lr": 1e-3,
                "threads": max(1, torch.get_num_threads() - 1)})
            done.append(fit(config))
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            error.append(f"{type(exc).__name__}: {exc}")
            done.append(None)

    return (lambda: threading.Thread(target=body, daemon=True).start(), lambda: bool(done),
            error)


def _child(mode: str, why: bool) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="napari-iaa-bench-train-"))
    os.environ["NAPARI_IAA_MODELS"] = str(tmp / "registry")
    rec: dict = {"mode": mode}
    viewer, probe = _viewer_with_a_case(rec)
    rec["torch_before"] = "torch" in sys.modules
    if mode == "plain":
        act, finished, error = _plain_first_fit(tmp / "plain")
        rec["first_run"] = probe.measure(act, settle_s=TRAIN_SETTLE_S, until=finished, timeout_s=900)
        if error or not finished():
            raise RuntimeError(f"the plain fit failed: {error or 'timed out'}")
    else:
        holder: dict = {}

        def open_dock() -> None:
            holder["dock"] = viewer.window.add_plugin_dock_widget("napari-iaa", "Training")[1]

        dog = Watchdog(probe, depth=14) if why else None
        if dog:
            dog.start()
        rec["open"] = probe.measure(open_dock, settle_s=1.0)
        rec["torch_after_open"] = "torch" in sys.modules
        rec["plain_dock"] = _plain_dock(probe, viewer)
        tw = holder["dock"]
        set_training(tw, tmp / "dock", "bench-dock-first")
        ready_to_click(probe, tw)
        if dog:
            dog.action = "first run"
        t0 = time.perf_counter()
        rec["first_run"] = probe.measure(tw.start, settle_s=TRAIN_SETTLE_S,
                                         until=lambda: not tw.running, timeout_s=900)
        rec["first_run_gaps"] = _gap_times(probe, t0, over_s=0.04)
        if dog:
            dog.stop()
            rec["why"] = dog.top()
        status = (tw.last_run or {}).get("status")
        if status != "done":
            raise RuntimeError(f"training did not finish: {tw.last_run}")
    print(_MARK + json.dumps(rec, default=float))
    sys.stdout.flush()
    os._exit(0)


def _run_child(mode: str, why: bool = False) -> dict:
    return run_marked_child(__file__, ["--child", mode] + (["--why"] if why else []), _MARK, 1200)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one process of each kind")
    ap.add_argument("--reps", type=int, default=0, help="fresh processes of each kind (default 3)")
    ap.add_argument("--why", action="store_true",
                    help="record the GUI thread's stack in stalls over 40 ms (the dock's runs)")
    ap.add_argument("--child", choices=["dock", "plain"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    rc = display_or_rerun(__file__, argv, "gui_training", "Training dock stalls")
    if rc is not None:
        return rc
    if args.child:
        return _child(args.child, args.why)
    reps = 1 if args.quick else (args.reps or 3)
    recs: dict[str, list[dict]] = {"dock": [], "plain": []}
    try:
        for _ in range(reps):  # in turn: the machine's load moves both alike
            recs["dock"].append(_run_child("dock", args.why))
            recs["plain"].append(_run_child("plain"))
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"gui_training: {exc}", file=sys.stderr)
    if not recs["dock"] or not recs["plain"]:
        return not_measured("gui_training", [{"what": "Training dock stalls", "status": "not measured"}],
                            "a measuring process failed (see above)")

    def med(kind: str, key: str) -> float:
        return float(np.median([r[key]["max_stall_s"] for r in recs[kind]]))

    def runs(kind: str, key: str) -> str:
        return ", ".join(fmt_time(r[key]["max_stall_s"]) for r in recs[kind])

    open_s, dock_s = med("dock", "open"), med("dock", "plain_dock")
    first_s, plain_s = med("dock", "first_run"), med("plain", "first_run")
    n = len(recs["dock"])
    rows = [
        {"action": f"open the Training dock from the plugin menu (median of {n} processes)",
         "longest stall": fmt_time(open_s), "runs": runs("dock", "open"),
         "baseline": f"napari docking a one-label widget {fmt_time(dock_s)}",
         "ratio": fmt_ratio(open_s / dock_s), "target < 50 ms": "met" if open_s < 0.05 else "MISSED"},
        {"action": f"the first training in a process (imports torch; median of {n})",
         "longest stall": fmt_time(first_s), "runs": runs("dock", "first_run"),
         "baseline": f"the same first fit in a plain thread, its imports too {fmt_time(plain_s)}"
                     f" ({runs('plain', 'first_run')})",
         "ratio": fmt_ratio(first_s / plain_s), "target < 50 ms": "met" if first_s < 0.05 else "MISSED"},
    ]
    print("\nLongest Qt event-loop stall, fresh processes (1 ms probe timer):")
    print(table(rows, list(rows[0].keys())))
    summary = [{"what": f"GUI stall: {r['action']}", "figure": r["longest stall"], "baseline": r["baseline"],
                "ratio": r["ratio"], "target": "< 50 ms",
                "met": {"met": "yes", "MISSED": "NO"}[r["target < 50 ms"]]} for r in rows]
    write_results("gui_training", {"quick": args.quick, "records": recs, "summary": summary,
                                   "status": "ok"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
