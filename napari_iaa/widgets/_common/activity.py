"""A job's bar in napari's activity dock (:class:`Activity`), fed by its progress messages.

napari's activity dock adds a bar with synchronous repaints of the window and
``processEvents`` calls, and every update of it repaints again: on a software-GL display
each costs 25-60 ms of the GUI thread. So the bar is made by a timer after the click that
starts the job, a short job can ask for none at all (``show_after_ms``: as Qt's
``QProgressDialog.minimumDuration``, the bar appears only if the job is still running
then), and a long job whose dock shows its progress itself updates it at most every
:data:`LONG_JOB_INTERVAL_S`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QEvent, QObject, QTimer

from napari_iaa.widgets._common.events import Progress

__all__ = ["LONG_JOB_INTERVAL_S", "SHORT_JOB_SHOW_AFTER_MS", "SHOW_AFTER_MS", "Activity"]


#: an activity bar is made by a timer this long after the call that starts its job (ms)
SHOW_AFTER_MS = 0
#: ``Activity(min_interval=...)`` for a long job whose dock shows its progress itself (s)
LONG_JOB_INTERVAL_S = 1.0
#: ``Activity(show_after_ms=...)`` for a job that usually ends within a second and whose
#: dock shows its progress itself (a later prediction): napari's bar only if it runs longer
SHORT_JOB_SHOW_AFTER_MS = 1000


class Activity:
    """A progress bar in napari's activity dock, fed by :class:`Progress` messages.

    The bar is made by a timer after the call, never in the call that starts the job:
    napari's activity dock adds a bar with synchronous repaints of the window and
    ``processEvents`` calls, which ran pending events inside the caller's click handler.
    Messages and a close that come before the bar are kept and applied to it; a job that
    ended before (a synchronous run) shows none. (A 25 ms delay was tried, to keep the
    bar out of the click's event-loop turn altogether: the click's own repaint then ran
    without the event loop getting in midway, and its stall grew; see BENCHMARKS.md,
    issue 16, seventh pass.)

    ``then`` (optional) is called on the event loop's turn after the bar is made (or after
    it was not, the job having ended; on the next turn when no bar is asked for): a job
    started from it does not compete with napari's adding of the bar for the GIL and the
    cores (the training dock's fit).

    Updates are applied at most every ``min_interval`` seconds (napari runs
    ``processEvents`` and repaints its bar at each; on a software-GL display a repaint
    composes the window, 25-60 ms), the last one when it closes; a job whose dock shows
    its progress itself passes :data:`LONG_JOB_INTERVAL_S`. There napari's "in progress"
    GIF is held still and moved a frame at a time by the updates (:mod:`.indicator`).

    ``show_after_ms`` (default :data:`SHOW_AFTER_MS`): the bar is made only if the job is
    still running this long after the call; a job that ends before shows none (its dock
    shows its progress itself: :data:`SHORT_JOB_SHOW_AFTER_MS`). None: only when
    :meth:`show` is called (a dock that shows the job's progress asks for napari's bar
    when it goes out of sight); the messages that came before are kept for it.

    ``out_of_sight`` (a widget that shows the job's progress itself: the data-set table,
    the training dock): napari's bar at once if the widget is not visible, else only once
    it goes out of sight (hidden, another tab, its dock closed, the window minimised); it
    replaces ``show_after_ms``. While the widget is on screen its own bar shows the job, and
    napari's would repaint the window at its creation and at each update for nothing.
    """

    def __init__(self, desc: str, total: int = 0, min_interval: float = 0.2,
                 then: Callable[[], None] | None = None,
                 show_after_ms: int | None = SHOW_AFTER_MS,
                 out_of_sight: Any = None) -> None:
        self.desc = desc
        self._total = total
        self._then = then
        self._bar: Any = None  # napari's ``progress``, once made
        self._closed = False
        self._min = min_interval
        self._last = 0.0
        self._pending: Progress | None = None
        self._flush_due = False
        self._desc, self._qbar = "", None  # the last text shown; napari's QProgressBar
        self._watch: _HideWatch | None = None
        if out_of_sight is not None:
            if out_of_sight.isVisible():
                show_after_ms = None
                self._watch = _HideWatch(out_of_sight, self.show)
            else:
                show_after_ms = 0
        self._asked = show_after_ms is not None  # the bar is made (or will be)
        if self._asked:
            QTimer.singleShot(max(0, int(show_after_ms)), self._open)
        elif then is not None:  # no bar to wait for: ``then`` on the next turn
            self._then = None
            QTimer.singleShot(0, then)

    def show(self) -> None:
        """Make napari's bar on the event loop's next turn, if it was not asked for yet and
        the job still runs; it shows the latest message."""
        self._unwatch()
        if self._asked or self._closed:
            return
        self._asked = True
        QTimer.singleShot(0, self._open)

    @property
    def bar(self) -> Any:
        """napari's ``progress`` object (None until ``show_after_ms`` after the call or
        :meth:`show`, or when the job ended before)."""
        return self._bar

    def _open(self) -> None:
        try:
            self._make_bar()
        finally:  # ``then`` runs on a later turn, after napari's processEvents
            then, self._then = self._then, None
            if then is not None:
                QTimer.singleShot(0, then)

    def _make_bar(self) -> None:
        if self._closed:
            return
        from napari.utils import progress

        from napari_iaa.widgets._common.indicator import indicators_held, pace_indicator
        from napari_iaa.widgets._common.paint import napari_bar_widget

        # napari processes pending events while it adds the bar: the job may end in there
        with indicators_held():  # and its GIF shows no frame in there
            bar = progress(total=self._total, desc=self.desc)
        self._bar, self._qbar = bar, napari_bar_widget(bar)  # searched before the job runs
        pace_indicator()  # napari's GIF, on a software-GL display (see ``indicator``)
        if self._closed:
            self._bar = None
            bar.close()
            return
        if self._pending is not None:  # a message came first: shown on a later turn (the
            QTimer.singleShot(SHOW_AFTER_MS, self._apply)  # bar repaints at once)

    def update(self, msg: Progress) -> None:
        """Note ``msg``; shown now, or when ``min_interval`` has passed since the last shown."""
        self._pending = msg
        now = time.monotonic()
        if now - self._last >= self._min:
            # stamped first: napari's update runs processEvents, where a nested update
            # (the dock's refresh timer) must wait for the interval, not re-enter
            self._last = now
            self._apply()
        elif not self._flush_due:  # the latest message is shown once the interval is up
            self._flush_due = True
            QTimer.singleShot(max(1, int(1000 * (self._last + self._min - now))), self._flush)

    def note(self, msg: Progress) -> None:
        """Keep ``msg`` for the next update or the close; no repaint, no events processed."""
        self._pending = msg

    def _flush(self) -> None:
        self._flush_due = False
        if self._pending is not None and not self._closed:
            self._last = time.monotonic()
            self._apply()

    def _apply(self) -> None:
        bar = self._bar
        if bar is None:  # not made yet: kept for it
            return
        msg, self._pending = self._pending, None
        if msg is None:
            return
        from napari_iaa.widgets._common.indicator import step_indicator
        from napari_iaa.widgets._common.paint import painted_later
        step_indicator()
        if msg.total and bar.total != msg.total:
            bar.total = msg.total
        if msg.text and msg.text != self._desc:  # each call runs processEvents: only a new text
            self._desc = msg.text
            bar.set_description(msg.text)
        done = min(msg.done, msg.total) if msg.total else msg.done
        if done == bar.n:
            bar.refresh()  # the elapsed time and ETA (``update`` refreshes them itself)
            return
        # napari's QProgressBar (None: another layout, napari's way) repaints at once (its
        # dock open): held, it is painted with the window's next repaint
        with painted_later(self._qbar):
            bar.update(done - bar.n)  # emits the value event the dock's bar follows (setting n does not)

    def close(self) -> None:
        """Show the last message and remove the bar (or never make it)."""
        if self._closed:
            return
        self._closed = True
        self._unwatch()
        bar = self._bar
        if bar is None:  # not made yet, or being made (then ``_open`` removes it)
            return
        self._apply()
        self._bar = None
        bar.close()

    def _unwatch(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.stop()


class _HideWatch(QObject):
    """Calls ``on_hide`` once, when ``widget`` is hidden (its own hide or an ancestor's: Qt
    sends the Hide event to every visible descendant); a child of the widget, so it goes
    with it."""

    def __init__(self, widget: Any, on_hide: Callable[[], None]) -> None:
        super().__init__(widget)
        self._widget, self._on_hide = widget, on_hide
        widget.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # Qt API name
        if obj is self._widget and event.type() == QEvent.Type.Hide:
            QTimer.singleShot(0, self._on_hide)  # not inside Qt's hiding of the window
        return False

    def stop(self) -> None:
        try:
            self._widget.removeEventFilter(self)
            self.setParent(None)
            self.deleteLater()
        except RuntimeError:  # the widget is gone, and this with it
            pass
