"""The click of a prediction beside napari creating an activity bar (issue 16, a diagnosis).

Runs ``timeline_predictions.py`` (its gap lines: each event-loop gap over 15 ms, the GUI
thread's CPU time in it, the dock's callbacks in it, ``Activity._open`` being our bar's
creation), then, in the same process and window, napari creating an activity-dock bar
(``napari.utils.progress``) from a turn of its own and closing it 0.3 s later, ``REPS``
times (environment, default 3): the baseline. The gap that begins at 0.000 s of each run
holds the click.

    REPS=5 env -u PYTHONDONTWRITEBYTECODE xvfb-run -a python benchmarks/timeline_click.py --reps 5
"""
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timeline_predictions as tp

held: dict = {}


class _Probe(tp.StallProbe):
    """The timeline's probe, kept for the baseline, with the GUI thread's CPU per tick."""

    def __init__(self, app):
        super().__init__(app)
        held["probe"] = self
        self.cpu: list[float] = []
        self.timer.timeout.connect(lambda: self.cpu.append(time.thread_time()))


def _napari_bar(probe, i: int) -> None:
    from napari.utils import progress
    from qtpy.QtCore import QTimer

    state: dict = {}

    def act() -> None:
        bar = progress(total=4, desc="napari bar")

        def close() -> None:
            bar.close()
            state["done"] = True

        QTimer.singleShot(300, close)

    probe.cpu = []
    c0, t0 = time.thread_time(), time.perf_counter()
    probe.measure(act, settle_s=0.5, until=lambda: state.get("done"))
    ticks = np.array([t0, *probe.ticks])
    gaps = np.diff(ticks)
    cpu = np.diff(np.array([c0, *probe.cpu[:len(probe.ticks)]]))
    print(f"\n== napari creating an activity bar {i + 1}: longest stall {gaps.max() * 1e3:.0f} ms")
    for j in np.flatnonzero(gaps > 0.015):
        if ticks[j] - t0 < 0.25:
            print(f"  gap {gaps[j] * 1e3:5.1f} ms (GUI CPU {cpu[j] * 1e3:5.1f} ms) at "
                  f"{ticks[j] - t0:6.3f} s: napari bar")


_exit = os._exit


def _finish(code: int) -> None:
    for i in range(int(os.environ.get("REPS", "3"))):
        _napari_bar(held["probe"], i)
    sys.stdout.flush()
    _exit(code)


if __name__ == "__main__":
    tp.StallProbe = _Probe
    os._exit = _finish  # the timeline ends with os._exit: the baseline runs first
    tp.main(sys.argv[1:])
