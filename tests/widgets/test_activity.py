"""A long job's bar in napari's activity dock: made after the click, fed, closed (issue 16).

napari adds a bar with a synchronous repaint of the window and ``processEvents`` calls:
``start_worker(activity=...)`` must leave that to the event loop's next turn, so the click
that starts a job (a prediction, scoring a data set, training) neither pays for it nor runs
other pending events inside its handler (the bar comes from a timer, after the click's own
repaint), while the user still sees the bar, its progress and its end.
"""

from __future__ import annotations

import threading

import pytest
from qtpy.QtCore import QTimer

from napari_iaa.widgets._common import Activity, Progress, start_worker
from napari_iaa.widgets._common import activity as activity_module
from napari_iaa.widgets._common.workers import stop_workers

pytestmark = pytest.mark.gui


def _bars(desc: str) -> list:
    """napari's progress objects (what its activity dock shows) with this description."""
    from napari.utils import progress

    return [p for p in progress._all_instances if desc in (p.desc or "")]


def _shown(viewer, desc: str) -> list:
    """The activity dock's bars whose label shows ``desc``."""
    from napari._qt.widgets.qt_progress_bar import QtLabeledProgressBar

    dialog = viewer.window._qt_window._activity_dialog
    return [b for b in dialog.findChildren(QtLabeledProgressBar)
            if desc in b.description_label.text()]


def _past_the_bar_timer(qtbot) -> None:
    """Let the event loop run past the bar's timer (timers fire in the order they fall due:
    a longer one started now fires after it)."""
    fired: list[bool] = []
    QTimer.singleShot(2 * activity_module.SHOW_AFTER_MS + 10, lambda: fired.append(True))
    qtbot.waitUntil(lambda: bool(fired), timeout=5000)


def test_the_click_returns_before_the_bar_exists_and_the_bar_follows_the_job(
        make_napari_viewer, qtbot, monkeypatch):
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    viewer = make_napari_viewer()
    release = threading.Event()

    def job():
        yield Progress(1, 3, "first step")
        release.wait(30)
        yield Progress(2, 3, "second step")
        yield Progress(3, 3, "last step")
        return "done"

    pending: list[bool] = []
    QTimer.singleShot(0, lambda: pending.append(True))  # an event waiting behind the click
    finished: list[bool] = []
    returned: list[str] = []
    start_worker(job, activity="counting things", on_return=returned.append,
                 on_finish=lambda: finished.append(True))
    # the click's handler ran nothing else and made no bar
    assert pending == []
    assert _bars("counting things") == []
    qtbot.waitUntil(lambda: len(_bars("counting") + _bars("step")) == 1, timeout=10_000)
    (bar,) = _bars("counting") + _bars("step")
    qtbot.waitUntil(lambda: bool(_shown(viewer, "first step")), timeout=10_000)  # the job's text
    release.set()
    qtbot.waitUntil(lambda: bool(finished), timeout=10_000)
    assert returned == ["done"]
    # the last message shown, then the bar removed from the dock
    assert (bar.n, bar.total) == (3, 3) and bar.desc.startswith("last step")
    qtbot.waitUntil(lambda: not _bars("step") and not _shown(viewer, "step"), timeout=10_000)


def test_a_stopped_job_closes_its_bar(make_napari_viewer, qtbot, monkeypatch):
    from qtpy.QtWidgets import QWidget

    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    viewer = make_napari_viewer()
    owner = QWidget()
    qtbot.addWidget(owner)
    cleaned: list[bool] = []
    started, release = threading.Event(), threading.Event()

    def job():
        started.set()
        try:
            for i in range(1000):
                yield Progress(i, 1000, "long job")
                release.wait(0.05)
        finally:
            cleaned.append(True)

    start_worker(job, activity="long job", owner=owner)
    qtbot.waitUntil(lambda: started.is_set() and bool(_shown(viewer, "long job")), timeout=10_000)
    assert stop_workers(owner) == 1  # the dock's cancel (or the dock closed)
    release.set()
    qtbot.waitUntil(lambda: bool(cleaned) and not _bars("long job"), timeout=10_000)
    qtbot.waitUntil(lambda: not _shown(viewer, "long job"), timeout=10_000)


