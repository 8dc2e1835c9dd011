"""Number formatting for tables and labels: one rule for missing and non-finite values."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MISSING", "fmt_number", "fmt_value"]

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
