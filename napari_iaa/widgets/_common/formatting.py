"""Number formatting for tables and labels: one rule for missing and non-finite values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["MISSING", "elide_middle", "fmt_number", "fmt_value", "metrics_summary"]

#: what a missing, non-numeric or non-finite number shows as
MISSING = "—"


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def fmt_number(value: Any, spec: str = ".3f", missing: str = MISSING) -> str:
    """``value`` formatted with ``spec``; ``missing`` for None, NaN, inf and non-numbers.

    >>> fmt_number(0.91234), fmt_number(float("nan")), fmt_number(None)
    ('0.912', '—', '—')
    """
    f = _finite(value)
    return missing if f is None else format(f, spec)


def fmt_value(value: Any, spec: str = ".4g", missing: str = MISSING) -> str:
    """Numbers formatted with ``spec`` (non-finite -> ``missing``), anything else as ``str``.

    >>> fmt_value(0.000123456), fmt_value("benign"), fmt_value(float("inf"))
    ('0.0001235', 'benign', '—')
    """
    if isinstance(value, str | bool):
        return str(value)
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return format(f, spec) if math.isfinite(f) else missing


_SKIP_METRICS = {"training", "n_cases", "n", "split", "reliability", "per_annotator", "epoch",
                 "baseline_constant", "seconds", "images_per_second"}


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def metrics_summary(metrics: Mapping[str, Any] | None, limit: int = 3) -> str:
    """Held-out metrics (the test split first, else validation) in one short line.

    Parameters
    ----------
    metrics
        A model card's ``metrics`` (or a training run's).
    limit
        How many values to show.
    """
    metrics = metrics or {}
    for split in ("test", "val"):
        if isinstance(metrics.get(split), Mapping):
            metrics = metrics[split]
            break
    flat: list[tuple[str, Any]] = []
    for k, v in metrics.items():
        if k in _SKIP_METRICS:
            continue
        if isinstance(v, Mapping):
            flat += [(f"{k}.{kk}", vv) for kk, vv in v.items()
                     if kk not in _SKIP_METRICS and _is_number(vv)]
        elif _is_number(v):
            flat.append((k, v))
    return ", ".join(f"{k}={fmt_value(v, '.3g', missing='nan')}" for k, v in flat[:limit])


def elide_middle(text: str, limit: int = 14) -> str:
    """``text`` cut to ``limit`` characters in the middle (``reader_1…ation``), so both
    ends of a long id stay readable; give the whole text in a tooltip."""
    text = str(text)
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - 1 - head
    return f"{text[:head]}…{text[-tail:] if tail else ''}"
