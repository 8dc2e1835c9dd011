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
#   SMOKE_DEPS=auto   how the wheel's dependencies get into the new venv:
#       fresh   pip installs them there (another ~7 GB of disk; ~160 s here)
#       shared  pip resolves them against the registries (--dry-run: nothing is written),
#               then the new venv borrows PYTHON's site-packages, napari-iaa's own files
#               left out, the wheel goes in with --no-deps and `pip check` must pass
#       auto    (default) fresh when 16 GB or more are free in the work folder, else shared
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
vpy="$work/venv/bin/python"
pip_q() { "$vpy" -m pip --disable-pip-version-check -q "$@"; }
fail_install() { grep -v "is ignored" "$work/install.log" | tail -30; echo "smoke_wheel: $1"; exit 1; }
mode=${SMOKE_DEPS:-auto}
free_gb=$(df -Pk "$work" | awk 'NR==2 {print int($4 / 1048576)}')
if [ "$mode" = auto ]; then
  if [ "$free_gb" -ge 16 ]; then mode=fresh; else mode=shared; fi
fi
case "$mode" in
  fresh)
    pip_q install "$wheel[${SMOKE_EXTRA:-qt}]" > "$work/install.log" 2>&1 \
      || fail_install "install failed"
    t2=$(clock)
    echo "smoke_wheel: installed into a fresh venv in $((t2 - t1)) s ($(du -sh "$work/venv" | cut -f1))" ;;
  shared)
    # the resolve a fresh install would do, against the same registries, writing nothing
    pip_q install --dry-run --ignore-installed --report "$work/resolve.json" \
      "$wheel[${SMOKE_EXTRA:-qt}]" > "$work/install.log" 2>&1 \
      || fail_install "the wheel's dependencies do not resolve"
    resolved=$("$vpy" -c 'import json, sys
r = json.load(open(sys.argv[1]))["install"]
pins = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in r}
print(len(r), "distributions:", ", ".join(f"{k} {pins[k]}" for k in ("torch", "napari", "timm") if k in pins))' \
      "$work/resolve.json")
    # borrow the dependencies: one link per entry of PYTHON's site-packages, napari-iaa's
    # own (its editable install included) left out, put on the new venv's path by a .pth
    src_site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    dst_site=$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    mkdir "$work/deps"
    for entry in "$src_site"/*; do
      case "$(basename "$entry")" in
        napari_iaa*|__editable__*napari_iaa*|pip|pip-*) ;;
        *) ln -s "$entry" "$work/deps/" ;;
      esac
    done
    echo "$work/deps" > "$dst_site/_smoke_shared_deps.pth"
    # the venv's own setuptools (65.5 on Python 3.11) would shadow the newer one torch needs
    pip_q uninstall -y setuptools >> "$work/install.log" 2>&1 || true
    pip_q install --no-deps "$wheel" >> "$work/install.log" 2>&1 || fail_install "install failed"
    "$vpy" -m pip --disable-pip-version-check check >> "$work/install.log" 2>&1 \
      || fail_install "pip check: the borrowed packages do not satisfy the wheel"
    t2=$(clock)
    echo "smoke_wheel: resolved $resolved; installed with --no-deps beside $src_site ($free_gb GB free, SMOKE_DEPS=shared) in $((t2 - t1)) s" ;;
  *) echo "smoke_wheel: SMOKE_DEPS must be fresh, shared or auto, not '$mode'"; exit 2 ;;
esac

# 3. the checks, run from the work folder (nothing of the checkout is importable)
cp "$src/scripts/smoke_wheel.py" "$work/smoke_wheel.py"
"$work/venv/bin/python" "$work/smoke_wheel.py" --source "$src"
t3=$(clock); echo "smoke_wheel: checks in $((t3 - t2)) s; total $((t3 - t0)) s"
