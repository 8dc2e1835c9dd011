"""The core rooms must run without a screen, Qt or torch (DESIGN.md, import directions)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CORE = [
    "napari_iaa", "napari_iaa.data", "napari_iaa.agreement", "napari_iaa.calibration",
    "napari_iaa.review", "napari_iaa.scoring", "napari_iaa.cli", "napari_iaa.predict",
]
FORBIDDEN = ["torch", "qtpy", "PyQt5", "napari", "timm", "magicgui"]


@pytest.mark.parametrize("module", CORE)
def test_core_room_imports_no_gui_or_torch(module):
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} pulls in {out.stdout.strip()}"


def test_models_room_imports_no_qt():
    code = (
        "import sys, napari_iaa.models; "
        "print(','.join(m for m in ('qtpy', 'PyQt5', 'napari') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_training_imports_no_qt():
    code = (
        "import sys, training; "
        "print(','.join(m for m in ('qtpy', 'PyQt5', 'napari') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
