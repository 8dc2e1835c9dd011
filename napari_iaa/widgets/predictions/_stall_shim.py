"""shim: removed at integration (moved to tests/widgets/conftest.py; the training dock's
test still imports it from here)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QTimer


def measure_event_loop_stall(run: Callable[[], Any], wait: Callable[[], bool], qtbot: Any,
                             interval_ms: int = 5, timeout_ms: int = 120_000) -> float:
    """Longest gap (ms) between ticks of a ``QTimer`` heartbeat while ``run`` works."""
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000.0)
        last[0] = now

    timer = QTimer()
    timer.setInterval(interval_ms)
    timer.timeout.connect(tick)
    timer.start()
    last[0] = time.perf_counter()
    try:
        run()
        qtbot.waitUntil(wait, timeout=timeout_ms)
    finally:
        timer.stop()
    return max(gaps) if gaps else math.nan
