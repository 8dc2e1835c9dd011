"""Fixtures of the cross-cutting reliability suite (bad input, nothing lost, untrusted
models, load). Helpers live in ``reliability_helpers.py`` (a unique module name: several
test folders have a ``conftest``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from reliability_helpers import write_huge_png

# Importing torch's compiler stack (torch._dynamo -> triton, which timm/torchvision pull in)
# *after* a napari viewer has created its OpenGL context segfaults under Xvfb/mesa (both
# ship LLVM). The GUI tests here run before the training ones, so load it first, as a
# full-suite run does when tests/models is collected. See docs/reliability.md, Known gaps.
with contextlib.suppress(ImportError):  # torch is optional for the data-only tests
    import torch._dynamo  # noqa: F401


@pytest.fixture(scope="session")
def huge_png(tmp_path_factory) -> Callable[..., Path]:
    """``huge_png(dest, bit_depth=8)``: hard-link (or copy) a 20000 x 20000 PNG to ``dest``;
    each variant is generated once per session."""
    import shutil

    folder = tmp_path_factory.mktemp("huge")
    made: dict[int, Path] = {}

    def place(dest: Path, bit_depth: int = 8) -> Path:
        if bit_depth not in made:
            made[bit_depth] = write_huge_png(folder / f"huge{bit_depth}.png", bit_depth=bit_depth)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.unlink(missing_ok=True)
        try:
            os.link(made[bit_depth], dest)
        except OSError:
            shutil.copyfile(made[bit_depth], dest)
        return dest

    return place


@pytest.fixture
def cli(capsys):
    """``cli(*args) -> (exit code, stdout, stderr)`` through ``napari_iaa.cli.main``."""
    from napari_iaa.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


