"""Workers never freeze the GUI, and stop when their dock, their viewer or the script ends."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.gui

# Two of our workers busy in Python while the GUI thread converts a large QImage: Qt 5
# splits the conversion over its global thread pool and waits with the GIL held, so
# workers on that pool (here it has two threads, as on a two-core laptop) froze it for good.
_FREEZE = textwrap.dedent("""
    import threading, time
    from qtpy.QtCore import QThreadPool
    from qtpy.QtGui import QImage
    from qtpy.QtWidgets import QApplication
    from napari_iaa.widgets._common.workers import start_worker

    app = QApplication([])
    QThreadPool.globalInstance().setMaxThreadCount(2)
    spinning = threading.Semaphore(0)

    def spin(seconds):
        spinning.release()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass

    workers = [start_worker(spin, 2.0) for _ in range(2)]
    for _ in workers:
        spinning.acquire(timeout=10)  # both busy in Python before the conversion
    img = QImage(3000, 3000, QImage.Format_ARGB32)
    img.fill(0)
    for _ in range(3):
        img.convertToFormat(QImage.Format_RGB888)
    print("converted", flush=True)
""")

# A script that exits while a worker runs: the worker is told to stop and waited for.
_EXIT = textwrap.dedent("""
    import threading
    from qtpy.QtWidgets import QApplication
    from napari_iaa.widgets._common.workers import start_worker

    app = QApplication([])
    started, stop = threading.Event(), threading.Event()

    def job():
        started.set()
        stop.wait(60)
        print("job saw the stop" if stop.is_set() else "job timed out", flush=True)
        return 1

    start_worker(job, on_stop=stop.set, on_return=print)
    started.wait(10)
    print("script ends", flush=True)
