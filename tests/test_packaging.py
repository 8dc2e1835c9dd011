"""Packaging: where the bundled samples and models are found, and what the wheel carries.

The full check (a fresh venv with the wheel and its dependencies, the CLI and the npe2
hooks run from site-packages) is ``scripts/smoke_wheel.sh``, run by ``.ci/run``.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import napari_iaa
from napari_iaa.data.sample import SAMPLE_NAMES, bundled_root, sample_data_path
from napari_iaa.models.registry import shipped_models_dir

ROOT = Path(napari_iaa.__file__).resolve().parents[1]
SOURCE_TREE = (ROOT / "pyproject.toml").is_file() and (ROOT / "sample_data").is_dir()
needs_source = pytest.mark.skipif(not SOURCE_TREE, reason="not run from a source checkout")


def _data_files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


@needs_source
def test_source_checkout_finds_top_level_sample_data(monkeypatch):
    monkeypatch.delenv("NAPARI_IAA_SAMPLE_DATA", raising=False)
    assert bundled_root() == ROOT / "sample_data"
    assert shipped_models_dir() == ROOT / "sample_data" / "models"
    for name in SAMPLE_NAMES:
        assert sample_data_path(name) == ROOT / "sample_data" / name


def test_installed_layout_prefers_the_bundled_package(tmp_path):
    """A copy of ``data/sample.py`` inside a wheel-like tree finds ``napari_iaa/_bundled``."""
    pkg = tmp_path / "site-packages" / "napari_iaa"
    (pkg / "data").mkdir(parents=True)
    module_file = pkg / "data" / "sample.py"
    shutil.copy(Path(napari_iaa.__file__).parent / "data" / "sample.py", module_file)
    spec = importlib.util.spec_from_file_location("_wheel_sample_copy", module_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # without the bundled package it falls back to <parent>/sample_data (a checkout)
    assert module.bundled_root() == tmp_path / "site-packages" / "sample_data"
    (pkg / "_bundled" / "models").mkdir(parents=True)
    assert module.bundled_root() == pkg / "_bundled"


@needs_source
def test_extras_offer_both_qt_bindings():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = meta["optional-dependencies"]
    assert any(r.startswith("PyQt5") for r in extras["qt"])
    assert any(r.startswith("PyQt6") for r in extras["qt6"])
    assert "Framework :: napari" in meta["classifiers"]
    assert (ROOT / meta["license-files"][0]).is_file()


@needs_source
@pytest.mark.slow
def test_wheel_carries_every_sample_and_model(tmp_path):
    """Build the wheel from a copy of the checkout (no network: no build isolation)."""
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:  # the dev extra installs a newer one
        pytest.skip(f"setuptools {setuptools.__version__} < 77 cannot build this wheel")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".napari-iaa", "*.egg-info")
    for name in ("napari_iaa", "training", "sample_data"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    out = tmp_path / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-cache-dir", "-w", str(out), str(src)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (wheel,) = out.glob("napari_iaa-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    prefix = "napari_iaa/_bundled/"
    bundled = {n[len(prefix):] for n in names if n.startswith(prefix) and not n.endswith("/")}
    assert bundled == _data_files(ROOT / "sample_data")
    cards = {p.name for p in (ROOT / "sample_data" / "models").glob("*.json")}
    assert cards and cards <= {Path(n).name for n in bundled if n.startswith("models/")}
    assert "napari_iaa/napari.yaml" in names
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "sample_data/"))]
    assert not [n for n in names if "/.napari-iaa" in n]
