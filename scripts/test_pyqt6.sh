#!/usr/bin/env bash
# Every GUI test under PyQt6 (napari's recommended binding): scripts/test_binding.sh pyqt6 all.
# The README's test command already runs under PyQt6 when both bindings are installed
# (pytest-qt prefers it); this forces it.
#
#   scripts/test_pyqt6.sh [PYTEST ARGS]    PYTHON=.venv/bin/python by default
set -euo pipefail
exec bash "$(dirname "$0")/test_binding.sh" pyqt6 all "$@"
