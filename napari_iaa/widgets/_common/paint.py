"""Widget changes painted with the window's next repaint rather than at once.

``QProgressBar.setValue`` (and a new range or format) repaints the bar on the spot, and
with Qt's OpenGL composition every repaint composes napari's whole window again: tens of
milliseconds under a software renderer, once per change. :func:`set_bar` makes its changes
with the bar's updates off; turning them on again schedules one ordinary update, painted
with whatever else the event loop repaints next.
"""

from __future__ import annotations

from typing import Any

__all__ = ["set_bar"]


def set_bar(bar: Any, *, total: int | None = None, value: int | None = None,
            fmt: str | None = None) -> None:
    """Set a ``QProgressBar``'s range ``0..total``, value and format (each when given and
    different), painted with the window's next repaint."""
    bar.setUpdatesEnabled(False)
    try:
        if total is not None and bar.maximum() != total:
            bar.setRange(0, total)
        if value is not None and bar.value() != value:
            bar.setValue(value)
        if fmt is not None and bar.format() != fmt:
            bar.setFormat(fmt)
    finally:
        bar.setUpdatesEnabled(True)