def test_a_failing_job_reports_and_closes_its_bar(make_napari_viewer, qtbot, monkeypatch):
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    make_napari_viewer()
    release = threading.Event()

    def job():
        yield Progress(1, 2, "failing job")
        release.wait(30)
        raise ValueError("bad slice 7")

    errors: list[BaseException] = []
    start_worker(job, activity="failing job", on_error=errors.append)
    qtbot.waitUntil(lambda: bool(_bars("failing job")), timeout=10_000)
    release.set()
    qtbot.waitUntil(lambda: bool(errors), timeout=10_000)
    assert "bad slice 7" in str(errors[0])
    qtbot.waitUntil(lambda: not _bars("failing job"), timeout=10_000)


def test_a_job_that_ends_in_the_call_leaves_no_bar(make_napari_viewer, qtbot, monkeypatch):
    monkeypatch.setenv("NAPARI_IAA_NO_THREADS", "1")
    make_napari_viewer()
    done: list[bool] = []
    start_worker(lambda: 1, activity="quick job", on_finish=lambda: done.append(True))
    assert done == [True]
    _past_the_bar_timer(qtbot)
    assert _bars("quick job") == []


def test_a_short_job_with_a_delay_shows_no_bar_and_a_long_one_does(
        make_napari_viewer, qtbot, monkeypatch):
    """A later prediction (its dock shows its progress) makes napari's bar only if it is
    still running after ``activity_after_ms``: a short one costs no bar at all."""
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    viewer = make_napari_viewer()
    done: list[bool] = []
    start_worker(lambda: 1, activity="short prediction", activity_after_ms=300,
                 on_finish=lambda: done.append(True))
    qtbot.waitUntil(lambda: bool(done), timeout=10_000)
    passed: list[bool] = []
    QTimer.singleShot(400, lambda: passed.append(True))  # past the bar's timer
    qtbot.waitUntil(lambda: bool(passed), timeout=5000)
    assert _bars("short prediction") == [] and not _shown(viewer, "short prediction")

    release = threading.Event()

    def slow():
        yield Progress(1, 2, "slow prediction")
        release.wait(30)
        yield Progress(2, 2, "slow prediction")

    finished: list[bool] = []
    start_worker(slow, activity="slow prediction", activity_after_ms=300,
                 on_finish=lambda: finished.append(True))
    assert _bars("slow prediction") == []
    qtbot.waitUntil(lambda: bool(_shown(viewer, "slow prediction")), timeout=10_000)
    release.set()
    qtbot.waitUntil(lambda: bool(finished) and not _bars("slow prediction"), timeout=10_000)


def test_an_update_nested_in_napari_s_processevents_waits_for_the_interval(
        make_napari_viewer, qtbot, monkeypatch):
    """napari's bar update runs processEvents, where the dock's refresh timer may deliver
    the next update: it must wait for the interval, not re-enter the bar's update."""
    make_napari_viewer()
    act = Activity("nested updates", min_interval=5.0)
    qtbot.waitUntil(lambda: act.bar is not None, timeout=10_000)
    applied: list[Progress] = []
    real_apply = Activity._apply

    def apply_and_nest(self):
        applied.append(self._pending)
        real_apply(self)
        if len(applied) == 1:  # as if processEvents delivered the next message in here
            self.update(Progress(2, 3, "second"))

    monkeypatch.setattr(Activity, "_apply", apply_and_nest)
    act.update(Progress(1, 3, "first"))
    assert [m.done for m in applied] == [1]  # the nested one waits (shown at the close)
    act.close()
    assert [m.done for m in applied] == [1, 2]


def test_messages_before_the_bar_are_shown_on_it(make_napari_viewer, qtbot):
    """A dock feeding its own activity (training) may report before the bar is made."""
    viewer = make_napari_viewer()
    activity = Activity("training mhr")
    activity.update(Progress(2, 5, "epoch 2/5"))
    assert activity.bar is None and _bars("training mhr") == []
    qtbot.waitUntil(lambda: activity.bar is not None and activity.bar.n == 2, timeout=10_000)
    assert activity.bar.total == 5 and _shown(viewer, "epoch 2/5")
    bar = activity.bar
    activity.close()
    assert bar not in _bars("")


def test_a_job_ending_while_napari_adds_the_bar_leaves_none(make_napari_viewer, qtbot):
    """napari processes pending events while it adds a bar: the job's end (its close) may
    run in there, before the bar is handed back."""
    from napari.utils import progress

    make_napari_viewer()
    activity = Activity("ends early")

    def on_change(event):
        if any("ends early" in p.desc for p in event.added):
            activity.close()  # the worker's end, delivered inside napari's processEvents

    progress._all_instances.events.changed.connect(on_change)
    try:
        _past_the_bar_timer(qtbot)
        _past_the_bar_timer(qtbot)
    finally:
        progress._all_instances.events.changed.disconnect(on_change)
    assert _bars("ends early") == [] and activity.bar is None


