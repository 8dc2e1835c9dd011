"""Fixtures of the review-store tests: a private user data folder, sample data copies, the CLI."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from napari_iaa.data import sample_data_path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


#: a review store a dock left in the bundled samples is not part of the sample
_NO_STORE = shutil.ignore_patterns(".napari-iaa")


@pytest.fixture(autouse=True)
def user_data(tmp_path_factory, monkeypatch) -> Path:
    """``platformdirs.user_data_dir`` points into a temporary folder (never the real home)."""
    home = tmp_path_factory.mktemp("xdg-data")
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


@pytest.fixture
def synthetic(tmp_path) -> Path:
    """A copy of the bundled synthetic sample (40 dermoscopy-like cases, IMA++ layout)."""
    dest = tmp_path / "synthetic"
    shutil.copytree(sample_data_path("synthetic"), dest, ignore=_NO_STORE)
    return dest


@pytest.fixture
def lidc(tmp_path) -> Path:
    """A copy of the bundled LIDC sample (case ids with ``/``)."""
    dest = tmp_path / "lidc"
    shutil.copytree(sample_data_path("lidc"), dest, ignore=_NO_STORE)
    return dest


@pytest.fixture
def cli(capsys) -> Callable[..., tuple[int, str, str]]:
    """Run ``napari-iaa`` in-process: ``(exit code, stdout, stderr)``."""
    from napari_iaa.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main(list(args))
        out, err = capsys.readouterr()
        return rc, out, err

    return run
