"""The pieces every dock shares: the one worker helper, combo refill, formatting."""

from __future__ import annotations

import os
import threading

import pytest

from napari_iaa.widgets._common import (
    Progress,
    fmt_number,
    fmt_value,
    refill_combo,
    start_worker,
)


@pytest.mark.parametrize(
    ("value", "spec", "want"),
    [(0.91234, ".3f", "0.912"), (float("nan"), ".3f", "—"), (None, ".3f", "—"),
     (float("inf"), ".2f", "—"), ("text", ".3f", "—"), (3, ".1f", "3.0")],
)
def test_fmt_number(value, spec, want):
    assert fmt_number(value, spec) == want


@pytest.mark.parametrize(
    ("value", "want"),
    [(1.23456e-4, "0.0001235"), ("benign", "benign"), (float("nan"), "—"), (12, "12"),
     (True, "True")],
)
def test_fmt_value(value, want):
    assert fmt_value(value) == want


def test_refill_combo_keeps_choice_and_signals_only_a_change(qtbot):
    from qtpy.QtWidgets import QComboBox

    combo = QComboBox()
    refill_combo(combo, ["a", "b", "c"])
    combo.setCurrentIndex(1)
    heard: list[int] = []
    combo.currentIndexChanged.connect(heard.append)
    refill_combo(combo, ["x", "b", "y", "z"])
    assert combo.currentText() == "b"
    assert heard == []  # the choice did not change: nobody is told
    refill_combo(combo, ["p", "q"])  # "b" is gone: the fallback is chosen and announced
    assert combo.currentText() == "p"
    assert heard == [0]
    refill_combo(combo, [("model one", "/m/1"), ("model two", "/m/2")], keep="/m/2")
    assert combo.currentData() == "/m/2"


def _count_to(n):
    for i in range(n):
        yield Progress(i + 1, n, f"step {i + 1}")
    return "finished"


def test_start_worker_delivers_typed_messages_on_the_gui_thread(qtbot, monkeypatch):
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    got: list[Progress] = []
    threads: set[int] = set()
    results: list[str] = []

    def on_yield(msg):
        got.append(msg)
        threads.add(threading.get_ident())

    finished: list[bool] = []
    start_worker(_count_to, 5, on_yield=on_yield, on_return=results.append,
                 on_finish=lambda: finished.append(True), activity="counting")
    qtbot.waitUntil(lambda: finished == [True], timeout=10_000)
    assert results == ["finished"]
    assert [m.done for m in got] == [1, 2, 3, 4, 5]
    assert all(isinstance(m, Progress) for m in got)
    assert threads == {threading.get_ident()}  # slots run on the GUI thread


def test_start_worker_reports_errors_instead_of_raising(qtbot, monkeypatch):
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    errors: list[BaseException] = []

    def boom():
        raise ValueError("bad file x.png")

    finished: list[bool] = []
    start_worker(boom, on_error=errors.append, on_finish=lambda: finished.append(True))
    qtbot.waitUntil(lambda: finished == [True], timeout=10_000)
    assert len(errors) == 1
    assert "x.png" in str(errors[0])


def test_no_threads_runs_synchronously(qtbot, monkeypatch):
    monkeypatch.setenv("NAPARI_IAA_NO_THREADS", "1")
    seen: list[int] = []
    start_worker(lambda: seen.append(threading.get_ident()))
    assert seen == [threading.get_ident()]  # done before start_worker returned
    monkeypatch.setenv("NAPARI_IAA_NO_THREADS", "0")  # "0" is off, as for every switch
    seen.clear()
    done: list[bool] = []
    start_worker(lambda: seen.append(threading.get_ident()), on_finish=lambda: done.append(True))
    qtbot.waitUntil(lambda: bool(done), timeout=10_000)
    assert seen and seen[0] != threading.get_ident()


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no OS thread priorities")
def test_low_priority_work_runs_niced_off_napari_pool(qtbot, monkeypatch):
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    out: list[tuple[int, int]] = []

    def job():
        tid = threading.get_native_id()
        return tid, os.getpriority(os.PRIO_PROCESS, tid)

    gui_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    w = start_worker(job, on_return=out.append, low_priority=True)
    qtbot.waitUntil(lambda: bool(out), timeout=10_000)
    tid, nice = out[0]
    assert tid != threading.get_native_id()
    # 10 below the GUI (a napari run under `nice -n 19`: as low as it goes, never above it)
    assert nice == min(19, gui_nice + 10)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == gui_nice  # untouched
    del w