def test_the_bar_in_the_activity_dock_moves_with_the_job(make_napari_viewer, qtbot, monkeypatch):
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    viewer = make_napari_viewer()
    step = threading.Event()

    def job():
        yield Progress(1, 4, "moving one")
        step.wait(30)
        yield Progress(3, 4, "moving three")
        step.clear()
        step.wait(30)
        return "done"

    finished: list[bool] = []
    start_worker(job, activity="moving", on_finish=lambda: finished.append(True))
    qtbot.waitUntil(lambda: bool(_shown(viewer, "moving one")), timeout=10_000)
    (shown,) = _shown(viewer, "moving one")
    assert (shown.qt_progress_bar.value(), shown.qt_progress_bar.maximum()) == (1, 4)
    step.set()
    qtbot.waitUntil(lambda: bool(_shown(viewer, "moving three")), timeout=10_000)
    qtbot.waitUntil(lambda: shown.qt_progress_bar.value() == 3, timeout=10_000)
    step.set()
    qtbot.waitUntil(lambda: bool(finished), timeout=10_000)


def test_the_job_after_the_bar_starts_on_a_later_turn(make_napari_viewer, qtbot):
    """``Activity(then=...)``: called once napari's bar exists, outside napari's adding of
    it (whose processEvents would otherwise run it there), and even when no bar is made."""
    make_napari_viewer()
    seen: list[tuple] = []
    act = Activity("bar first", then=lambda: seen.append((act.bar is not None, opening)))
    opening = False
    real_make = act._make_bar

    def make() -> None:
        nonlocal opening
        opening = True
        try:
            real_make()
        finally:
            opening = False

    act._make_bar = make
    assert seen == []  # not in the call
    qtbot.waitUntil(lambda: bool(seen), timeout=10_000)
    assert seen == [(True, False)]  # the bar was there, napari's adding was over
    act.close()
    ended: list[bool] = []
    gone = Activity("never shown", then=lambda: ended.append(gone.bar is None))
    gone.close()  # the job ended before the bar
    qtbot.waitUntil(lambda: bool(ended), timeout=10_000)
    assert ended == [True] and not _bars("never shown")


def test_napari_indicator_is_held_still_on_a_software_renderer(make_napari_viewer, qtbot,
                                                                monkeypatch):
    """On a software-GL display napari's 33-frame-a-second GIF composes the window again at
    every frame: our bars stop it (still shown) and their updates move it a frame."""
    from qtpy.QtGui import QMovie

    from napari_iaa.widgets._common import indicator

    assert indicator.is_software_renderer("llvmpipe (LLVM 15.0.6, 256 bits)")
    assert indicator.is_software_renderer("Microsoft Basic Render Driver, GDI Generic")
    assert not indicator.is_software_renderer("NVIDIA GeForce RTX 3060/PCIe/SSE2")
    assert not indicator.is_software_renderer("Mesa Intel(R) UHD Graphics 620 (KBL GT2)")
    viewer = make_napari_viewer(show=True)
    label = viewer.window._qt_window._activity_dialog._toggleButton._inProgressIndicator
    for software in (False, True):
        monkeypatch.setattr(indicator, "_software", software)
        monkeypatch.setattr(indicator, "STEP_EVERY_S", 0.0)
        act = Activity(f"software {software}")
        qtbot.waitUntil(lambda act=act: act.bar is not None, timeout=10_000)
        running = label.movie().state() == QMovie.MovieState.Running
        assert label.isVisible()
        assert running is not software  # napari's animation only where composing is cheap
        if software:
            frame = label.movie().currentFrameNumber()
            act.update(Progress(1, 4, "a step"))
            assert label.movie().currentFrameNumber() != frame
            assert label.movie().state() == QMovie.MovieState.NotRunning
        act.close()
        qtbot.waitUntil(lambda: not label.isVisible(), timeout=10_000)


def test_napari_s_gif_shows_no_frame_while_napari_adds_our_bar(make_napari_viewer, qtbot,
                                                               monkeypatch):
    """napari starts its GIF and then processes events three times while it adds a bar: on a
    software-GL display the GIF is held from its start (no frame in there: each composes
    the window); a bar added by someone else afterwards animates it as napari does."""
    from napari.utils import progress
    from qtpy.QtGui import QMovie

    from napari_iaa.widgets._common import indicator

    viewer = make_napari_viewer(show=True)
    label = viewer.window._qt_window._activity_dialog._toggleButton._inProgressIndicator
    monkeypatch.setattr(indicator, "_software", True)
    frames: list[int] = []
    label.movie().frameChanged.connect(frames.append)
    act = Activity("held from its start")
    qtbot.waitUntil(lambda: act.bar is not None, timeout=10_000)
    assert label.isVisible() and label.movie().state() == QMovie.MovieState.NotRunning
    assert len(frames) <= 1  # its first frame only
    act.close()
    qtbot.waitUntil(lambda: not label.isVisible(), timeout=10_000)
    other = progress(total=3, desc="another plugin's bar")  # not ours: napari's own way
    try:
        assert label.movie().state() == QMovie.MovieState.Running
    finally:
        other.close()


