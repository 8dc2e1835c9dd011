"""Typed messages a background worker sends to its dock (instead of tuples and dicts).

A worker yields these; the dock's ``on_yield`` dispatches on the type
(``match msg: case Progress(): ...``). Dock-specific messages live in the dock's own
package (for example ``widgets/training/events.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeviceInUse", "Progress", "Status"]


@dataclass(frozen=True, slots=True)
class Progress:
    """``done`` of ``total`` steps finished (``total`` 0: not known yet); ``text`` says what."""

    done: int
    total: int
    text: str = ""


@dataclass(frozen=True, slots=True)
class Status:
    """A line of status text for the dock's log or label."""

    text: str


@dataclass(frozen=True, slots=True)
class DeviceInUse:
    """The torch device a worker is running on (``"cpu"``, ``"cuda:0"``, ``"mps"``)."""

    device: str
