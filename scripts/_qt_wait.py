"""Waiting on Qt for the screenshot scripts: run the event loop until a condition holds."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait(cond: Callable[[], bool], timeout_s: float = 1800.0) -> None:
    """Process Qt events until ``cond()`` is true; ``TimeoutError`` after ``timeout_s``."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("condition not reached")
        QApplication.processEvents()
        time.sleep(0.01)


def settle(n: int = 30) -> None:
    """Let pending paints and queued signals run (``n`` rounds of 10 ms)."""
    from qtpy.QtWidgets import QApplication

    for _ in range(n):
        QApplication.processEvents()
        time.sleep(0.01)
