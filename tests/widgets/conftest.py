"""Fixtures of the widget tests: a tiny synthetic data set and a review dock."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A tiny synthetic IMA++-layout data set (8 cases, 96x96, 3-5 annotators)."""
    from napari_iaa.data import generate_synthetic_dataset

    out = tmp_path_factory.mktemp("widgets") / "synthetic"
    return Path(
        generate_synthetic_dataset(out, n=8, seed=3, size=(96, 96), n_annotators=(3, 5))
    )


@pytest.fixture
def synthetic_copy(synthetic_root, tmp_path) -> Path:
    """A private copy of the synthetic data set (tests that write beside the masks)."""
    dst = tmp_path / "synthetic"
    shutil.copytree(synthetic_root, dst)
    return dst


@pytest.fixture
def review(make_napari_viewer, qtbot):
    """A viewer with the review dock (not yet on a data set)."""
    from napari_iaa.widgets import ReviewWidget

    viewer = make_napari_viewer()
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Review")
    widget.unsaved_policy = "discard"
    return viewer, widget
