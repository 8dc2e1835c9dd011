"""glibc's malloc thresholds, pinned where our own work starts (napari_iaa._malloc)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import napari_iaa._malloc as malloc_mod
from napari_iaa import cli

GLIBC = malloc_mod._glibc()

# Eight 3 MiB blocks written, freed, allocated again: a forward's activations call after
# call (a resnet18's first activations at 224 px are 3 MiB each). Prints whether the
# thresholds were set and the page faults of the third round.
_ROUNDS = """
import resource, sys
import numpy as np
from napari_iaa._malloc import tune_malloc
tuned = tune_malloc() if sys.argv[1] == "tune" else False
def one_round():
    blocks = [np.ones(3 << 20, np.uint8) for _ in range(8)]
    del blocks
one_round(); one_round()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
one_round()
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _python(code: str, *args: str, **env: str) -> list[str]:
    """``code`` run by a fresh interpreter without the user's malloc settings (+ ``env``)."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_",
                          "NAPARI_IAA_MALLOC_TUNING")}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=True, env={**clean, **env}, timeout=300).stdout.split()


def _rounds(mode: str, **env: str) -> tuple[bool, int]:
    out = _python(_ROUNDS, mode, **env)
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt")
def test_freed_blocks_are_reused_without_page_faults():
    """The third round reuses the heap: no page is faulted in again (24 MiB = 6,144 pages)."""
    tuned, faults = _rounds("tune")
    assert tuned
    default_set, default_faults = _rounds("default")
    assert not default_set
    if default_faults < 3000:
        pytest.skip(f"this glibc's defaults already reuse the blocks ({default_faults} faults)")
    assert faults < 300, f"{faults} page faults with the thresholds set ({default_faults} without)"


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt")
@pytest.mark.parametrize("env", [{"NAPARI_IAA_MALLOC_TUNING": "0"},
                                 {"MALLOC_TRIM_THRESHOLD_": str(1 << 20)}])
def test_the_user_switch_and_glibcs_own_variables_win(env):
    tuned, _ = _rounds("tune", **env)
    assert not tuned


def test_every_napari_iaa_command_sets_the_thresholds_once(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(cli, "tune_malloc", lambda: calls.append(1) or True)
    assert cli.main(["score", str(tmp_path / "missing"), "--out", str(tmp_path / "s.csv")]) == 2
    assert calls == [1]


def test_it_runs_once_per_process(monkeypatch):
    applied = []
    monkeypatch.setattr(malloc_mod, "_applied", None)
    monkeypatch.setattr(malloc_mod, "_apply", lambda: applied.append(1) or True)
    assert malloc_mod.tune_malloc() and malloc_mod.tune_malloc()
    assert applied == [1]


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt")
def test_the_docks_first_torch_load_sets_the_thresholds():
    """The Predictions and Training docks load torch through ``load_torch``: their forwards
    reuse freed activations as the commands' do."""
    code = ("import napari_iaa._malloc as m\n"
            "from napari_iaa.models.torch_import import load_torch\n"
            "before = m._applied\n"
            "load_torch()\n"
            "print(before, m._applied)")
    assert _python(code) == ["None", "True"]
