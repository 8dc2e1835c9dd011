"""Docks that fit a laptop screen: the content scrolls, our docks share one tabbed area.

A dock's content is laid out for its natural size (the review dock is ~860 px tall); a
``QDockWidget`` cannot be shorter than its content, and napari stacks the docks of one
area, so three docks open at once made a window 2,300 px tall. :func:`scroll_contents`
moves a widget's content into a :class:`QScrollArea` inside the widget itself (the widget
stays what napari's ``viewer.window.dock_widgets`` returns), so the dock can be as short as
the screen allows. :func:`tabify_when_docked` puts a dock in the same tab group as the other
docks of ours in its area once napari has docked it: each then gets the area's full height.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from qtpy.QtCore import QEvent, QObject, QSignalBlocker, Qt, QTimer
from qtpy.QtWidgets import (
    QBoxLayout,
    QDockWidget,
    QFrame,
    QMainWindow,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

__all__ = ["MAX_DOCK_MIN_WIDTH", "MIN_DOCK_HEIGHT", "fit_dock", "is_fitted", "scroll_contents", "tabify_when_docked"]

#: the least height a scrolled dock asks for (its content scrolls below that)
MIN_DOCK_HEIGHT = 160
#: the most a scrolled dock's minimum width may be (wider content scrolls sideways when the
#: dock is made narrower than the content; by default the dock is as wide as its content)
MAX_DOCK_MIN_WIDTH = 380
#: a docked group of our docks is at most this fraction of the window wide at first
MAX_DOCK_SHARE = 0.36
#: the docks :func:`fit_dock` fitted (they share a tab group) -> their scroll areas
_FITTED: weakref.WeakKeyDictionary[QWidget, QScrollArea] = weakref.WeakKeyDictionary()


def scroll_contents(widget: QWidget, min_height: int = MIN_DOCK_HEIGHT) -> QScrollArea:
    """Move ``widget``'s content into a vertical scroll area that becomes its only child.

    The widget's layout must be a box layout (the docks' are ``QVBoxLayout``); its items
    (widgets, nested layouts, stretches) keep their order and stretch factors. The scroll
    area's size hint is the content's (no horizontal scrolling at first); it can be made as
    narrow as :data:`MAX_DOCK_MIN_WIDTH` (the content then scrolls sideways) and as short as
    ``min_height`` pixels.

    Parameters
    ----------
    widget
        A widget whose layout is already built.
    min_height
        The scroll area's minimum height in pixels.

    Returns
    -------
    QScrollArea
        The scroll area (its ``widget()`` holds the former content).
    """
    outer = widget.layout()
    if not isinstance(outer, QBoxLayout):
        raise TypeError(f"{type(widget).__name__}: a box layout is needed to scroll its content")
    content = QWidget()
    inner = QVBoxLayout()
    inner.setContentsMargins(outer.contentsMargins())
    inner.setSpacing(outer.spacing())
    stretches = [outer.stretch(i) for i in range(outer.count())]
    for stretch in stretches:
        item = outer.takeAt(0)
        if item.widget() is not None:
            inner.addWidget(item.widget(), stretch, item.alignment())
        elif item.layout() is not None:
            sub = item.layout()
            sub.setParent(None)  # a layout taken out still belongs to ``outer``
            inner.addLayout(sub, stretch)
        else:
            inner.addItem(item)  # a stretch or spacer
            inner.setStretch(inner.count() - 1, stretch)
    content.setLayout(inner)  # re-parents every widget of the moved layouts to ``content``

    area = QScrollArea()
    area.setObjectName("napari_iaa_scroll")
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
    area.setWidget(content)
    bar = area.verticalScrollBar().sizeHint().width()
    area.setMinimumWidth(min(content.minimumSizeHint().width() + bar, MAX_DOCK_MIN_WIDTH))
    area.setMinimumHeight(min_height)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area, 1)
    return area


class _DockedWatcher(QObject):
    """Calls ``on_docked(dock)`` once, the first time the widget's parent is a dock."""

    def __init__(self, widget: QWidget, on_docked: Callable[[QDockWidget], None]) -> None:
        super().__init__(widget)
        self._widget = widget
        self._on_docked = on_docked
        widget.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # Qt API name
        if obj is self._widget and event.type() == QEvent.ParentChange:
            dock = self._widget.parentWidget()
            if isinstance(dock, QDockWidget):
                self._widget.removeEventFilter(self)
                # napari docks the QDockWidget in its window right after setWidget
                QTimer.singleShot(0, lambda: self._on_docked(dock))
        return False