def test_napari_s_bar_is_painted_with_the_next_repaint(make_napari_viewer, qtbot):
    """napari's bar repaints itself at once on a new value (a composition of the whole
    window on software GL): ours is set with its updates off, and a message kept by
    ``note`` is shown when the bar closes."""
    from napari_iaa.widgets._common.paint import napari_bar_widget, painted_later

    make_napari_viewer()
    act = Activity("painted later", min_interval=0.0)
    qtbot.waitUntil(lambda: act.bar is not None, timeout=10_000)
    qbar = napari_bar_widget(act.bar)
    assert qbar is not None and qbar.updatesEnabled()
    seen: list[tuple[int, bool]] = []
    qbar.valueChanged.connect(lambda v: seen.append((v, qbar.updatesEnabled())))
    act.update(Progress(2, 10))
    assert seen == [(2, False)] and qbar.updatesEnabled()  # set held, then released
    bar = act.bar
    act.note(Progress(10, 10))  # a job's end: nothing shown in the call
    assert bar.n == 2
    act.close()
    assert (bar.n, bar.total) == (10, 10)
    with painted_later(None):  # nothing to hold: a no-op
        pass


def test_updates_do_not_search_the_window_tree(make_napari_viewer, qtbot, monkeypatch):
    """Each Qt call gives the GIL away and waits to get it back: beside a fit running Python
    code one search of every window took 200-300 ms. napari's bar and indicator are found
    when the bar is added (before its job starts); the updates use what was found."""
    from qtpy.QtWidgets import QApplication

    from napari_iaa.widgets._common import indicator

    viewer = make_napari_viewer(show=True)
    label = viewer.window._qt_window._activity_dialog._toggleButton._inProgressIndicator
    monkeypatch.setattr(indicator, "_software", True)
    monkeypatch.setattr(indicator, "STEP_EVERY_S", 0.0)
    act = Activity("found once", min_interval=0.0)
    qtbot.waitUntil(lambda: act.bar is not None, timeout=10_000)
    searches: list[int] = []
    real = QApplication.topLevelWidgets
    monkeypatch.setattr(QApplication, "topLevelWidgets",
                        staticmethod(lambda: searches.append(1) or real()))
    frame = label.movie().currentFrameNumber()
    act.update(Progress(1, 4, "one"))
    act.update(Progress(2, 4, "two"))
    assert searches == []
    assert act.bar.n == 2 and label.movie().currentFrameNumber() != frame
    act.close()


def test_a_new_bar_finds_napari_s_widgets_without_walking_the_window(make_napari_viewer,
                                                                      qtbot, monkeypatch):
    """Adding a bar looks for napari's indicator and its bar widget: a walk of napari's
    window (~1,300 widgets) took 5-13 ms of the click's stall each. The indicator is found
    in the status bar, the bar widget in the activity dialog where the window's first bar
    was found; each is still the right one."""
    from napari_iaa.widgets._common import indicator
    from napari_iaa.widgets._common.paint import napari_bar_widget

    viewer = make_napari_viewer(show=True)
    win = viewer.window._qt_window
    label = win._activity_dialog._toggleButton._inProgressIndicator
    first = Activity("the window's first bar")
    qtbot.waitUntil(lambda: first.bar is not None, timeout=10_000)
    walks: list[object] = []
    real = type(win).findChildren
    monkeypatch.setattr(type(win), "findChildren",
                        lambda self, *a, **k: walks.append(a) or real(self, *a, **k))
    assert indicator._labels() == [label]
    second = Activity("a later bar")
    qtbot.waitUntil(lambda: second.bar is not None, timeout=10_000)
    qbar = napari_bar_widget(second.bar)
    assert qbar is not None and qbar.parent().progress is second.bar
    assert napari_bar_widget(first.bar) is not qbar
    assert walks == []  # neither the search nor the later bar walked the whole window
    first.close()
    second.close()


