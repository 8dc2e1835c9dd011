"""A small per-slice agreement plot, painted with QPainter (no matplotlib on the GUI thread).

One column per slice along the volume's first axis: a grey bar for the number of
annotators who marked the slice (out of all of them) and, where someone marked it, a dot
for the slice's IAA, coloured as the Dice matrix is (red - yellow - green). The current slice is outlined and the worst
slice marked; a click (or a drag) asks the viewer to move to the slice under the mouse.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QPointF, QRectF, Qt, Signal
from qtpy.QtGui import QColor, QFont, QPainter, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

from napari_iaa.widgets.review.colors import heat_color

__all__ = ["SliceProfilePlot"]

_BAR = QColor(110, 118, 130)
_AXIS = QColor(128, 128, 128)
_CURRENT = QColor(255, 255, 255)
_WORST = QColor(229, 115, 115)


class SliceProfilePlot(QWidget):
    """IAA and n_marked per slice; click a slice to go there.

    Signals
    -------
    slice_clicked(int) : the slice index under a click or drag.
    """

    slice_clicked = Signal(int)

    _LEFT, _RIGHT, _TOP, _BOTTOM = 30, 6, 14, 16

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.iaa = np.zeros(0)
        self.n_marked = np.zeros(0, np.int64)
        self.n_annotators = 0
        self.current: int | None = None
        self.worst: int | None = None
        self.setMinimumHeight(100)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setMouseTracking(False)
        self.setCursor(Qt.PointingHandCursor)
        self.setToolTip("agreement per slice: bars = annotators who marked the slice, dots = "
                        "the slice's IAA (mean pairwise Dice); click to go to a slice")

    # -- data --------------------------------------------------------------------------
    def set_profile(self, iaa: np.ndarray, n_marked: np.ndarray, n_annotators: int,
                    worst: int | None) -> None:
        """Show a profile (arrays of one value per slice)."""
        self.iaa = np.asarray(iaa, float)
        self.n_marked = np.asarray(n_marked, np.int64)
        self.n_annotators = int(n_annotators)
        self.worst = worst
        self.update()

    def clear(self) -> None:
        """Show nothing."""
        self.set_profile(np.zeros(0), np.zeros(0, np.int64), 0, None)

    def set_current(self, index: int | None) -> None:
        """Outline the slice the viewer shows."""
        if index != self.current:
            self.current = index
            self.update()

    @property
    def n_slices(self) -> int:
        """Number of slices shown."""
        return int(self.iaa.size)

    # -- geometry ----------------------------------------------------------------------
    def _plot_rect(self) -> QRectF:
        return QRectF(self._LEFT, self._TOP, max(self.width() - self._LEFT - self._RIGHT, 1),
                      max(self.height() - self._TOP - self._BOTTOM, 1))

    def slice_at(self, x: float) -> int | None:
        """The slice under widget x coordinate ``x`` (None outside the plot or when empty)."""
        n = self.n_slices
        r = self._plot_rect()
        if n == 0 or x < r.left() - 2 or x > r.right() + 2:
            return None
        return int(np.clip((x - r.left()) / r.width() * n, 0, n - 1))

    # -- events ------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:  # Qt API name
        self._emit_at(event)

    def mouseMoveEvent(self, event) -> None:  # Qt API name (drag: with a button held)
        self._emit_at(event)

    def _emit_at(self, event) -> None:
        pos = event.pos() if hasattr(event, "pos") else event.position()
        k = self.slice_at(float(pos.x()))
        if k is not None and k != self.current:
            self.slice_clicked.emit(k)

    def paintEvent(self, event) -> None:  # Qt API name
        p = QPainter(self)
        try:
            self._paint(p)
        finally:
            p.end()

    def _paint(self, p: QPainter) -> None:
        r = self._plot_rect()
        fg = self.palette().windowText().color()
        font = QFont(self.font().family(), max(self.font().pointSize() - 2, 7))
        p.setFont(font)
        p.setPen(_AXIS)
        p.drawRect(r)
        p.setPen(fg)
        p.drawText(QRectF(0, r.top() - 4, self._LEFT - 3, 12), Qt.AlignRight, "1")
        p.drawText(QRectF(0, r.bottom() - 8, self._LEFT - 3, 12), Qt.AlignRight, "0")
        n = self.n_slices
        if n == 0:
            p.drawText(r, Qt.AlignCenter, "no profile")
            return
        w = r.width() / n
        n_ann = max(self.n_annotators, 1)
        for k in range(n):  # n_marked bars, as a fraction of the annotators
            h = r.height() * float(self.n_marked[k]) / n_ann
            p.fillRect(QRectF(r.left() + k * w + w * 0.15, r.bottom() - h, max(w * 0.7, 1), h), _BAR)
        p.setRenderHint(QPainter.Antialiasing, True)
        # a slice nobody marked has no boundary to agree on: no dot (its IAA is the
        # empty-pair rule's value, the bar at 0 says it all)
        pts = [(k, float(v)) for k, v in enumerate(self.iaa)
               if np.isfinite(v) and self.n_marked[k] > 0]
        if len(pts) > 1:
            p.setPen(QPen(fg, 1))
            for (k0, v0), (k1, v1) in zip(pts[:-1], pts[1:], strict=True):
                if k1 == k0 + 1:
                    p.drawLine(self._point(r, w, k0, v0), self._point(r, w, k1, v1))
        rad = float(np.clip(w * 0.3, 2.0, 4.0))
        for k, v in pts:
            p.setPen(Qt.NoPen)
            p.setBrush(heat_color(v))
            p.drawEllipse(self._point(r, w, k, v), rad, rad)
        p.setBrush(Qt.NoBrush)
        self._mark(p, r, w, self.worst, _WORST, "worst")
        self._mark(p, r, w, self.current, _CURRENT, None)
        p.setPen(fg)
        p.drawText(QRectF(r.left(), 0, r.width(), r.top()), Qt.AlignRight | Qt.AlignVCenter,
                   "bars: annotators who marked · dots: IAA")
        p.drawText(QRectF(r.left(), r.bottom() + 1, 40, 14), Qt.AlignLeft, "0")
        p.drawText(QRectF(r.right() - 40, r.bottom() + 1, 40, 14), Qt.AlignRight, str(n - 1))

    @staticmethod
    def _point(r: QRectF, w: float, k: int, v: float) -> QPointF:
        return QPointF(r.left() + (k + 0.5) * w, r.bottom() - r.height() * float(np.clip(v, 0, 1)))

    def _mark(self, p: QPainter, r: QRectF, w: float, k: int | None, color: QColor,
              text: str | None) -> None:
        if k is None or not 0 <= k < self.n_slices:
            return
        p.setPen(QPen(color, 1.5))
        p.drawRect(QRectF(r.left() + k * w, r.top(), max(w, 2), r.height()))
        if text:
            x = r.left() + (k + 0.5) * w
            p.drawText(QRectF(x - 30, r.bottom() + 1, 60, 14), Qt.AlignHCenter, f"{text} {k}")
