#!/usr/bin/env bash
# Build napari-iaa's sdist and wheel, install the wheel into a fresh virtual environment
# outside the checkout (with its dependencies, as `pip install "napari-iaa[qt]"` would) and
# run scripts/smoke_wheel.py there: the samples and shipped models come from the wheel, the
# CLI and the npe2 hooks work from site-packages. Prints the time of each step.
#
#   scripts/smoke_wheel.sh [PYTHON]     PYTHON: builds the wheel and makes the venv
#                                       (default: .venv/bin/python, else python3; needs `build`)
#   SMOKE_WORK=DIR    where to build and install (default: a new folder under /tmp)
#   SMOKE_KEEP=1      keep that folder afterwards (the venv is ~6 GB with CUDA torch)
#   SMOKE_EXTRA=qt    the extra installed with the wheel (qt: PyQt5, qt6: PyQt6)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-}
if [ -z "$py" ]; then
  if [ -x "$src/.venv/bin/python" ]; then py="$src/.venv/bin/python"; else py=python3; fi
fi
# a relative path (.venv/bin/python) must survive the `cd` below; keep the venv's own
# symlink (resolving it would leave the venv for the base interpreter)
case "$py" in */*) py="$(cd "$(dirname "$py")" && pwd)/$(basename "$py")" ;; esac
work=${SMOKE_WORK:-$(mktemp -d /tmp/napari-iaa-wheel.XXXXXX)}
mkdir -p "$work"
cleanup() { [ "${SMOKE_KEEP:-0}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT
clock() { date +%s; }
t0=$(clock)

# 1. sdist, then the wheel built from the unpacked sdist (so the sdist is complete too)
"$py" -m build --outdir "$work/dist" "$src" > "$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log"; echo "smoke_wheel: build failed"; exit 1; }
wheel=$(ls "$work"/dist/napari_iaa-*.whl)
t1=$(clock); echo "smoke_wheel: built $(basename "$wheel") ($(du -h "$wheel" | cut -f1)) in $((t1 - t0)) s"

# 2. a fresh venv, away from the source tree; pip resolves every dependency itself
cd "$work"
"$py" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check \
  "$wheel[${SMOKE_EXTRA:-qt}]" > "$work/install.log" 2>&1 \
  || { grep -v "is ignored" "$work/install.log" | tail -30; echo "smoke_wheel: install failed"; exit 1; }
t2=$(clock); echo "smoke_wheel: installed into a fresh venv in $((t2 - t1)) s ($(du -sh "$work/venv" | cut -f1))"

# 3. the checks, run from the work folder (nothing of the checkout is importable)
cp "$src/scripts/smoke_wheel.py" "$work/smoke_wheel.py"
"$work/venv/bin/python" "$work/smoke_wheel.py" --source "$src"
t3=$(clock); echo "smoke_wheel: checks in $((t3 - t2)) s; total $((t3 - t0)) s"
