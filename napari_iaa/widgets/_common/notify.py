"""napari notifications that never raise (a notification must not break a dock)."""

from __future__ import annotations

import sys

__all__ = ["notify_error", "notify_info", "notify_warning"]


def _show(kind: str, message: str) -> None:
    try:
        from napari.utils import notifications

        getattr(notifications, f"show_{kind}")(str(message))
    except Exception:  # noqa: BLE001 - the notification machinery itself failed: stderr
        print(f"napari-iaa: {message}", file=sys.stderr)


def notify_error(message: str) -> None:
    """Show ``message`` as a napari error notification (never raises, never blocks)."""
    _show("error", message)


def notify_warning(message: str) -> None:
    """Show ``message`` as a napari warning notification (never raises)."""
    _show("warning", message)


def notify_info(message: str) -> None:
    """Show ``message`` as a napari information notification (never raises)."""
    _show("info", message)
