#!/usr/bin/env bash
# The GUI tests once more under PyQt6 (napari's recommended binding; PyQt5 stays the
# default, which the README's test command uses). Installs the `qt6` extra's PyQt6 beside
# PyQt5 into the venv, then runs the Qt tests with QT_API=pyqt6 (qtpy, napari, superqt and
# magicgui all honour it) on a virtual display. .ci/run calls it after the wheel smoke test.
#
#   scripts/test_pyqt6.sh [PYTEST ARGS]    PYTHON=.venv/bin/python by default
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
xvfb=(xvfb-run -a)
if [ -n "${DISPLAY:-}" ] || ! command -v xvfb-run >/dev/null 2>&1; then xvfb=(); fi
start=$(date +%s)

qt6=$("$py" -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["qt6"])')
"$py" -m pip install -q --disable-pip-version-check $qt6 2>&1 | grep -v "is ignored" || true
export QT_API=pyqt6
"$py" -c 'import qtpy; assert qtpy.API_NAME == "PyQt6", qtpy.API_NAME; print("test_pyqt6: qtpy uses", qtpy.API_NAME, qtpy.QT_VERSION)'

# every widget test (not all of them carry the gui mark), then the gui tests elsewhere
"${xvfb[@]}" "$py" -m pytest -q -p no:cacheprovider tests/widgets "$@"
"${xvfb[@]}" "$py" -m pytest -q -p no:cacheprovider -m gui tests --ignore=tests/widgets "$@"
echo "test_pyqt6: GUI tests under PyQt6 passed in $(( $(date +%s) - start )) s"
