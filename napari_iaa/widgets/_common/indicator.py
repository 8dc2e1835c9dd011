"""napari's "in progress" indicator on a software-OpenGL display.

While any progress bar exists, napari animates a 90-frame GIF in its status bar (a
``QMovie`` on a ``QLabel``) at about 33 frames a second. With Qt's OpenGL composition a
window with an OpenGL canvas is composed again for every change of any widget in it, and
with a software renderer (Mesa's llvmpipe in a VM, a remote desktop or Xvfb) each
composition takes 20-40 ms of rendering threads: the GIF alone kept more than one core
busy and the event loop stalled 40 ms at every frame, and a training beside it ran up to
100 times slower (BENCHMARKS.md, issue 16, eighth pass). On such a display
:func:`indicators_held` makes the animation stop as soon as napari starts it (napari
starts it, then runs ``processEvents`` three times while it adds a bar: each frame shown
in there cost a composition of the window, 37-57 ms; BENCHMARKS.md, issue 16, ninth
pass), :func:`pace_indicator` stops an animation already running (the indicator stays
shown, still) and :func:`step_indicator` moves it one frame when a job reports progress,
at most once a second. On a hardware renderer nothing changes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["indicators_held", "is_software_renderer", "pace_indicator", "software_gl",
           "step_indicator"]

#: substrings of ``GL_RENDERER`` that name a software renderer (lower case)
_SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "software", "swiftshader", "gdi generic")
#: the least time between two frames :func:`step_indicator` shows (seconds)
STEP_EVERY_S = 1.0

_software: bool | None = None
_last_step = 0.0
#: the indicators' labels found by the last search (:func:`_labels`)
_found: list = []


def is_software_renderer(renderer: str) -> bool:
    """Whether an OpenGL ``GL_RENDERER`` string names a software renderer."""
    name = renderer.lower()
    return any(s in name for s in _SOFTWARE_RENDERERS)


def _renderer() -> str:
    """``GL_RENDERER`` of a context Qt makes for this display ('' when it cannot)."""
    from qtpy.QtGui import QOffscreenSurface, QOpenGLContext

    ctx = QOpenGLContext()
    if not ctx.create():
        return ""
    surface = QOffscreenSurface()
    surface.setFormat(ctx.format())
    surface.create()
    try:
        if not ctx.makeCurrent(surface):
            return ""
        from vispy.gloo import gl

        return str(gl.glGetParameter(gl.GL_RENDERER))
    except Exception:  # noqa: BLE001 - no answer: treat the renderer as hardware
        return ""
    finally:
        ctx.doneCurrent()
        surface.destroy()


def software_gl() -> bool:
    """Whether Qt's OpenGL renders in software on this display (asked once a process)."""
    global _software
    if _software is None:
        _software = is_software_renderer(_renderer())
    return _software


def _labels(cached: bool = False) -> list:
    """The labels beside napari's activity button that show a ``QMovie`` (its "in
    progress" indicator), in each window; ``cached``: those of the last search still alive.

    A search looks in each main window's status bar (a walk of every window only when
    that finds none). Each Qt call gives the GIL away and waits to get it back: beside a
    fit running Python code a walk of every window cost 200-300 ms (BENCHMARKS.md, issue
    16, ninth pass). Our bars search when they are added (before their job starts); their
    updates use what was found.
    """
    global _found
    if cached:
        alive = []
        for label in _found:
            with contextlib.suppress(RuntimeError):  # its window closed: its C++ object is gone
                if label.movie() is not None:
                    alive.append(label)
        return alive
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication, QLabel, QMainWindow, QStatusBar, QToolButton

    def search(root: Any) -> list:
        return [label for button in root.findChildren(QToolButton, "QtActivityButton")
                if button.parent() is not None
                for label in button.parent().findChildren(QLabel) if label.movie() is not None]

    # napari's button sits in its main window's status bar, a direct child: searching that
    # is ~0.1 ms, where a walk of every window is 5-13 ms (more while a worker runs)
    windows = QApplication.topLevelWidgets()
    labels = [label for window in windows if isinstance(window, QMainWindow)
              for bar in [window.findChild(
                  QStatusBar, options=Qt.FindChildOption.FindDirectChildrenOnly)]
              if bar is not None for label in search(bar)]
    if not labels:  # laid out otherwise: every window
        labels = [label for window in windows for label in search(window)]
    _found = labels
    return labels


def _indicators(running: bool, cached: bool = False) -> list:
    """The ``QMovie`` of napari's activity indicator in each window, running or stopped
    (a stopped one only while it is shown)."""
    from qtpy.QtGui import QMovie

    state = QMovie.MovieState.Running if running else QMovie.MovieState.NotRunning
    return [label.movie() for label in _labels(cached)
            if label.movie().state() == state and (running or label.isVisible())]


@contextlib.contextmanager
def indicators_held() -> Iterator[int]:
    """On a software renderer, while the block runs (napari adding one of our bars), napari's
    indicator in each window stops again the moment napari starts it: its first frame
    stays shown, no timer follows. Yields how many movies are held. Other plugins' bars,
    added outside the block, animate it as napari does."""
    movies = [label.movie() for label in _labels()] if software_gl() else []
    for movie in movies:
        movie.started.connect(movie.stop)
    try:
        yield len(movies)
    finally:
        for movie in movies:
            with contextlib.suppress(TypeError, RuntimeError):  # the window closed meanwhile
                movie.started.disconnect(movie.stop)


def pace_indicator() -> int:
    """On a software renderer, stop napari's indicator animation (napari starts it again
    for every new bar: call this after making one). Returns how many stopped."""
    if not software_gl():
        return 0
    movies = _indicators(running=True)
    for movie in movies:
        movie.stop()
    return len(movies)


def step_indicator() -> bool:
    """On a software renderer, move napari's stopped indicator one frame (at most once
    every :data:`STEP_EVERY_S`): progress shows as a slow turn. True if it moved."""
    global _last_step
    now = time.monotonic()
    if now - _last_step < STEP_EVERY_S or not software_gl():
        return False
    _last_step = now
    moved = False
    for movie in _indicators(running=False, cached=True):  # found when the bar was added
        moved = movie.jumpToNextFrame() or moved
    return moved