def tabify_when_docked(
    widget: QWidget, is_sibling: Callable[[QWidget], bool],
    on_docked: Callable[[QDockWidget, QMainWindow], None] | None = None,
) -> None:
    """Once napari docks ``widget``, tab it with the docks in its area whose widget is a
    sibling (``is_sibling(inner widget)``), and show it on top.

    Parameters
    ----------
    widget
        The dock's content (what napari puts in its ``QDockWidget``).
    is_sibling
        Tells which other docks' widgets share a tab group with this one.
    on_docked
        Called with the dock and the window after the tabbing.
    """

    def group(dock: QDockWidget, window: QMainWindow) -> None:
        area = window.dockWidgetArea(dock)
        siblings = [other for other in _docks(window)
                    if other is not dock and not other.isHidden() and not other.isFloating()
                    and window.dockWidgetArea(other) == area
                    and other.widget() is not None and is_sibling(other.widget())]
        grouped = window.tabifiedDockWidgets(dock)
        if not siblings or any(other in grouped for other in siblings):
            return  # alone, or a sibling docked at the same time tabbed us already
        # tabbing re-emits the dock's dockLocationChanged with the area it already has, and
        # napari writes its settings file again for it (~10 ms of the open; fifteenth pass).
        # napari's other slot on it sets the title bar for that same area; the visibility the
        # tabbing changes is announced by show() and raise_() below, unblocked
        with QSignalBlocker(dock):
            window.tabifyDockWidget(siblings[0], dock)
        dock.show()
        dock.raise_()

    def docked(dock: QDockWidget) -> None:
        window = dock.parentWidget()
        if not isinstance(window, QMainWindow) or dock.isFloating():
            return
        group(dock, window)
        if on_docked is not None:
            on_docked(dock, window)

    _DockedWatcher(widget, docked)


def _docks(window: QMainWindow) -> list[QDockWidget]:
    """The window's dock widgets: its direct children (``QMainWindow`` parents every dock it
    holds, floating or not), without a walk of its ~1,300 widgets (3-7 ms in napari's
    window, more while a worker holds the GIL)."""
    return window.findChildren(QDockWidget, options=Qt.FindChildOption.FindDirectChildrenOnly)


def is_fitted(widget: QWidget) -> bool:
    """True for a dock that :func:`fit_dock` fitted (one of ours, as napari opens them)."""
    return widget in _FITTED


def _content_width(widget: QWidget) -> int:
    area = _FITTED[widget]
    return area.widget().minimumSizeHint().width() + area.verticalScrollBar().sizeHint().width()


def _widen(dock: QDockWidget, window: QMainWindow) -> None:
    """Make the dock's area as wide as the widest content of our docks there needs (none
    scrolls sideways), but at most :data:`MAX_DOCK_SHARE` of the window."""
    area = window.dockWidgetArea(dock)
    widths = [_content_width(d.widget()) for d in _docks(window)
              if not d.isHidden() and not d.isFloating() and window.dockWidgetArea(d) == area
              and d.widget() is not None and is_fitted(d.widget())]
    if not widths or area not in (Qt.LeftDockWidgetArea, Qt.RightDockWidgetArea):
        return
    width = min(max(widths), max(int(MAX_DOCK_SHARE * window.width()), MAX_DOCK_MIN_WIDTH))
    if width > dock.width():
        window.resizeDocks([dock], [width], Qt.Horizontal)


def fit_dock(widget: QWidget) -> None:
    """Scroll ``widget``'s content; once napari docks it, tab it with our other docks and
    give the area the width the content needs (up to a share of the window)."""
    _FITTED[widget] = scroll_contents(widget)
    tabify_when_docked(widget, is_fitted, _widen)
