"""The review dock's warm-up imports, once idle, the modules asked for from above it (the
Predictions dock's own, named by ``widgets.docks``), so the click that opens that dock
does not import them."""

from __future__ import annotations

import importlib
import sys

import pytest

from napari_iaa.widgets.review import warmup

PROBE = "napari_iaa_idle_import_probe"


@pytest.fixture
def probe(tmp_path, monkeypatch):
    """A module nobody imported yet, and the warm-up's queue as before any ask."""
    (tmp_path / f"{PROBE}.py").write_text("VALUE = 1\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("NAPARI_IAA_NO_THREADS", raising=False)
    monkeypatch.setattr(warmup, "_ASKED", [])
    monkeypatch.setattr(warmup, "_IDLE_DONE", False)
    yield PROBE
    sys.modules.pop(PROBE, None)


def test_the_warm_up_thread_imports_what_was_asked_after_its_own(probe):
    warmup.import_when_idle((probe,))
    assert probe not in sys.modules  # not at the ask: the warm-up thread does it, later
    warmup._import_asked()  # what the warm-up thread runs after its idle imports
    assert probe in sys.modules and warmup._IDLE_DONE


def test_an_ask_after_the_warm_up_gets_a_thread_of_its_own(probe, monkeypatch, qtbot):
    monkeypatch.setattr(warmup, "_IDLE_DONE", True)
    warmup.import_when_idle((probe,))
    qtbot.waitUntil(lambda: probe in sys.modules, timeout=10000)


def test_no_background_import_without_threads(probe, monkeypatch):
    monkeypatch.setenv("NAPARI_IAA_NO_THREADS", "1")
    monkeypatch.setattr(warmup, "_IDLE_DONE", True)
    warmup.import_when_idle((probe,))
    assert warmup._ASKED == [] and probe not in sys.modules


def test_the_review_dock_asks_for_the_other_docks_modules(make_napari_viewer, monkeypatch):
    """The Predictions and Training docks' modules are imported in the background once the
    review dock is idle, so the plugin-menu click that opens either does not import them."""
    from napari_iaa.widgets.docks import review as review_dock

    asked: list[tuple[str, ...]] = []
    monkeypatch.setattr(review_dock, "import_when_idle", asked.append)
    review_dock.ReviewDock(make_napari_viewer())
    assert asked == [review_dock.PREDICTIONS_MODULES + review_dock.TRAINING_MODULES]
    for name in asked[0]:  # names of real modules, importable
        assert importlib.import_module(name).__name__ == name
    assert "napari_iaa.widgets.predictions" in review_dock.PREDICTIONS_MODULES
    assert "napari_iaa.widgets.docks.training" in review_dock.TRAINING_MODULES
