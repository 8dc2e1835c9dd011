"""``napari-iaa view``: open napari with the review dock on a data set."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from napari_iaa.cli._common import LAYOUT_CHOICES, add_unit_argument, open_for_cli, warn
from napari_iaa.data import Dataset, sample_data_path
from napari_iaa.errors import ConfigError, DatasetError

__all__ = ["add_view_parser", "display_problem", "run_view"]


def add_view_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``view`` to the sub-command parsers."""
    p = sub.add_parser("view", help="open napari with the review dock",
                       description="Open napari with the review dock on DATASET (default: the "
                       "bundled synthetic sample). Needs a display; on a headless Linux machine "
                       "use xvfb-run -a.")
    p.add_argument("dataset", metavar="DATASET", nargs="?", default=None)
    p.add_argument("--layout", choices=LAYOUT_CHOICES, default=None)
    add_unit_argument(p)
    p.add_argument("--case", default=None, metavar="ID", help="case to open first")
    p.set_defaults(func=run_view)
    return p


def display_problem(environ: dict[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why a window cannot open here, or None if it can.

    On Linux a window needs ``DISPLAY`` or ``WAYLAND_DISPLAY`` (or
    ``QT_QPA_PLATFORM=offscreen``); other systems are assumed to have a screen.
    """
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    if not plat.startswith("linux"):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    if env.get("QT_QPA_PLATFORM", "").split(":")[0] == "offscreen":
        return None
    return (
        "no display: neither DISPLAY nor WAYLAND_DISPLAY is set, so napari cannot open a "
        "window; run on a desktop, or under a virtual display: xvfb-run -a napari-iaa view "
        "(Debian/Ubuntu: apt-get install xvfb)"
    )


def run_view(args: argparse.Namespace) -> int:
    """Run ``napari-iaa view``: napari with the review dock, until the window closes."""
    problem = display_problem()
    if problem is not None:
        raise ConfigError(problem)
    path = Path(args.dataset) if args.dataset else sample_data_path("synthetic")
    ds = open_for_cli(path, args.layout, args.unit)
    if len(ds) == 0:
        raise DatasetError(f"{path}: no cases found")
    for p in ds.problems:
        warn(str(p))

    import napari  # lazy: only the viewer needs Qt

    viewer = napari.Viewer(title=f"napari-iaa: {path.name}")
    _attach_review_dock(viewer, ds, source=path, case_id=args.case)
    napari.run()
    return 0


def _attach_review_dock(viewer: Any, ds: Dataset, source: str | Path | None = None,
                        case_id: str | None = None) -> Any:
    """Dock the review widget on ``viewer`` and show ``ds`` (``case_id`` or the first case)."""
    # the one place the command line reaches into the widgets: it opens the GUI (lazy: Qt)
    from napari_iaa.widgets import ReviewWidget

    if case_id is not None and case_id not in ds:
        raise DatasetError(f"{ds.root}: no case {case_id!r} in this data set")
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="IAA review", area="right")
    widget.set_dataset(ds, source=str(source) if source is not None else None, case_id=case_id)
    return widget
