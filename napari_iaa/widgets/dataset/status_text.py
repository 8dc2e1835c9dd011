"""A line of text that changes often (counts during a scoring run) without relayouting the window.

A ``QLabel`` given a new text asks for a new layout (``updateGeometry``), and the request
climbs through the dock to napari's main window, which lays itself out again and repaints
what moved: under software OpenGL every repaint of the window costs tens of milliseconds.
:class:`StatusText` keeps one size hint whatever its text (one line high, a width chosen
once), repaints only itself when the text changes, elides a text longer than its width
and shows the whole text as its tooltip.
"""

from __future__ import annotations

from qtpy.QtCore import QSize, Qt
from qtpy.QtGui import QPainter, QPalette
from qtpy.QtWidgets import QSizePolicy, QWidget

__all__ = ["StatusText"]


class StatusText(QWidget):
    """One line of elided text whose size hint does not follow the text.

    Parameters
    ----------
    text : str
        The first text.
    width_chars : int
        The width its size hint asks for, in characters (a stretch factor in its row
        gives it the rest of the row, as for a label).
    """

    def __init__(self, text: str = "", width_chars: int = 40, parent: QWidget | None = None
                 ) -> None:
        super().__init__(parent)
        self._text = ""
        self._chars = width_chars
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setText(text)

    def text(self) -> str:
        """The whole text (also when it is shown elided)."""
        return self._text

    def setText(self, text: str) -> None:
        """Show ``text``: a repaint of this line only (no new layout)."""
        if text == self._text:
            return
        self._text = text
        self.setToolTip(text)
        self.update()

    def sizeHint(self) -> QSize:
        fm = self.fontMetrics()
        return QSize(fm.horizontalAdvance("0") * self._chars, fm.height() + 4)

    def minimumSizeHint(self) -> QSize:
        fm = self.fontMetrics()
        return QSize(fm.horizontalAdvance("0") * 8, fm.height() + 4)

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        shown = self.fontMetrics().elidedText(self._text, Qt.ElideRight, self.width())
        # the style draws it in the palette's text colour (napari's theme sets it)
        self.style().drawItemText(painter, self.rect(), int(Qt.AlignLeft | Qt.AlignVCenter),
                                  self.palette(), self.isEnabled(), shown,
                                  QPalette.WindowText)
        painter.end()
