"""Cohort statistics: per-case IAA by group, one-sided Mann-Whitney U, two-sample KS."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from napari_iaa.errors import ConfigError, DatasetError

__all__ = ["CohortResult", "cohort_statistics", "load_imapp_tables", "plot_cohort"]


def _jf(x: Any) -> Any:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


@dataclass
class CohortResult:
    """Result of :func:`cohort_statistics`.

    Attributes
    ----------
    groups : list of str
        Group names in order; the tests compare ``groups[0]`` with ``groups[1]``.
    n, mean, median, std : dict str -> number
        Per group (std with ddof=1).
    alternative : str
        Alternative hypothesis of the Mann-Whitney U test, about ``groups[0]``
        relative to ``groups[1]`` (``"less"``: the first group's values are lower).
    mw_u, mw_p : float
        Mann-Whitney U statistic (of the first group) and p-value.
    ks_d, ks_p : float
        Two-sample Kolmogorov-Smirnov statistic and two-sided p-value.
    values : dict str -> ndarray
        The values of each group (NaNs dropped), for plots.
    n_dropped : int
        Values left out: missing value or group, or a group not in ``groups``.
    """

    groups: list[str]
    n: dict[str, int]
    mean: dict[str, float]
    median: dict[str, float]
    std: dict[str, float]
    alternative: str
    mw_u: float
    mw_p: float
    ks_d: float
    ks_p: float
    values: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    n_dropped: int = 0
    value_name: str = "IAA"

    @property
    def significant(self) -> bool:
        """Whether the Mann-Whitney p-value is below 0.05."""
        return bool(self.mw_p < 0.05)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (no arrays; NaN becomes ``None``)."""
        return {
            "value_name": self.value_name,
            "groups": list(self.groups),
            "n": {g: int(v) for g, v in self.n.items()},
            "mean": {g: _jf(v) for g, v in self.mean.items()},
            "median": {g: _jf(v) for g, v in self.median.items()},
            "std": {g: _jf(v) for g, v in self.std.items()},
            "n_dropped": int(self.n_dropped),
            "mann_whitney": {
                "alternative": self.alternative,
                "first_group": self.groups[0] if self.groups else None,
                "second_group": self.groups[1] if len(self.groups) > 1 else None,
                "U": _jf(self.mw_u),
                "p": _jf(self.mw_p),
            },
            "ks": {"D": _jf(self.ks_d), "p": _jf(self.ks_p), "alternative": "two-sided"},
        }

    def table(self) -> str:
        """Plain-text table of the group statistics and the tests."""
        w = max([len("group")] + [len(g) for g in self.groups])
        lines = [f"{'group':<{w}}  {'n':>6}  {'mean':>7}  {'median':>7}  {'std':>7}"]
        for g in self.groups:
            lines.append(
                f"{g:<{w}}  {self.n[g]:>6d}  {self.mean[g]:>7.4f}  {self.median[g]:>7.4f}  "
                f"{self.std[g]:>7.4f}"
            )
        if len(self.groups) >= 2:
            a, b = self.groups[0], self.groups[1]
            rel = {"less": "<", "greater": ">", "two-sided": "!="}[self.alternative]
            lines.append(
                f"Mann-Whitney U ({self.value_name}[{a}] {rel} {self.value_name}[{b}]): "
                f"U = {self.mw_u:.1f}, p = {self.mw_p:.3g}"
            )
            lines.append(
                f"Kolmogorov-Smirnov (two-sided): D = {self.ks_d:.4f}, p = {self.ks_p:.3g}"
            )
        if self.n_dropped:
            lines.append(f"({self.n_dropped} values without a value or a group were left out)")
        return "\n".join(lines)


def _default_order(names: list[str]) -> list[str]:
    lower = [n.lower() for n in names]
    if "malignant" in lower:
        first = names[lower.index("malignant")]
        return [first] + sorted(n for n in names if n != first)
    return sorted(names)


def cohort_statistics(
    values: Sequence[float] | np.ndarray,
    groups: Sequence[Any] | np.ndarray,
    alternative: Literal["less", "greater", "two-sided"] = "less",
    group_order: Sequence[str] | None = None,
    value_name: str = "IAA",
) -> CohortResult:
    """Compare a per-case value (e.g. IAA) between two groups.

    Parameters
    ----------
    values : sequence of float
        One value per case; NaN values are left out.
    groups : sequence
        The group of each case (e.g. ``benign``/``malignant``); missing groups (None,
        NaN, empty) are left out.
    alternative : {"less", "greater", "two-sided"}
        Mann-Whitney U alternative for the first group against the second ("less": the
        first group has lower values).
    group_order : sequence of str, optional
        Groups to use, in order; the tests compare the first two. Default: all groups
        sorted, with ``malignant`` first when present.
    value_name : str
        Name used in the table and plot.

    Returns
    -------
    CohortResult
    """
    from scipy import stats

    if alternative not in ("less", "greater", "two-sided"):
        raise ConfigError(f"alternative must be less, greater or two-sided, got {alternative!r}")
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    g_raw = list(groups)
    if len(g_raw) != v.size:
        raise ConfigError(f"{v.size} values but {len(g_raw)} group labels")
    g = []
    for x in g_raw:
        if x is None or (isinstance(x, float) and math.isnan(x)) or str(x).strip() == "":
            g.append(None)
        else:
            g.append(str(x))
    ok = np.array([x is not None for x in g], bool) & np.isfinite(v)
    present = sorted({x for x, k in zip(g, ok, strict=True) if k})
    order = [str(x) for x in group_order] if group_order is not None else _default_order(present)
    missing = [x for x in order if x not in present]
    if missing:
        raise ConfigError(f"group(s) {missing} have no values; groups present: {present}")
    if len(order) < 2:
        raise ConfigError(f"need at least two groups to compare, got {order}")
    garr = np.array([x if x is not None else "" for x in g], dtype=object)
    per = {name: v[ok & (garr == name)] for name in order}
    used = sum(a.size for a in per.values())
    a, b = per[order[0]], per[order[1]]
    mw = stats.mannwhitneyu(a, b, alternative=alternative)
    ks = stats.ks_2samp(a, b, alternative="two-sided")
    return CohortResult(
        groups=order,
        n={k: int(x.size) for k, x in per.items()},
        mean={k: float(x.mean()) for k, x in per.items()},
        median={k: float(np.median(x)) for k, x in per.items()},
        std={k: float(x.std(ddof=1)) if x.size > 1 else float("nan") for k, x in per.items()},
        alternative=alternative,
        mw_u=float(mw.statistic),
        mw_p=float(mw.pvalue),
        ks_d=float(ks.statistic),
        ks_p=float(ks.pvalue),
        values=per,
        n_dropped=int(v.size - used),
        value_name=value_name,
    )


def plot_cohort(result: CohortResult, path: str | Path, dpi: int = 120) -> Path:
    """Save ECDFs and histograms of the value by group, with the test results, as PNG.

    Uses matplotlib's Agg canvas directly (no pyplot state), so it is safe off the GUI
    thread and without a display.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(10, 4.2))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    allv = (
        np.concatenate([result.values[g] for g in result.groups]) if result.values else np.zeros(0)
    )
    lo = float(np.min(allv)) if allv.size else 0.0
    hi = float(np.max(allv)) if allv.size else 1.0
    if hi <= lo:
        hi = lo + 1.0
    bins = np.linspace(lo, hi, 31)
    colors = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    for k, gname in enumerate(result.groups):
        x = np.sort(result.values[gname])
        c = colors[k % len(colors)]
        label = f"{gname} (n={x.size}, median={np.median(x):.3f})" if x.size else gname
        if x.size:
            y = np.arange(1, x.size + 1) / x.size
            ax1.step(
                np.concatenate([[lo], x]),
                np.concatenate([[0.0], y]),
                where="post",
                color=c,
                label=label,
            )
            ax2.hist(x, bins=bins, density=True, alpha=0.45, color=c, label=gname, edgecolor=c)
    ax1.set_xlabel(result.value_name)
    ax1.set_ylabel("cumulative fraction of cases")
    ax1.set_title(f"ECDF of {result.value_name} by group")
    ax1.legend(loc="upper left", fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.set_xlabel(result.value_name)
    ax2.set_ylabel("density")
    ax2.set_title(f"Histogram of {result.value_name} by group")
    ax2.legend(loc="upper left", fontsize=8)
    if len(result.groups) >= 2:
        rel = {"less": "<", "greater": ">", "two-sided": "≠"}[result.alternative]
        fig.suptitle(
            f"Mann-Whitney U ({result.groups[0]} {rel} {result.groups[1]}): p = {result.mw_p:.3g}"
            f"    KS: D = {result.ks_d:.3f}, p = {result.ks_p:.3g}",
            fontsize=10,
        )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def load_imapp_tables(directory: str | Path) -> Any:
    """Join the published IMA++ image-level agreement table with the image metadata.

    Parameters
    ----------
    directory : path
        Folder with ``IMAplusplus_multiannotator_subset_image_level_metrics.csv`` and
        ``IMAplusplus_img_metadata.csv``.

    Returns
    -------
    pandas.DataFrame
        One row per image: ``img_id``, ``isic_id``, ``dice_score_mean`` (the image's
        IAA), ``dice_score_std``, ``benign_malignant``, ``diagnosis_1`` ... (the
        metadata columns).

    Raises
    ------
    DatasetError
        If a file is missing or lacks a needed column.
    """
    import pandas as pd

    d = Path(directory)
    img_csv = d / "IMAplusplus_multiannotator_subset_image_level_metrics.csv"
    meta_csv = d / "IMAplusplus_img_metadata.csv"
    tables = {}
    for p, cols in (
        (img_csv, ("img_id", "dice_score_mean")),
        (meta_csv, ("isic_id", "benign_malignant")),
    ):
        if not p.is_file():
            raise DatasetError(f"{p}: file not found")
        try:
            t = pd.read_csv(p, low_memory=False)
        except Exception as e:  # pandas raises several types
            raise DatasetError(f"{p}: cannot read CSV ({e})") from e
        lacking = [c for c in cols if c not in t.columns]
        if lacking:
            raise DatasetError(f"{p}: missing column(s) {lacking}")
        tables[p] = t
    img, meta = tables[img_csv], tables[meta_csv]
    img = img.copy()
    img["isic_id"] = img["img_id"].astype(str).str.replace(r"\.[A-Za-z]+$", "", regex=True)
    meta = meta.drop_duplicates("isic_id")
    return img.merge(meta, on="isic_id", how="left")
