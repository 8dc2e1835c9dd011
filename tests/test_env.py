"""Every NAPARI_IAA_* switch follows one rule for on and off."""

from __future__ import annotations

import pytest

from napari_iaa import _env


@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes ", "on", "2"])
def test_switch_on(monkeypatch, value):
    monkeypatch.setenv(_env.NO_THREADS, value)
    assert _env.flag(_env.NO_THREADS) is True


@pytest.mark.parametrize("value", ["", "0", "false", "No", " off "])
def test_switch_off(monkeypatch, value):
    monkeypatch.setenv(_env.NO_THREADS, value)
    assert _env.flag(_env.NO_THREADS, default=True) is False


def test_unset_switch_takes_its_default(monkeypatch):
    monkeypatch.delenv(_env.NUMBA, raising=False)
    assert _env.flag(_env.NUMBA, default=True) is True
    assert _env.flag(_env.NUMBA) is False


@pytest.mark.parametrize(("value", "want"), [("3", 3), ("0", 1), ("x", 2), ("", 2), ("4.0", 4)])
def test_integer(monkeypatch, value, want):
    monkeypatch.setenv(_env.THREADS, value)
    assert _env.integer(_env.THREADS, default=2, minimum=1) == want
