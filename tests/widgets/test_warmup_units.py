"""The review dock's warm-up builds pint's unit registry in a thread without ever showing
a half-built registry to the GUI thread: a layer napari adds while the warm-up runs (the
dock opening a case at once) gets its units, and a registry napari already used is kept.

pint's default application registry builds itself lazily, in place and not thread-safely;
the warm-up used to trigger that build from its thread, and napari's first layer, added on
the GUI thread meanwhile, failed with "'pixel' is not defined in the unit registry" (a CI
run's first GUI test, 2026-12-02).
"""

from __future__ import annotations

import threading

import pint
import pytest
from pint.registry import LazyRegistry, UnitRegistry

from napari_iaa.widgets.review import warmup


@pytest.fixture
def fresh_units(monkeypatch):
    """pint's application registry as in a new process: lazy, not built yet."""
    monkeypatch.setattr(pint.get_application_registry(), "_registry", LazyRegistry())
    return pint.get_application_registry()


@pytest.fixture
def slow_warm_up_build(monkeypatch):
    """While the warm-up thread builds a registry, its build stops half-way until
    ``release`` is set (as a build on a loaded machine, 0.3 s of parsing, stretched)."""
    halfway, release = threading.Event(), threading.Event()
    after_init = UnitRegistry._after_init

    def held(self, *args, **kwargs):
        if threading.current_thread().name == "napari-iaa-warm-up":
            halfway.set()
            release.wait(30)
        return after_init(self, *args, **kwargs)

    monkeypatch.setattr(UnitRegistry, "_after_init", held)
    yield halfway, release
    release.set()


def _warm_up_thread(relay=None) -> threading.Thread:
    th = threading.Thread(target=warmup._warm_up, args=(relay,), name="napari-iaa-warm-up",
                          daemon=True)
    th.start()
    return th


def test_napari_gets_its_units_while_the_warm_up_builds_them(fresh_units, slow_warm_up_build,
                                                             monkeypatch, qtbot):
    import napari.layers
    import numpy as np

    monkeypatch.setattr(warmup, "_import_all", lambda names: None)  # the registry only
    monkeypatch.setattr(warmup, "IDLE_IMPORT_DELAY_S", 0)
    halfway, release = slow_warm_up_build
    relay = warmup._registry_relay()
    th = _warm_up_thread(relay)
    assert halfway.wait(30)
    # the GUI thread adds napari's first layer while the warm-up's build is half done
    layer = napari.layers.Image(np.zeros((2, 3)))
    assert layer.units == (fresh_units.pixel, fresh_units.pixel)
    built_by_napari = fresh_units.get()
    release.set()
    th.join(30)
    qtbot.waitUntil(lambda: relay not in warmup._KEEP, timeout=5000)  # the relay's turn
    assert isinstance(fresh_units.get(), UnitRegistry)
    assert fresh_units.get() is built_by_napari  # napari built the registry: it is kept
    assert napari.layers.Image(np.zeros((1, 1))).units == layer.units  # one registry for all layers


def test_the_registry_built_in_the_warm_up_becomes_the_applications(fresh_units, monkeypatch,
                                                                    qtbot):
    monkeypatch.setattr(warmup, "_import_all", lambda names: None)
    monkeypatch.setattr(warmup, "IDLE_IMPORT_DELAY_S", 0)
    lazy = fresh_units.get()
    th = _warm_up_thread(warmup._registry_relay())
    th.join(30)
    assert fresh_units.get() is lazy  # not from the warm-up thread: on the GUI thread
    qtbot.waitUntil(lambda: fresh_units.get() is not lazy, timeout=5000)
    assert type(fresh_units.get()) is UnitRegistry and not isinstance(lazy, UnitRegistry)
    assert str(fresh_units.pixel) == "pixel"  # pint's units, ready for napari


def test_a_registry_already_used_is_kept():
    app = pint.get_application_registry()
    app.pixel  # noqa: B018 - used (built) by napari
    before = app.get()
    assert warmup.install_unit_registry(warmup.build_unit_registry()) is False
    assert app.get() is before
