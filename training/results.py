"""What a fit returns (:class:`FitResult`) and how its stages share one progress scale."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FitResult", "stage_progress"]

Progress = Callable[[int, int], None]


@dataclass
class FitResult:
    """What a fit produced.

    Attributes
    ----------
    checkpoint_path : Path or None
        The best model's card (``<name>.json``); None if no epoch finished.
    metrics : dict
        Held-out metrics (empty when cancelled before the end).
    cancelled : bool
    history : list of dict
        Per-epoch metrics.
    images_per_second : float
        Training throughput of the loop.
    seconds : float
        Wall time of the whole fit.
    warnings : list of str
        Problems found before or after training (too few steps, held-out splits too small
        to measure anything, temperature scaling at its bound), each with settings to try.
    """

    checkpoint_path: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    images_per_second: float = 0.0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def stage_progress(progress: Progress | None, offset: float, span: float) -> Progress | None:
    """Map a stage's ``(done, total)`` onto the 0..1000 scale of the whole fit.

    The stage covers ``[offset, offset + span]`` of the fit (fractions of 1); None when
    there is no ``progress`` to report to.
    """
    if progress is None:
        return None

    def cb(done: int, total: int) -> None:
        progress(int(1000 * (offset + span * done / max(1, total))), 1000)

    return cb
