"""Make ``import training`` find the project's package, not this test folder.

``tests/`` is on ``sys.path`` (pytest's rootdir conftest) and the editable install uses a
meta-path finder that runs after the path finder, so ``tests/training`` would otherwise
be imported as a namespace package called ``training``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
_mod = sys.modules.get("training")
if _mod is not None and getattr(_mod, "__file__", None) is None:
    del sys.modules["training"]
    for _name in [n for n in sys.modules if n.startswith("training.")]:
        del sys.modules[_name]
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import training  # noqa: E402,F401
