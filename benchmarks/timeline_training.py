"""Where a training-dock run's event-loop gaps come from: a timeline (issue 16, a diagnosis).

Not a benchmark with a target (``bench_gui.py --rows train`` is). One process (under
``xvfb-run -a`` when no display) with a viewer and the training dock runs the benchmark's
training (:func:`bench_gui.set_training`: one epoch of the synthetic sample) ``--reps``
times, each followed by the same fit in a plain thread with nothing shown (the baseline,
:func:`bench_gui.plain_fit`); torch and timm are imported in a thread first, on a line of
their own. Each gap over 15 ms is printed by :class:`_timeline.Timeline`: its wall time,
the GUI thread's and the other threads' CPU time in it, garbage collections and the dock's
callbacks that ran in it. ``--why`` samples the GUI thread's stack and the other threads'
(the training) while no tick has come for 30 ms (:class:`_stallwatch.StallWatch`).
``--threads N`` sets the fit's torch threads (``FitConfig.threads``) for both, ``--epochs``
the epochs of each run.

    env -u PYTHONDONTWRITEBYTECODE nice -n -15 xvfb-run -a python benchmarks/timeline_training.py [--reps 2] [--why]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stallwatch import StallWatch
from _timeline import Timeline, trace
from bench_gui import TRAIN_SETTLE_S, StallProbe, import_training, plain_fit, set_training

#: the dock's callbacks put on the timeline: (module, class, methods)
_TRACED = [
    ("napari_iaa.widgets.training.dock", "TrainingWidget",
     ["start", "_on_message", "_apply_progress", "_on_returned", "_on_errored",
      "_on_worker_finished", "_log", "_advise", "_show_plot"]),
    ("napari_iaa.widgets._common.plots", "AsyncPlot", ["submit", "show_image", "_on_done"]),
    ("napari_iaa.widgets._common.workers", "Activity", ["_open", "_apply", "close"]),
    ("napari_iaa.widgets.training.dock", None, ["run_fit", "register", "backbone_problem"]),
    ("training.fitting", None, ["fit", "_prepare", "_train", "_evaluate_best"]),
]


def _set_threads(n: int) -> None:
    """Every config the dock (and :func:`bench_gui.plain_fit`) makes gets ``threads=n``."""
    import dataclasses

    from napari_iaa.widgets.training import dock, run

    make = run.make_config

    def with_threads(vals):
        return dataclasses.replace(make(vals), threads=n)

    run.make_config = dock.make_config = with_threads


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--why", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=1, help="epochs per run (the benchmark's: 1)")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="napari-iaa-timeline-training-"))
    os.environ["NAPARI_IAA_MODELS"] = str(tmp / "registry")
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_iaa.widgets.training import TrainingWidget

    viewer = napari.Viewer(show=True)
    probe = StallProbe(QApplication.instance())
    timeline = Timeline(probe)
    trace(timeline.log, _TRACED)  # before the dock connects its methods to signals
    tw = TrainingWidget(viewer)
    viewer.window.add_dock_widget(tw, name="Training", area="right")
    probe.measure(lambda: None, settle_s=1.0)
    watch = None
    if args.why:
        watch = StallWatch()
        probe.timer.timeout.connect(watch.tick)
        watch.start()
    act, finished = import_training()
    timeline.run("importing torch, timm and training in a thread", act, until=finished, timeout_s=600)

    if args.threads:  # not a row of the form: set on the config the dock makes
        _set_threads(args.threads)

    def settings(out: str, name: str) -> None:
        set_training(tw, tmp / out, name)
        tw.set_values(epochs=args.epochs)

    for k in range(args.reps):
        settings(f"dock{k}", f"timeline-dock-{k}")
        timeline.run(f"training in the dock {k + 1}", tw.start, until=lambda: not tw.running,
                     settle_s=TRAIN_SETTLE_S,
                     timeout_s=900)
        settings(f"plain{k}", f"timeline-plain-{k}")
        timeline.run(f"the same fit in a plain thread {k + 1}", *plain_fit(tw), timeout_s=900)
    if watch is not None:
        watch.stop()
        sys.stdout.flush()
        watch.report(top=20)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
