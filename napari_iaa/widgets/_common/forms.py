"""Form helpers: refill a combo box without losing the choice, labelled rows, tooltips, a
path row (a line and a "…" chooser)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QWidget,
)

__all__ = ["PathEdit", "add_row", "refill_combo", "set_tooltips"]


def refill_combo(
    combo: QComboBox,
    items: Iterable[str | tuple[str, Any]],
    keep: Any = None,
    *,
    fallback: int = 0,
) -> None:
    """Replace the items of ``combo`` without emitting a change for the refill itself.

    ``items`` are texts or ``(text, data)`` pairs. The entry whose data (else text) equals
    ``keep`` (default: the current one) stays selected; if it is gone, index ``fallback``
    (clipped to the list) is selected. Signals are blocked while refilling, so a listener
    hears only a real change of choice (emitted once at the end when the choice changed).
    """
    before = combo.currentData() if combo.currentData() is not None else combo.currentText()
    want = before if keep is None else keep
    was = combo.blockSignals(True)
    try:
        combo.clear()
        for item in items:
            text, data = item if isinstance(item, tuple) else (item, None)
            combo.addItem(str(text), data)
        idx = combo.findData(want) if want is not None else -1
        if idx < 0 and want is not None:
            idx = combo.findText(str(want))
        if idx < 0 and combo.count():
            idx = min(max(fallback, 0), combo.count() - 1)
        combo.setCurrentIndex(idx)
    finally:
        combo.blockSignals(was)
    after = combo.currentData() if combo.currentData() is not None else combo.currentText()
    if after != before:
        combo.currentIndexChanged.emit(combo.currentIndex())


def add_row(form: QFormLayout, label: str, widget: QWidget, tooltip: str | None = None) -> QWidget:
    """Add ``label: widget`` to ``form`` with ``tooltip`` on both; returns the widget."""
    form.addRow(label, widget)
    if tooltip:
        widget.setToolTip(tooltip)
        lab = form.labelForField(widget)
        if lab is not None:
            lab.setToolTip(tooltip)
    return widget


def set_tooltips(widgets: Mapping[str, QWidget], tips: Mapping[str, str]) -> None:
    """Give each widget in ``widgets`` the tooltip kept under the same key in ``tips``."""
    for key, widget in widgets.items():
        if key in tips:
            widget.setToolTip(tips[key])


class PathEdit(QWidget):
    """A path typed in a line, or chosen with the "…" button beside it.

    Parameters
    ----------
    folder : bool
        Choose a folder (else a file matching ``filter``).
    filter : str
        The file dialog's name filter, e.g. ``"Checkpoints (*.json *.safetensors)"``.
    title : str
        The dialog's title.
    placeholder : str
        The line's text while it is empty.
    """

    def __init__(self, folder: bool = True, filter: str = "", title: str = "",
                 placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._folder, self._filter = folder, filter
        self._title = title or ("Choose a folder" if folder else "Choose a file")
        self.line_edit = QLineEdit()
        self.line_edit.setPlaceholderText(placeholder)
        self.button = QPushButton("…")
        self.button.setMaximumWidth(30)
        self.button.clicked.connect(self.choose)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.line_edit, 1)
        row.addWidget(self.button)

    def text(self) -> str:
        """The path as typed (stripped; empty when none)."""
        return self.line_edit.text().strip()

    def setText(self, text: str) -> None:
        """Show ``text`` as the path (Qt's name, as ``QLineEdit.setText``)."""
        self.line_edit.setText(text)

    def choose(self) -> None:
        """Ask for the path in Qt's dialog, starting at the one typed."""
        start = self.text()
        if self._folder:
            path = QFileDialog.getExistingDirectory(self, self._title, start)
        else:
            path, _ = QFileDialog.getOpenFileName(self, self._title, start, self._filter)
        if path:
            self.line_edit.setText(path)
