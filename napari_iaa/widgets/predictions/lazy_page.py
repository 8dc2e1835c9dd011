"""A tab page that takes in its content the first time it is shown.

Qt styles (napari's style sheet) and lays out every widget of a dock when the dock is
docked and shown, hidden tab pages included: the Triage and Models tabs cost napari's
window ~80 ms when the Predictions dock opened, though only the Case tab is visible.
A :class:`LazyPage` stands in their place; the content widget exists from the start (its
state and methods are used before it is ever shown) but has no parent, so Qt neither
styles nor lays it out until the page is first shown.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QVBoxLayout, QWidget

__all__ = ["LazyPage"]


class LazyPage(QWidget):
    """A page that puts ``content`` into its layout at its first show.

    Parameters
    ----------
    content
        The page's widget (built, not yet parented).
    """

    def __init__(self, content: QWidget) -> None:
        super().__init__()
        self.content = content
        self.filled = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

    def fill(self) -> None:
        """Put the content in the page (once)."""
        if not self.filled:
            self.filled = True
            self.layout().addWidget(self.content)
            self.content.show()

    def showEvent(self, event: Any) -> None:  # Qt API name
        """The first show fills the page."""
        self.fill()
        super().showEvent(event)
