#!/usr/bin/env bash
# The GUI tests under one Qt binding, on a virtual display.
#
#   scripts/test_binding.sh pyqt5|pyqt6 [all|docks] [PYTEST ARGS]   PYTHON=.venv/bin/python
#
#   all    every widget test, then the gui-marked tests elsewhere (about 10 minutes here)
#   docks  each dock end to end: review (open, switch, edit, save), the data-set table,
#          predictions and training (87 tests, about 4.5 minutes here)
#
# The README's test command runs the whole suite under PyQt6: pytest-qt prefers it and
# [dev] installs both bindings. .ci/run then runs `pyqt5 docks`, so the binding the
# README's first command installs ([qt], PyQt5) is tested as well. The binding's extra
# is installed first if missing; qtpy, napari, superqt and magicgui follow QT_API and
# pytest-qt follows PYTEST_QT_API (both checked before the tests run).
set -euo pipefail
cd "$(dirname "$0")/.."
binding=${1:?"usage: scripts/test_binding.sh pyqt5|pyqt6 [all|docks] [PYTEST ARGS]"}
mode=${2:-all}
shift $(( $# < 2 ? $# : 2 ))
case $binding in
  pyqt5) extra=qt ;;
  pyqt6) extra=qt6 ;;
  *) echo "test_binding: unknown binding '$binding' (pyqt5 or pyqt6)" >&2; exit 2 ;;
esac
py=${PYTHON:-.venv/bin/python}
xvfb=(xvfb-run -a)
if [ -n "${DISPLAY:-}" ] || ! command -v xvfb-run >/dev/null 2>&1; then xvfb=(); fi
start=$(date +%s)

pkgs=$("$py" -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['$extra'])")
"$py" -m pip install -q --disable-pip-version-check $pkgs 2>&1 | grep -v "is ignored" || true
export QT_API=$binding PYTEST_QT_API=$binding
"$py" - "$binding" <<'EOF'
import sys

import qtpy
from pytestqt.qt_compat import qt_api

qt_api.set_qt_api(None)
want = sys.argv[1]
assert qtpy.API_NAME.lower() == want, f"qtpy uses {qtpy.API_NAME}, not {want}"
assert qt_api.pytest_qt_api == want, f"pytest-qt uses {qt_api.pytest_qt_api}, not {want}"
print(f"test_binding: qtpy and pytest-qt use {qtpy.API_NAME} {qtpy.QT_VERSION}")
EOF

run=("${xvfb[@]}" "$py" -m pytest -q -p no:cacheprovider)
case $mode in
  all)
    "${run[@]}" tests/widgets "$@"  # not every widget test carries the gui mark
    "${run[@]}" -m gui tests --ignore=tests/widgets "$@" ;;
  docks)
    "${run[@]}" tests/widgets/test_review_dock.py tests/widgets/test_review_edits.py \
      tests/widgets/test_dataset_jobs.py tests/widgets/test_predictions.py \
      tests/widgets/test_training_dock.py tests/widgets/test_training_form.py "$@" ;;
  *) echo "test_binding: unknown mode '$mode' (all or docks)" >&2; exit 2 ;;
esac
echo "test_binding: $mode GUI tests under $binding passed in $(( $(date +%s) - start )) s"