""")


def _run(script: str, api: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_API=api, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("api", ["pyqt5", "pyqt6"])
def test_workers_leave_qts_global_pool_to_qt(api):
    pytest.importorskip({"pyqt5": "PyQt5", "pyqt6": "PyQt6"}[api])
    try:
        res = _run(_FREEZE, api)
    except subprocess.TimeoutExpired:
        pytest.fail("the GUI thread froze converting an image while workers ran")
    assert res.returncode == 0 and "converted" in res.stdout, res.stderr


@pytest.mark.parametrize("api", ["pyqt5", "pyqt6"])
def test_script_exiting_stops_and_waits_for_its_worker(api):
    pytest.importorskip({"pyqt5": "PyQt5", "pyqt6": "PyQt6"}[api])
    res = _run(_EXIT, api)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["script ends", "job saw the stop"], res.stdout
    assert "has been deleted" not in res.stderr and "Traceback" not in res.stderr, res.stderr


@pytest.fixture
def training(make_napari_viewer, monkeypatch, tmp_path, synthetic_root):
    pytest.importorskip("torch")
    pytest.importorskip("timm")
    from napari_iaa.widgets._common import model_events
    from napari_iaa.widgets.training import TrainingWidget

    monkeypatch.setenv("NAPARI_IAA_MODELS", str(tmp_path / "user-models"))
    monkeypatch.setattr(model_events, "_SHARED_REGISTRY", None)
    viewer = make_napari_viewer()
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Training")
    # a long run: it ends only when told to stop
    widget.set_values(data=synthetic_root, task="iaa", backbone="test_resnet", epochs=500,
                      batch_size=2, size=32, device="cpu", out=tmp_path / "out",
                      name="closed", lr=1e-3)
    return viewer, widget


def _start_and_wait_for_a_step(widget, qtbot):
    widget.start()  # the fit's worker starts on the turn after napari's activity bar
    qtbot.waitUntil(lambda: len(widget.curves.loss_x) >= 1, timeout=300_000)
    return widget.worker


def _ended_quietly(worker, qtbot, capfd, error_log, finished):
    from napari_iaa.widgets._common.workers import wait_for_workers

    assert worker.abort_requested, "the worker was told to stop"
    assert wait_for_workers(120), "the fit stopped at its next step"
    qtbot.wait(200)  # the worker's queued signals reach the (deleted) dock's slots, or not
    err = capfd.readouterr().err
    assert "has been deleted" not in err and "Traceback" not in err, err
    assert not error_log
    assert not finished, "nothing of the closed dock was called"


def test_closing_the_viewer_stops_the_training(training, qtbot, capfd, error_log):
    viewer, widget = training
    finished = []
    widget.run_finished.connect(finished.append)
    worker = _start_and_wait_for_a_step(widget, qtbot)
    viewer.close()
    qtbot.waitUntil(lambda: worker.abort_requested, timeout=10_000)  # once the window is deleted
    _ended_quietly(worker, qtbot, capfd, error_log, finished)


def test_closing_the_dock_stops_the_training(training, qtbot, capfd, error_log):
    viewer, widget = training
    finished = []
    widget.run_finished.connect(finished.append)
    worker = _start_and_wait_for_a_step(widget, qtbot)
    viewer.window.remove_dock_widget(widget)  # napari's close button on the dock
    _ended_quietly(worker, qtbot, capfd, error_log, finished)


def test_closing_the_dock_before_the_fit_starts_stops_it(training, qtbot):
    """The fit starts a turn after the click (after napari's activity bar): a dock closed
    in between gets a fit that ends at once, as cancelled."""
    viewer, widget = training
    widget.start()
    viewer.window.remove_dock_widget(widget)
    qtbot.waitUntil(lambda: not widget.running, timeout=120_000)
    assert widget.last_run is not None and widget.last_run["status"] == "cancelled"
    assert not widget.curves.loss_x


def test_closing_the_review_dock_stops_its_reliability_job(make_napari_viewer, qtbot, capfd,
                                                            error_log, synthetic_root,
                                                            monkeypatch):
    """LOO Dice / STAPLE of a large case run in a worker owned by the dock: closing the
    dock drops its result (nothing of the closed dock is called) and leaves no job."""
    import threading

    from napari_iaa.data import open_dataset
    from napari_iaa.widgets import ReviewWidget
    from napari_iaa.widgets._common.workers import wait_for_workers
    from napari_iaa.widgets.review import reliability

    started, release = threading.Event(), threading.Event()
    real = reliability.compute_reliability

    def slow(*args, **kwargs):  # a long STAPLE: runs until the test lets it finish
        started.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(reliability, "compute_reliability", slow)
    viewer = make_napari_viewer()
    widget = ReviewWidget(viewer)
    widget.slow_sync_max_pixels = 0  # every case's reliability in the worker
    viewer.window.add_dock_widget(widget, name="Review")
    results = []
    monkeypatch.setattr(widget.reliability, "_on_result", results.append)
    assert widget.set_dataset(open_dataset(synthetic_root), source=str(synthetic_root))
    qtbot.waitUntil(started.is_set, timeout=20_000)
    assert widget.reliability.worker is not None
    viewer.window.remove_dock_widget(widget)  # napari's close button on the dock
    release.set()
    assert wait_for_workers(60)
    qtbot.wait(200)  # a result queued by the worker would reach the slot now, or not
    assert results == [], "the closed dock's slot was called"
    assert widget.reliability.worker is None and not widget.reliability._running
    err = capfd.readouterr().err
    assert "has been deleted" not in err and "Traceback" not in err, err
    assert not error_log


def test_a_stopped_generator_job_runs_its_cleanup_at_once_in_its_own_thread(qtbot):
    """A dock closed mid-job: the job's ``finally`` (a pool's shutdown, a file closed) runs
    where the job stopped, in its thread, not whenever the garbage collector finds it."""
    import threading

    from qtpy.QtWidgets import QWidget

    from napari_iaa.widgets._common.workers import start_worker, stop_workers

    owner = QWidget()
    qtbot.addWidget(owner)
    started, release, cleaned = threading.Event(), threading.Event(), threading.Event()
    where: list[int] = []
    after_stop: list[int] = []

    def job():
        try:
            yield 1
            started.set()
            release.wait(30)  # the test stops the job here
            yield 2
            after_stop.append(3)  # never reached: the job is closed at ``yield 2``
            yield 3
        finally:
            where.append(threading.get_ident())
            cleaned.set()

    worker = start_worker(job, owner=owner)
    qtbot.waitUntil(started.is_set, timeout=10_000)
    assert stop_workers(owner) == 1
    release.set()
    qtbot.waitUntil(cleaned.is_set, timeout=10_000)
    assert where and where[0] != threading.get_ident()  # in the job's thread, off the GUI
    assert after_stop == []
    assert worker is not None  # held: only closing, not the collector, can run the finally
