"""Flag rules of the data-set table: which cases a reviewer should look at, and why.

Two kinds of disagreement (issue 12) can be flagged separately besides today's rule:

- ``iaa``: the case's IAA is below a threshold (the default, and the only rule on by
  default; on LIDC slices it mostly flags slices a reader did not mark);
- ``detection``: fewer than ``k`` annotators marked the case (``n_marked < k``), "did the
  readers agree that there is a lesion here";
- ``boundary``: the IAA among the annotators who marked it (``iaa_marked``, defined with
  two or more) is below a threshold, "where do those who marked it draw its border".

A case is flagged when any rule that is on fires; :func:`flag_reasons` says which. No Qt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["RULE_NAMES", "FlagRules", "flag_reasons"]

#: rule key -> the word the "flagged by" column uses
RULE_NAMES = {"iaa": "IAA", "detection": "detection", "boundary": "boundary"}


@dataclass(frozen=True)
class FlagRules:
    """Which rules flag a case; a rule whose value is None is off.

    Attributes
    ----------
    iaa_below : float or None
        Flag IAA < this (default 0.7: today's rule).
    marked_below : int or None
        Flag ``n_marked`` < this ("marked by fewer than k of n").
    boundary_below : float or None
        Flag ``iaa_marked`` < this (cases with fewer than two marks have no boundary IAA
        and are not flagged by this rule).
    """

    iaa_below: float | None = 0.7
    marked_below: int | None = None
    boundary_below: float | None = None

    def describe(self) -> str:
        """The rules that are on, in words (for the count label and tooltips)."""
        parts = []
        if self.iaa_below is not None:
            parts.append(f"IAA < {self.iaa_below:.2f}")
        if self.marked_below is not None:
            parts.append(f"marked by fewer than {self.marked_below}")
        if self.boundary_below is not None:
            parts.append(f"boundary IAA < {self.boundary_below:.2f}")
        return " or ".join(parts) if parts else "no rule"


def _number(v: Any) -> float:
    """``v`` as a finite float, else NaN (missing, text, not scored yet)."""
    if v is None or isinstance(v, bool | str):
        return math.nan
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f if math.isfinite(f) else math.nan


def flag_reasons(rules: FlagRules, iaa: Any, n_marked: Any, iaa_marked: Any) -> list[str]:
    """The rules (keys of :data:`RULE_NAMES`) that flag a case with these values.

    Missing values (not scored yet, unreadable) fire no rule.

    Examples
    --------
    >>> flag_reasons(FlagRules(0.7, 3, 0.7), iaa=0.4, n_marked=2, iaa_marked=0.9)
    ['iaa', 'detection']
    >>> flag_reasons(FlagRules(), iaa=float("nan"), n_marked=0, iaa_marked=None)
    []
    """
    out = []
    v = _number(iaa)
    if rules.iaa_below is not None and v < rules.iaa_below:
        out.append("iaa")
    k = _number(n_marked)
    if rules.marked_below is not None and k < rules.marked_below:
        out.append("detection")
    b = _number(iaa_marked)
    if rules.boundary_below is not None and b < rules.boundary_below:
        out.append("boundary")
    return out
