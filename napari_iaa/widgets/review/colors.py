"""Colours of the case panel: the Dice heat map, readable text on it, swatches, MHR legend.

The layers' colours (annotators, MHR, difference) live in
:mod:`napari_iaa.widgets._common.colormaps`.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor, QFont, QIcon, QPainter, QPixmap
from qtpy.QtWidgets import QSizePolicy, QWidget

from napari_iaa.widgets._common.colormaps import mhr_rgba

__all__ = ["MHRLegend", "heat_color", "mhr_swatch_color", "swatch", "text_color"]


def heat_color(value: float) -> QColor:
    """Heat-map colour of a Dice value in [0, 1] (red -> yellow -> green); grey for NaN."""
    if value is None or not np.isfinite(value):
        return QColor(90, 90, 90)
    v = float(np.clip(value, 0.0, 1.0))
    # piecewise: 0 -> (165, 0, 38) red, 0.5 -> (254, 224, 139) yellow, 1 -> (26, 152, 80) green
    stops = [(0.0, (165, 0, 38)), (0.5, (254, 224, 139)), (1.0, (26, 152, 80))]
    for (x0, c0), (x1, c1) in zip(stops[:-1], stops[1:], strict=True):
        if v <= x1:
            t = (v - x0) / (x1 - x0)
            return QColor(*[int(round(a + t * (b - a))) for a, b in zip(c0, c1, strict=True)])
    return QColor(*stops[-1][1])


def text_color(bg: QColor) -> QColor:
    lum = 0.299 * bg.red() + 0.587 * bg.green() + 0.114 * bg.blue()
    return QColor(0, 0, 0) if lum > 140 else QColor(255, 255, 255)


def swatch(color: str, size: int = 12) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(QColor(color))
    return QIcon(pm)


#: the grey the MHR legend's swatches are laid over (the layer is translucent)
_LEGEND_GROUND = np.array([0.5, 0.5, 0.5])


def mhr_swatch_color(level: float) -> QColor:
    """The MHR layer's colour at ``level`` (0..1) as it looks over a mid-grey image."""
    r, g, b, a = mhr_rgba(level)
    rgb = a * np.array([r, g, b]) + (1 - a) * _LEGEND_GROUND
    return QColor(*[int(round(255 * c)) for c in rgb])


class MHRLegend(QWidget):
    """Colour legend of the MHR layer: one swatch per agreement level k/N (over mid grey:
    the layer is transparent at 0 and more opaque with agreement)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._n = 0
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)

    def set_n(self, n: int) -> None:
        """Number of annotators (levels 0..n)."""
        self._n = int(n)
        self.update()

    def paintEvent(self, event) -> None:  # Qt API name
        if self._n <= 0:
            return
        p = QPainter(self)
        w = self.width() - 2
        k = self._n + 1
        cell = w / k
        bar_h = 14
        p.setFont(QFont(self.font().family(), max(self.font().pointSize() - 1, 7)))
        for i in range(k):
            x = 1 + i * cell
            p.fillRect(int(x), 2, int(np.ceil(cell)), bar_h, mhr_swatch_color(i / self._n))
            p.setPen(self.palette().windowText().color())
            p.drawText(int(x), 2 + bar_h, int(cell), 18, Qt.AlignHCenter | Qt.AlignTop, f"{i}/{self._n}")
        p.setPen(QColor(128, 128, 128))
        p.drawRect(1, 2, w - 1, bar_h)
        p.end()
