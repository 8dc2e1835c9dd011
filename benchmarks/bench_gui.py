"""GUI responsiveness: the longest stall of the Qt event loop (target < 50 ms).

A 1 ms QTimer records its ticks while an action runs; the longest gap between ticks is
the longest time the viewer could not repaint or react. Measured with the review dock
(``napari_iaa.widgets.ReviewWidget``) in a napari viewer:
- opening a large case: ``ReviewWidget.show_case`` with 15 annotators at 6000 x 4000
  (``--quick``: 2048 x 2048), including the follow-up work it schedules;
- painting one stroke (radius 100 px disc, ``Labels.paint``) into one annotator's layer,
  which the dock turns into a tracker update and a matrix refresh.
- predictions for the open case (``PredictionsWidget.predict_current`` with the shipped
  ``*-synth`` models in ``sample_data/models``): first run (creates the three map layers)
  and later runs (update them), on the large case and on a 256 x 256 sample case;
- training running: one epoch of the training dock (``docks.TrainingDock``, as the plugin
  menu opens it) on ``sample_data/synthetic`` (after torch and timm are imported in a
  thread, measured on its own).
Baselines: for training, the same fit by ``training.fit`` in a plain thread with nothing
shown (no callback, no progress), in turn with the dock's runs; for the stroke, the same paint on a bare napari Labels layer of the same size
without the dock (napari's own cost); for the open, plain napari adding the same layers
(image + one Labels layer per annotator), one per event-loop turn, in a fresh viewer.

``--rows open,stroke,predict,train`` runs a subset (``open`` is always run when
``stroke``/``predict`` are asked for: they need the open case).

Needs a display; without one the script re-runs itself under ``xvfb-run -a``.

    python benchmarks/bench_gui.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import display_or_rerun, fmt_ratio, fmt_time, not_measured, table, write_results


class StallProbe:
    """Longest gap between ticks of a 1 ms timer while ``action`` (and its aftermath) runs."""

    def __init__(self, app):
        from qtpy.QtCore import QTimer

        self.app = app
        self.timer = QTimer()
        self.timer.setInterval(1)
        self.ticks: list[float] = []
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def measure(self, action, settle_s: float = 1.0, until=None, timeout_s: float = 120.0) -> dict:
        from qtpy.QtCore import QTimer

        self.ticks = []
        self.timer.start()
        done = {}

        def run():
            t = time.perf_counter()
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - an exception in a Qt slot would abort
                done["error"] = f"{type(exc).__name__}: {exc}"
            done["call_s"] = time.perf_counter() - t
            done["t"] = time.perf_counter()

        QTimer.singleShot(0, run)
        t0 = time.perf_counter()
        while True:  # spin the event loop until the action and its follow-ups are over
            self.app.processEvents()
            now = time.perf_counter()
            ok = "t" in done and (until is None or until())
            if ok and "ready" not in done:
                done["ready"] = now  # the action and the follow-ups it was waited for are over
            elif not ok:
                done.pop("ready", None)
            if ok and now - done["t"] > settle_s:
                break
            if now - t0 > timeout_s:
                break
            time.sleep(0.0005)
        self.timer.stop()
        # the measurement's start and end bound the first and last gap (a call that blocks
        # the loop throughout leaves no tick at all)
        gaps = np.diff(np.array([t0] + self.ticks + [time.perf_counter()]))
        if "error" in done:
            raise RuntimeError(done["error"])
        return {"max_stall_s": float(np.nanmax(gaps)), "call_s": done.get("call_s", float("nan")),
                "total_s": time.perf_counter() - t0, "ready_s": done.get("ready", float("nan")) - t0,
                "ticks": len(self.ticks)}


def make_case(n: int, w: int, h: int):
    from bench_tracker import make_masks

    from napari_iaa.data import Case

    rng = np.random.default_rng(0)
    image = np.full((h, w, 3), 180, np.uint8)
    image[..., 0] = rng.integers(150, 210, (h, w), dtype=np.uint8)
    masks = {f"A{i:02d}": m for i, m in enumerate(make_masks(n, w, h, seed=3))}
    return Case(case_id="big", image=image, masks=masks, raters={k: k for k in masks}, meta={})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rows", default="open,stroke,predict,train",
                    help="comma-separated subset of open,stroke,predict,train")
    ap.add_argument("--reps", type=int, default=0, help="repetitions (default 3 quick / 5)")
    ap.add_argument("--plain-open", action="store_true", help=argparse.SUPPRESS)  # the baseline's child
    args = ap.parse_args(argv)
    want = set(args.rows.split(","))
    rc = display_or_rerun(__file__, argv, "gui", "event-loop stalls")
    if rc is not None:
        return rc
    try:
        import napari
        from qtpy.QtWidgets import QApplication

        from napari_iaa.widgets import ReviewWidget
    except ImportError as exc:
        return not_measured("gui", [{"what": "event-loop stalls", "status": "not measured"}],
                            f"needs napari and napari_iaa.widgets ({exc})")
    w, h = (2048, 2048) if args.quick else (6000, 4000)
    n = 15
    if args.plain_open:
        return _plain_open(w, h, n)
    reps = args.reps or (3 if args.quick else 5)
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="napari-iaa-bench-gui-"))
    os.environ["NAPARI_IAA_MODELS"] = str(tmp / "registry")  # trained models land here
    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    probe = StallProbe(app)
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="IAA review", area="right")
    probe.measure(lambda: None, settle_s=0.5)  # let the window settle
    case = make_case(n, w, h)
    rows, recs = [], {}

    def row(action, stall, call="-", baseline="-", ratio="-"):
        rows.append({"action": action, "longest stall": fmt_time(stall), "call": call,
                     "baseline": baseline, "ratio": ratio,
                     "target < 50 ms": "met" if stall < 0.05 else "MISSED"})

    def fail(what, exc):
        print(f"gui: {what}: {exc}", file=sys.stderr)
        write_results("gui", {"quick": args.quick, "status": "not measured", "reason": f"{what}: {exc}",
                              "records": recs,
                              "summary": [{"what": "GUI stalls", "figure": f"not measured: {what}: {exc}",
                                           "baseline": "-", "ratio": "-", "target": "< 50 ms", "met": "-"}]})
        sys.stdout.flush()
        os._exit(0)

    if want & {"open", "stroke", "predict"}:
        base_open = _plain_open_in_subprocess(args.quick) if "open" in want else None
        try:
            # the dock opens large cases in a worker: wait until all layers are bound
            opened = probe.measure(lambda: widget.show_case(case), settle_s=2.0,
                                   until=lambda: len(widget.annotator_layers()) == n and widget.live is not None,
                                   timeout_s=600)
        except RuntimeError as exc:
            fail("the review dock failed to open the case", exc)
        recs["open_case"] = opened
        if "open" in want:
            row(f"open a case, {n} x {w}x{h}", opened["max_stall_s"],
                f"{fmt_time(opened['call_s'])} (bound after {fmt_time(opened['ready_s'])})",
                f"plain napari, same layers one per turn (fresh process): {fmt_time(base_open['max_stall_s'])}"
                if base_open else "-",
                fmt_ratio(opened["max_stall_s"] / base_open["max_stall_s"]) if base_open else "-")
        recs["open_case_baseline_plain_napari"] = base_open
        layers = widget.annotator_layers()
        if not layers:
            fail("the review dock showed no annotator layers", "timeout")

    if "stroke" in want:
        mid, layer = next(iter(layers.items()))
        layer.brush_size = 200  # radius 100 px
        layer.selected_label = 1

        def paint_stalls(lyr) -> list[float]:
            """Longest stall of each of ``reps`` strokes, painting and erasing in turn."""
            out = []
            for k in range(reps):
                y, x = h // 2 + 37 * k, w // 3 + 53 * k
                r = probe.measure(lambda y=y, x=x, k=k: lyr.paint((y, x), 1 if k % 2 == 0 else 0),
                                  settle_s=0.6)
                out.append(r["max_stall_s"])
            return out

        stalls = paint_stalls(layer)
        stroke = float(np.median(stalls))
        # baseline: the same paint on a plain Labels layer without the dock
        viewer2 = napari.Viewer(show=True)
        plain = viewer2.add_labels(np.zeros((h, w), np.uint8))
        plain.brush_size = 200
        base = paint_stalls(plain)
        base_s = float(np.median(base))
        viewer2.close()
        recs["stroke"] = {"median_max_stall_s": stroke, "all": stalls, "baseline_plain_labels_s": base_s,
                          "baseline_all": base}
        row(f"paint a stroke (r=100 px), {n} x {w}x{h} (median of {reps})", stroke,
            baseline=f"plain Labels.paint {fmt_time(base_s)}",
            ratio=fmt_ratio(stroke / base_s) if base_s > 0 else "-")

    if "predict" in want:
        try:
            pred_rows = _bench_predictions(probe, viewer, widget, reps, f"{n} x {w}x{h}", tmp)
        except Exception as exc:  # noqa: BLE001
            fail("predictions", f"{type(exc).__name__}: {exc}")
        for key, action, stall, extra in pred_rows:
            recs[key] = extra
            b = extra.get("baseline_s")
            row(action, stall, extra.get("call", "-"),
                f"napari setting the 3 map layers' data, one per turn: {fmt_time(b)}" if b else "-",
                fmt_ratio(stall / b) if b else "-")

    if "train" in want:
        try:
            key, action, stall, extra = _bench_training(probe, viewer, reps, tmp)
        except Exception as exc:  # noqa: BLE001
            fail("training", f"{type(exc).__name__}: {exc}")
        recs[key] = extra
        b = extra["baseline_s"]
        row(action, stall, extra.get("call", "-"),
            f"the same fit in a plain thread, nothing shown: {fmt_time(b)}", fmt_ratio(stall / b))

    print(f"\nLongest Qt event-loop stall (1 ms probe timer; medians over {reps} repetitions):")
    print(table(rows, list(rows[0].keys())))
    summary = [{"what": f"GUI stall: {r['action']}", "figure": r["longest stall"], "baseline": r["baseline"],
                "ratio": r["ratio"], "target": "< 50 ms",
                "met": {"met": "yes", "MISSED": "NO"}.get(r["target < 50 ms"], "-")} for r in rows]
    write_results("gui", {"quick": args.quick, "size": f"{w}x{h}", "annotators": n, "records": recs,
                          "rows": args.rows, "summary": summary, "status": "ok"})
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave without tearing the viewers down: the dock's background workers may still be
    # finishing, and closing under them aborts in superqt; the results are written.
    os._exit(0)


def _plain_open(w: int, h: int, n: int) -> int:
    """Child process: plain napari adds the case's layers one per event-loop turn."""
    import json

    import napari
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    case = make_case(n, w, h)
    v = napari.Viewer(show=True)
    probe = StallProbe(QApplication.instance())
    probe.measure(lambda: None, settle_s=0.5)

    def plain_add():
        steps = [lambda: v.add_image(case.image, name="image", rgb=True)]
        steps += [lambda m=m, k=k: v.add_labels(m.astype(np.uint8), name=k, opacity=0.9)
                  for k, m in case.masks.items()]

        def nxt():
            if steps:
                steps.pop(0)()
                QTimer.singleShot(0, nxt)
        nxt()

    r = probe.measure(plain_add, settle_s=2.0, until=lambda: len(v.layers) == n + 1, timeout_s=600)
    print("PLAIN_OPEN " + json.dumps(r))
    sys.stdout.flush()
    os._exit(0)


