"""Form helpers: refill a combo box without losing the choice, labelled rows, tooltips."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from qtpy.QtWidgets import QComboBox, QFormLayout, QWidget

__all__ = ["add_row", "refill_combo", "set_tooltips"]


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
