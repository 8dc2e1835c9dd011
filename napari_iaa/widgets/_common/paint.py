"""Widget changes painted with the window's next repaint rather than at once.

``QProgressBar.setValue`` (and a new range or format) repaints the bar on the spot, and
with Qt's OpenGL composition every repaint composes napari's whole window again: tens of
milliseconds under a software renderer, once per change. :func:`set_bar` makes its changes
with the bar's updates off; turning them on again schedules one ordinary update, painted
with whatever else the event loop repaints next. :func:`painted_later` does the same for
any widget, such as napari's own activity bar (:func:`napari_bar_widget`), whose value
napari sets with an immediate repaint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["napari_bar_widget", "painted_later", "set_bar"]


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


#: napari's activity dialogs our bars were found in (their subtree is searched first)
_dialogs: list = []


def napari_bar_widget(prog: Any) -> Any:
    """The ``QProgressBar`` napari's activity dock shows for its ``progress`` object
    ``prog``; None when there is none or napari lays its dock out otherwise.

    napari has no public way to it. It is found in Qt's object tree by what napari's
    labelled bar keeps (napari 0.4-0.6: the ``progress`` object and the ``QProgressBar`` as
    ``qt_progress_bar``); no napari module is imported. A search of a napari window walks
    its ~1,300 widgets (5-8 ms, longer while a worker holds the GIL), so the dialog a bar
    was found in is kept and searched first: only the first bar of a window walks it.
    """
    from qtpy.QtWidgets import QApplication, QDialog, QProgressBar

    def find(root: Any) -> Any:
        for qbar in root.findChildren(QProgressBar):
            owner = qbar.parent()
            if getattr(owner, "progress", None) is prog and getattr(owner, "qt_progress_bar", None) is qbar:
                return qbar
        return None

    for dialog in list(_dialogs):
        try:
            qbar = find(dialog)
        except RuntimeError:  # its window closed: its C++ object is gone
            _dialogs.remove(dialog)
            continue
        if qbar is not None:
            return qbar
    for window in QApplication.topLevelWidgets():
        qbar = find(window)
        if qbar is not None:
            holder = qbar.parentWidget()
            while holder is not None and not isinstance(holder, QDialog):
                holder = holder.parentWidget()
            if holder is not None and holder not in _dialogs:
                _dialogs.append(holder)
            return qbar
    return None


@contextlib.contextmanager
def painted_later(widget: Any) -> Iterator[None]:
    """Changes to ``widget`` (a ``QWidget``, or None: nothing done) within the block are
    painted with the window's next repaint, not at once (as :func:`set_bar` does)."""
    if widget is None:
        yield
        return
    try:
        widget.setUpdatesEnabled(False)
    except RuntimeError:  # its C++ object is gone (the dock closed): nothing to hold
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(RuntimeError):
            widget.setUpdatesEnabled(True)
