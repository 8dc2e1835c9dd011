"""Reliability diagrams as matplotlib Figures (Agg; no pyplot global state)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from napari_iaa.data.writers import atomic_write_bytes

__all__ = ["reliability_figure", "plot_reliability"]


def reliability_figure(
    curves: Mapping[str, Mapping[str, Any]],
    title: str = "Reliability",
    figure: Figure | None = None,
) -> Figure:
    """Draw reliability curves (from :func:`reliability_curve`) on a Figure.

    Parameters
    ----------
    curves : mapping name -> curve dict
        Each with ``mean_pred``, ``mean_mhr`` and ``counts``.
    title : str
        Axes title.
    figure : Figure, optional
        Draw into this figure (e.g. a Qt canvas's) after clearing it.
    """
    fig = figure if figure is not None else Figure(figsize=(4.5, 4.5), dpi=100)
    if figure is not None:
        fig.clear()
    else:
        FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect")
    for name, c in curves.items():
        mp = np.asarray(c["mean_pred"], dtype=float)
        mm = np.asarray(c["mean_mhr"], dtype=float)
        ok = np.isfinite(mp) & np.isfinite(mm)
        ax.plot(mp[ok], mm[ok], marker="o", markersize=3, linewidth=1.5, label=str(name))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("empirical MHR (fraction of annotators)")
    ax.set_title(title)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


def plot_reliability(
    curves: Mapping[str, Mapping[str, Any]], path: str | Path, title: str = "Reliability"
) -> Path:
    """Write a reliability diagram PNG atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = reliability_figure(curves, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return path