def test_a_bar_asked_for_later_shows_the_latest_message(make_napari_viewer, qtbot):
    """``show_after_ms=None``: no napari bar until ``show()`` (a dock that shows the job's
    progress itself, gone out of sight); then the bar shows the latest message. A job that
    ends first never shows one."""
    from napari.utils import progress
    from qtpy.QtWidgets import QApplication

    def turns():  # zero-delay timers (how a bar is made) run in here
        for _ in range(3):
            QApplication.processEvents()

    make_napari_viewer()
    before = set(progress._all_instances)
    act = Activity("asked for later", show_after_ms=None)
    act.update(Progress(3, 10, "three"))
    act.update(Progress(4, 10, "four"))
    turns()
    assert act.bar is None and set(progress._all_instances) == before
    act.show()
    qtbot.waitUntil(lambda: act.bar is not None and act.bar.n == 4, timeout=10_000)
    assert (act.bar.n, act.bar.total) == (4, 10)
    act.show()  # once is enough
    turns()
    assert len(set(progress._all_instances) - before) == 1
    act.close()
    never = Activity("never asked", show_after_ms=None)
    never.update(Progress(1, 2))
    never.close()
    never.show()  # after its end: nothing
    turns()
    assert never.bar is None and set(progress._all_instances) == before


def test_then_runs_on_the_next_turn_when_no_bar_is_asked_for(make_napari_viewer, qtbot):
    """``show_after_ms=None`` with ``then``: the job started from ``then`` does not wait for
    a bar nobody asked for (the training dock on screen); still not inside the call."""
    from napari.utils import progress

    make_napari_viewer()
    before = set(progress._all_instances)
    ran: list[bool] = []
    act = Activity("no bar yet", show_after_ms=None, then=lambda: ran.append(act.bar is None))
    assert ran == []  # not in the call
    qtbot.waitUntil(lambda: ran == [True], timeout=10_000)
    assert set(progress._all_instances) == before
    act.show()  # out of sight later: the bar comes, ``then`` does not run again
    qtbot.waitUntil(lambda: act.bar is not None, timeout=10_000)
    assert ran == [True]
    act.close()


def test_a_bar_only_while_its_widget_is_out_of_sight(make_napari_viewer, qtbot):
    """``out_of_sight=widget`` (a dock that shows the job's progress itself): no napari bar
    while the widget is on screen; one once it goes out of sight (another tab, its dock
    hidden), showing the latest message; at once when it was out of sight from the start;
    none after the job ended, and the widget is left without the watch."""
    from napari.utils import progress
    from qtpy.QtWidgets import QApplication, QLabel, QTabWidget

    def turns():  # zero-delay timers (how a bar is made) run in here
        for _ in range(3):
            QApplication.processEvents()

    viewer = make_napari_viewer(show=True)
    tabs = QTabWidget()
    first, watched = QLabel("case"), QLabel("table")
    tabs.addTab(first, "Case")
    tabs.addTab(watched, "Table")
    tabs.setCurrentWidget(watched)
    dock = viewer.window.add_dock_widget(tabs, name="tabs")
    qtbot.waitUntil(watched.isVisible, timeout=10_000)
    before = set(progress._all_instances)

    act = Activity("in sight", out_of_sight=watched)
    act.update(Progress(2, 10, "two"))
    turns()
    assert act.bar is None and set(progress._all_instances) == before
    tabs.setCurrentWidget(first)  # another tab: out of sight
    qtbot.waitUntil(lambda: act.bar is not None and act.bar.n == 2, timeout=10_000)
    act.close()
    assert watched.findChildren(activity_module._HideWatch) == []

    hidden = Activity("out of sight from the start", out_of_sight=watched)  # on tab "Case"
    qtbot.waitUntil(lambda: hidden.bar is not None, timeout=10_000)
    hidden.close()

    tabs.setCurrentWidget(watched)
    qtbot.waitUntil(watched.isVisible, timeout=10_000)
    docked = Activity("dock hidden", out_of_sight=watched)
    turns()
    assert docked.bar is None
    dock.hide()  # an ancestor hidden: the watched widget is out of sight too
    qtbot.waitUntil(lambda: docked.bar is not None, timeout=10_000)
    docked.close()

    dock.show()
    qtbot.waitUntil(watched.isVisible, timeout=10_000)
    ended = Activity("ended on screen", out_of_sight=watched)
    ended.update(Progress(1, 1))
    ended.close()
    assert watched.findChildren(activity_module._HideWatch) == []
    dock.hide()
    turns()
    assert ended.bar is None and set(progress._all_instances) == before