def _plain_open_in_subprocess(quick: bool) -> dict | None:
    """The open baseline in a fresh process (napari's once-per-process costs included)."""
    import json

    cmd = [sys.executable, str(Path(__file__).resolve()), "--plain-open"] + (["--quick"] if quick else [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900).stdout
    for line in out.splitlines():
        if line.startswith("PLAIN_OPEN "):
            return json.loads(line[len("PLAIN_OPEN "):])
    print(f"gui: the plain-napari baseline failed:\n{out[-2000:]}", file=sys.stderr)
    return None


def _wait_until(cond, timeout_s: float = 120.0) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("the predictions dock's model list did not load")
        QApplication.processEvents()
        time.sleep(0.005)


def _model_settings():
    from napari_iaa.models import ModelRegistry
    from napari_iaa.widgets.predictions.models_tab import ModelSettingsWidget

    folder = Path(__file__).resolve().parent.parent / "sample_data" / "models"
    reg = ModelRegistry(paths=[folder], include_shipped=False, include_user=False)
    settings = ModelSettingsWidget(registry=reg)
    _wait_until(lambda: not settings.loading)  # the list is read in a worker
    for task in ("iaa", "mhr", "quality"):
        settings.select(task, folder / f"{task}-synth.json")
    chosen = {t: Path(p).name for t, p in settings.selected().items()}
    if set(chosen) != {"iaa", "mhr", "quality"}:
        raise RuntimeError(f"the shipped synth models were not all found in {folder}: {chosen}")
    return settings


def plain_map_update(viewer) -> tuple[Callable[[], None], Callable[[], bool]]:
    """``(act, finished)``: napari given new data (a copy of their own) for the predictions
    dock's three map layers, one per event-loop turn; ``finished()`` once all three are."""
    from qtpy.QtCore import QTimer

    from napari_iaa.widgets.predictions import LAYER_CAL, LAYER_DIFF, LAYER_RAW

    maps = [(viewer.layers[n], np.array(viewer.layers[n].data))
            for n in (LAYER_RAW, LAYER_CAL, LAYER_DIFF) if n in viewer.layers]
    done: list[bool] = []

    def act() -> None:
        steps = list(maps)

        def nxt() -> None:
            if steps:
                layer, data = steps.pop(0)
                layer.data = data.copy()
                QTimer.singleShot(0, nxt)
            else:
                done.append(True)
        nxt()

    return act, lambda: bool(done)


def plain_update_maps(probe: StallProbe, viewer, settle_s: float = 1.0) -> dict:
    """Baseline of a later prediction: :func:`plain_map_update` with nothing else running
    (what showing a prediction costs napari itself); the probe's record of it."""
    act, finished = plain_map_update(viewer)
    return probe.measure(act, settle_s=settle_s, until=finished)


def _predict_rows(probe, dock, reps: int, label: str, key: str) -> list[tuple]:
    """First run (creates the map layers) and the median of later runs (update them)."""

    def idle():
        return not dock.busy

    firsts = []
    first = probe.measure(dock.predict_current, settle_s=1.0, until=idle, timeout_s=600)
    if dock.case_tab.last_prediction is None:
        raise RuntimeError("the predictions dock showed no prediction")
    firsts.append(first["max_stall_s"])
    later = [probe.measure(dock.predict_current, settle_s=1.0, until=idle, timeout_s=600)
             for _ in range(reps)]
    stalls = [r["max_stall_s"] for r in later]
    med = float(np.median(stalls))
    # baseline: napari's own cost of the same layer updates
    base = [plain_update_maps(probe, dock.viewer, settle_s=0.6)["max_stall_s"]
            for _ in range(reps)]
    base_s = float(np.median(base))
    extra = {"first": first, "later": later, "later_median_s": med, "baseline_all": base,
             "baseline_s": base_s,
             "call": f"first {fmt_time(first['max_stall_s'])}; one case in "
                     f"{fmt_time(float(np.median([r['ready_s'] for r in later])))}"}
    return [(key, f"predictions running (IAA+MHR+quality), {label}, later runs (median of {reps}); "
                  f"first run {fmt_time(first['max_stall_s'])}", med, extra)]


def _bench_predictions(probe, viewer, review, reps: int, big_label: str, tmp: Path) -> list[tuple]:
    import napari

    from napari_iaa.data import open_dataset, sample_data_path
    from napari_iaa.widgets import ReviewWidget
    from napari_iaa.widgets.predictions import PredictionsWidget

    out = []
    dock = PredictionsWidget(viewer, review=review, settings=_model_settings(), auto=False)
    viewer.window.add_dock_widget(dock, name="Predictions", area="right")
    probe.measure(lambda: None, settle_s=0.3)
    out += _predict_rows(probe, dock, reps, big_label, "predict_large")
    # a sample case (256 x 256) in its own viewer
    v2 = napari.Viewer(show=True)
    rv2 = ReviewWidget(v2)
    v2.window.add_dock_widget(rv2, name="IAA review", area="right")
    ds = open_dataset(sample_data_path("synthetic"))
    small = ds.load(ds.ids[0])
    probe.measure(lambda: rv2.show_case(small), settle_s=0.5, until=lambda: rv2.live is not None)
    dock2 = PredictionsWidget(v2, review=rv2, settings=_model_settings(), auto=False)
    v2.window.add_dock_widget(dock2, name="Predictions", area="right")
    probe.measure(lambda: None, settle_s=0.3)
    shape = "x".join(str(d) for d in np.shape(small.image)[:2])
    out += _predict_rows(probe, dock2, reps, f"sample case {small.n_masks} x {shape}", "predict_sample")
    return out


def set_training(tw, out: Path, name: str) -> None:
    """The benchmark's training run in the training dock ``tw``: one epoch of the synthetic
    sample (40 images), mobilenetv2_050 at 96 px, batch 8, CPU."""
    from napari_iaa.data import sample_data_path

    tw.set_values(data=sample_data_path("synthetic"), task="iaa", backbone="mobilenetv2_050",
                  epochs=1, batch_size=8, image_size=96, device="cpu", out=out, name=name, lr=1e-3)


def ready_to_click(probe, tw) -> None:
    """What a user's click on Start finds: the form's new values painted long before (the
    benchmark sets them just before it measures: their repaint, a composition of the
    window, was counted in the first gap of both the dock's run and the baseline), and
    the focus on the Start button (a text field's blinking cursor composes the window
    twice a second on a software-GL display)."""
    tw.start_button.setFocus()
    probe.measure(lambda: None, settle_s=0.5)


def import_training() -> tuple[Callable[[], None], Callable[[], bool]]:
    """``(act, finished)``: torch, timm and the training package imported in a plain thread
    (what a first run in a process pays before it trains)."""
    import threading

    done: list[bool] = []

    def body() -> None:
        import timm  # noqa: F401
        import torch  # noqa: F401

        import training.fitting  # noqa: F401

        done.append(True)

    return lambda: threading.Thread(target=body, daemon=True).start(), lambda: bool(done)


def plain_fit(tw) -> tuple[Callable[[], None], Callable[[], bool]]:
    """``(act, finished)``: the run set in the dock ``tw`` (see :func:`set_training`), fitted
    by ``training.fit`` in a plain thread: no callback, no progress, nothing shown (the
    training's own cost to the event loop: the cores and the GIL it takes). With the torch
    threads the dock would give it (``run.gui_threads``, where the package has it)."""
    import dataclasses
    import threading

    from napari_iaa.widgets.training import run
    from training.fitting import fit

    config = run.make_config(tw.values())
    if config.threads is None and hasattr(run, "gui_threads"):
        config = dataclasses.replace(config, threads=run.gui_threads())
    done: list[object] = []

    def body() -> None:
        done.append(fit(config))

    return lambda: threading.Thread(target=body, daemon=True).start(), lambda: bool(done)


#: how long a training run's measurement lasts after the fit ends: its aftermath (the
#: last plot, a warning's pop-up fading out 4 s after it came) belongs to it, not to the
#: baseline measured next
TRAIN_SETTLE_S = 5.0


def _bench_training(probe, viewer, reps: int, tmp: Path) -> tuple:
    # the dock napari opens from the plugin menu (napari.yaml): its content scrolls, so a
    # line that appears in it (a warning, the result) relayouts the dock, not the window
    from napari_iaa.widgets.docks.training import TrainingDock

    tw = TrainingDock(viewer)
    viewer.window.add_dock_widget(tw, name="Training", area="right")
    probe.measure(lambda: None, settle_s=0.3)
    act, finished = import_training()
    first = probe.measure(act, settle_s=0.5, until=finished, timeout_s=600)
    runs, base = [], []
    for k in range(max(1, min(reps, 3))):  # the dock and the baseline in turn
        set_training(tw, tmp / f"train{k}", f"bench-iaa-{k}")
        ready_to_click(probe, tw)
        r = probe.measure(tw.start, settle_s=TRAIN_SETTLE_S, until=lambda: not tw.running, timeout_s=900)
        if tw.last_run is None or tw.last_run.get("status") != "done":
            raise RuntimeError(f"training did not finish: {tw.last_run}")
        runs.append(r)
        set_training(tw, tmp / f"plain{k}", f"bench-plain-{k}")
        ready_to_click(probe, tw)
        act, finished = plain_fit(tw)
        base.append(probe.measure(act, settle_s=1.0, until=finished, timeout_s=900))
    stalls = [r["max_stall_s"] for r in runs]
    med = float(np.median(stalls))
    base_s = float(np.median([r["max_stall_s"] for r in base]))
    return ("training", f"training running (1 epoch, 40 images, mobilenetv2_050 at 96 px; median of {len(runs)})",
            med, {"runs": runs, "median_s": med, "baseline_runs": base, "baseline_s": base_s,
                  "import_first": first,
                  "call": f"one run {fmt_time(float(np.median([r['ready_s'] for r in runs])))}; "
                          f"importing torch/timm first {fmt_time(first['max_stall_s'])}"})


if __name__ == "__main__":
    sys.exit(main())
