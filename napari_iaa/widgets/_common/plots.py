"""Plots the docks share (reliability, training curves), rendered off the GUI thread.

A matplotlib draw of even a small figure costs 50-200 ms on a busy 2-core machine, which
is a visible stall if done on the GUI thread for every case or training step. So the
figures are drawn with the Agg backend in a worker (each render builds its own ``Figure``)
and the GUI only swaps a pixmap. One figure is drawn at a time; requests a plot gets while
its render runs are coalesced: only the latest one is drawn next.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from qtpy.QtCore import QSize, Qt, Signal
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QLabel, QSizePolicy

from napari_iaa.widgets._common.workers import start_worker

__all__ = ["AsyncPlot", "render_reliability", "render_training", "warm_up_matplotlib"]

_BG = "#262930"
_FG = "#d0d4dc"
_GRID = "#414851"
_COLOURS = ["#f5a623", "#4fc3f7", "#9ccc65", "#e57373"]
#: one render at a time across the docks (matplotlib is not made for concurrent drawing)
_RENDER_LOCK = threading.Lock()
_WARM = False  # ``warm_up_matplotlib`` has drawn (under the lock)

def _figure(width: int, height: int, dpi: float = 90.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(width, 50) / dpi, max(height, 50) / dpi), dpi=dpi, facecolor=_BG)
    FigureCanvasAgg(fig)
    return fig


def warm_up_matplotlib() -> None:
    """Import matplotlib's Agg drawing and draw a small figure with text once (its fonts).

    For a job's worker, before its plot's first render is asked for: the first render in a
    process imports matplotlib (~0.5-1 s of Python) in the render thread, and meanwhile each
    of the GUI thread's returns to Python (every event napari filters, every repaint of a
    Python widget) waits up to the interpreter's switch interval for the GIL; the Training
    dock's first paint took 0.2-0.6 s beside it (BENCHMARKS.md, issue 16, thirteenth pass).
    """
    global _WARM
    with _RENDER_LOCK:
        if _WARM:  # once per process: a later run finds matplotlib ready
            return
        fig = _figure(60, 60)
        fig.text(0.5, 0.5, "0.5", color=_FG, fontsize=7)
        _rgba(fig)
        _WARM = True


def _style(ax) -> None:
    ax.set_facecolor(_BG)
    for spine in ax.spines.values():
        spine.set_color(_GRID)
    ax.tick_params(colors=_FG, labelsize=7)
    ax.xaxis.label.set_color(_FG)
    ax.yaxis.label.set_color(_FG)
    ax.title.set_color(_FG)
    ax.grid(True, color=_GRID, linewidth=0.5, alpha=0.7)


def _legend(ax, handles=None, loc: str = "upper left") -> None:
    leg = ax.legend(handles=handles, fontsize=7, loc=loc, facecolor=_BG, edgecolor=_GRID)
    for text in leg.get_texts():
        text.set_color(_FG)


def _rgba(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def render_reliability(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None,
    title: str = "",
    message: str = "",
    width: int = 320,
    height: int = 240,
) -> np.ndarray:
    """Reliability diagram as an RGBA array: mean predicted vs. empirical MHR per bin.

    Parameters
    ----------
    curves
        ``label -> (bin mean predicted, bin mean empirical, bin pixel counts)``; empty or
        None draws only the diagonal and ``message``.
    title
        Shown above the plot (e.g. the case's multi-rater ECE).
    width, height
        Size in pixels.
    """
    fig = _figure(width, height)
    ax = fig.add_subplot(111)
    fig.subplots_adjust(left=0.16, bottom=0.17, right=0.97, top=0.88)
    _style(ax)
    ax.plot([0, 1], [0, 1], "--", color=_GRID, linewidth=1, label="ideal")
    drawn = False
    for (label, (pred, emp, counts)), colour in zip((curves or {}).items(), _COLOURS):
        pred = np.asarray(pred, float)
        emp = np.asarray(emp, float)
        counts = np.asarray(counts, float)
        keep = np.isfinite(pred) & np.isfinite(emp)
        if counts.shape == pred.shape:
            keep &= counts > 0
        if not keep.any():
            continue
        sizes = 10 + 40 * np.sqrt(counts[keep] / counts[keep].max()) if counts.shape == pred.shape else 12
        ax.plot(pred[keep], emp[keep], "-", color=colour, linewidth=1.2, label=label)
        ax.scatter(pred[keep], emp[keep], s=sizes, color=colour, zorder=3)
        drawn = True
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted MHR", fontsize=8)
    ax.set_ylabel("empirical MHR", fontsize=8)
    if title:
        ax.set_title(title, fontsize=8)
    if drawn:
        _legend(ax)
    elif message:
        ax.text(0.5, 0.5, message, ha="center", va="center", color=_FG, fontsize=8)
    return _rgba(fig)


def render_training(
    loss_x: Sequence[float],
    loss_y: Sequence[float],
    val_x: Sequence[float] = (),
    val_y: Sequence[float] = (),
    metric_name: str = "validation metric",
    width: int = 360,
    height: int = 220,
) -> np.ndarray:
    """Training loss (per step) and validation metric (per epoch) as an RGBA array."""
    fig = _figure(width, height)
    ax = fig.add_subplot(111)
    fig.subplots_adjust(left=0.13, bottom=0.18, right=0.86, top=0.95)
    _style(ax)
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel("training loss", fontsize=8)
    handles = []
    if len(loss_x):
        y = np.asarray(loss_y, float)
        handles += ax.plot(loss_x, y, color=_COLOURS[0], linewidth=0.8, alpha=0.6, label="loss")
        if len(y) >= 8:  # a running mean makes the trend readable
            k = max(2, len(y) // 20)
            smooth = np.convolve(y, np.ones(k) / k, mode="valid")
            handles += ax.plot(np.asarray(loss_x)[k - 1:], smooth, color=_COLOURS[0],
                               linewidth=1.6, label=f"loss (mean of {k})")
    if len(val_x):
        ax2 = ax.twinx()
        ax2.tick_params(colors=_COLOURS[2], labelsize=7)
        for spine in ax2.spines.values():
            spine.set_color(_GRID)
        ax2.set_ylabel(metric_name, color=_COLOURS[2], fontsize=8)
        handles += ax2.plot(val_x, val_y, "s-", color=_COLOURS[2], markersize=3, linewidth=1,
                            label=f"val {metric_name}")
    if handles:
        _legend(ax, handles=handles, loc="upper right")
    else:
        ax.text(0.5, 0.5, "no training run yet", ha="center", va="center", color=_FG,
                fontsize=8, transform=ax.transAxes)
    return _rgba(fig)


def _render_one(render: Callable[..., np.ndarray], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> np.ndarray:
    with _RENDER_LOCK:
        return render(*args, **kwargs)


def _render_sized(render: Callable[..., np.ndarray], size: tuple[int, int], *args: Any,
                  **kwargs: Any) -> np.ndarray:
    return _render_one(render, args, {**kwargs, "width": size[0], "height": size[1]})


class AsyncPlot(QLabel):
    """A label showing a figure rendered by ``render`` in a background thread.

    ``submit(*args, **kwargs)`` asks for a new picture; the render function gets the
    arguments plus ``width`` and ``height`` (pixels). ``rendered(object)`` is emitted (GUI
    thread) with the RGBA array once it is shown. ``image`` holds the last one.

    A job that computes a plot's data can draw it too, in its own thread: ``prepared()``
    (called on the GUI thread) gives the render function at the plot's size, and
    ``show_image`` shows its result (no render thread then runs beside the GUI's repaints).
    """

    rendered = Signal(object)

    def __init__(self, render: Callable[..., np.ndarray], width: int = 320, height: int = 230,
                 parent: Any = None) -> None:
        super().__init__(parent)
        self._render = render
        self._pending: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._busy = False
        self._shown = 0  # pictures shown by show_image: a render started before is stale
        self._started = 0
        self.image: np.ndarray | None = None
        self.setMinimumSize(200, height)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setAlignment(Qt.AlignCenter)
        self._w, self._h = width, height

    def sizeHint(self) -> QSize:  # Qt API name
        """The picture's size, also while a text stands in for it (the dock is laid out for
        the plot it will show)."""
        hint = super().sizeHint()
        return QSize(max(hint.width(), self._w), max(hint.height(), self._h))

    @property
    def busy(self) -> bool:
        """True while a render runs or waits."""
        return self._busy or self._pending is not None

    def submit(self, *args: Any, **kwargs: Any) -> None:
        """Render with these arguments (coalesced with other requests made meanwhile)."""
        self._pending = (args, kwargs)
        if not self._busy:
            self._kick()

    def prepared(self) -> Callable[..., np.ndarray]:
        """The render function at the plot's present size, to call in any thread.

        ``prepared()(*args, **kwargs)`` draws what ``submit(*args, **kwargs)`` would (one
        render at a time across the docks); show its result with :meth:`show_image`.
        """
        return functools.partial(_render_sized, self._render, self._size())

    def show_image(self, img: np.ndarray) -> None:
        """Show a picture drawn elsewhere (by :meth:`prepared`'s function); requests made
        before it are dropped, and a render still running is not shown."""
        self._pending = None
        self._shown += 1
        self._show(img)

    def clear(self, text: str = "") -> None:
        """Show ``text`` in place of a picture (no render); requests made before are dropped,
        and a render still running is not shown."""
        self._pending = None
        self._shown += 1
        self.image = None
        self.setText(text)

    def _size(self) -> tuple[int, int]:
        return (max(self.width(), self._w) if self.isVisible() else self._w), self._h

    def _kick(self) -> None:
        if self._pending is None:
            return
        args, kwargs = self._pending
        self._pending = None
        self._busy = True
        self._started = self._shown
        w, h = self._size()
        job = functools.partial(_render_one, self._render, args,
                                {**kwargs, "width": w, "height": h})
        start_worker(job, on_return=self._on_done, on_error=self._on_done)

    def _on_done(self, img: np.ndarray | BaseException) -> None:
        self._busy = False
        if self._started == self._shown:  # else a picture shown meanwhile is newer
            self._show(img)
        self._kick()

    def _show(self, img: np.ndarray | BaseException) -> None:
        if isinstance(img, np.ndarray):
            self.image = img
            h, w = img.shape[:2]
            qimg = QImage(img.data, w, h, 4 * w, QImage.Format_RGBA8888).copy()
            self.setPixmap(QPixmap.fromImage(qimg))
            self.rendered.emit(img)
        else:  # a plot must never take the dock down: say so in its place
            self.setText(f"plot failed: {img}")
            self.rendered.emit(None)
