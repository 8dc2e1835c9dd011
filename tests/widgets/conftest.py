"""Fixtures of the widget tests: a tiny synthetic data set, a review dock, a stall meter."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A tiny synthetic IMA++-layout data set (8 cases, 96x96, 3-5 annotators)."""
    from napari_iaa.data import generate_synthetic_dataset

    out = tmp_path_factory.mktemp("widgets") / "synthetic"
    return Path(
        generate_synthetic_dataset(out, n=8, seed=3, size=(96, 96), n_annotators=(3, 5))
    )


@pytest.fixture
def synthetic_copy(synthetic_root, tmp_path) -> Path:
    """A private copy of the synthetic data set (tests that write beside the masks)."""
    dst = tmp_path / "synthetic"
    # without a review store an earlier test's dock left in the shared set
    shutil.copytree(synthetic_root, dst, ignore=shutil.ignore_patterns(".napari-iaa"))
    return dst


@pytest.fixture
def review(make_napari_viewer, qtbot):
    """A viewer with the review dock (not yet on a data set)."""
    from napari_iaa.widgets import ReviewWidget

    viewer = make_napari_viewer()
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Review")
    widget.unsaved_policy = "discard"
    return viewer, widget


def measure_event_loop_stall(run, wait, qtbot, interval_ms: int = 5,
                             timeout_ms: int = 120_000) -> float:
    """Longest gap (ms) between ticks of a ``QTimer`` heartbeat while ``run`` works.

    ``run`` starts the work; ``wait`` says when it is finished. The figure is the event
    loop's worst stall (a tick interval of ``interval_ms`` is the floor).
    """
    from qtpy.QtCore import QTimer

    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000.0)
        last[0] = now

    timer = QTimer()
    timer.setInterval(interval_ms)
    timer.timeout.connect(tick)
    timer.start()
    last[0] = time.perf_counter()
    try:
        run()
        qtbot.waitUntil(wait, timeout=timeout_ms)
    finally:
        timer.stop()
    return max(gaps) if gaps else math.nan


@pytest.fixture
def stall_meter(qtbot):
    """``stall_meter(run, wait, interval_ms=5, timeout_ms=120_000)``: the longest event-loop
    stall (ms) while ``run`` works, until ``wait()`` is true."""

    def measure(run, wait, interval_ms: int = 5, timeout_ms: int = 120_000) -> float:
        return measure_event_loop_stall(run, wait, qtbot, interval_ms, timeout_ms)

    return measure
