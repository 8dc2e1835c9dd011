"""Smoke test of an installed napari-iaa wheel, as a user who ran ``pip install`` has it.

Run with the Python of the environment the wheel was installed into, from a folder outside
the source tree (``scripts/smoke_wheel.sh`` does both)::

    /tmp/venv/bin/python scripts/smoke_wheel.py --source /path/to/checkout

Checks, each timed: napari_iaa is imported from site-packages (not the checkout); the wheel
carries every sample and shipped model of the checkout's ``sample_data/``; the four npe2
sample hooks open their data headless (nothing generated into the cache); the npe2 reader
opens the LIDC sample; the model registry lists the shipped models, one per task at least;
``napari-iaa score`` and ``napari-iaa predict`` (with the shipped models the registry picks
for the LIDC sample) run on the LIDC sample; ``npe2 validate napari-iaa`` passes.
Exit status 0 when every check passes; the first failure stops it with ``FAIL: <why>``.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SAMPLES = ("synthetic", "lidc", "lidc_nodules", "synthetic3d")
VOLUME_SAMPLES = ("lidc_nodules", "synthetic3d")
TASKS = ("iaa", "mhr", "quality")


class SmokeFailure(Exception):
    """A check failed."""


def check(ok: bool, message: str) -> None:
    """Raise :class:`SmokeFailure` with ``message`` unless ``ok``."""
    if not ok:
        raise SmokeFailure(message)


def data_files(root: Path) -> set[str]:
    """Files under ``root`` (POSIX paths relative to it), dot files and folders left out."""
    out = set()
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            out.add(rel.as_posix())
    return out


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run a console script of this environment; its output is shown on failure."""
    exe = Path(sys.executable).parent / args[0]
    check(exe.is_file(), f"console script {exe} not installed")
    proc = subprocess.run([str(exe), *args[1:]], capture_output=True, text=True)
    check(proc.returncode == 0,
          f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    return proc


def check_installed(source: Path | None) -> str:
    """napari_iaa comes from this environment's site-packages with its bundled data."""
    import napari_iaa
    from napari_iaa.data.sample import bundled_root

    package = Path(napari_iaa.__file__).resolve().parent
    check(Path(sys.prefix).resolve() in package.parents,
          f"napari_iaa imported from {package}, not from the environment {sys.prefix}")
    if source is not None:
        check(source not in package.parents, f"napari_iaa imported from the checkout {package}")
    check(bundled_root() == package / "_bundled",
          f"bundled_root() is {bundled_root()}, expected {package / '_bundled'}")
    return str(package)


def check_bundled_files(source: Path | None) -> str:
    """Every sample and model file of the checkout is in the wheel, and the attribution."""
    from napari_iaa.data.sample import bundled_root

    root = bundled_root()
    have = data_files(root)
    for name in SAMPLES:
        check((root / name).is_dir(), f"{root / name}: sample {name!r} not in the wheel")
    check(any(p.endswith(".safetensors") for p in have), f"{root}/models: no weights")
    readme = root / "README.md"
    check(readme.is_file() and "CC BY 3.0" in readme.read_text(encoding="utf-8"),
          f"{readme}: the sample data's attribution (CC BY 3.0) is missing")
    if source is not None:
        want = data_files(source / "sample_data")
        check(not want - have, f"missing from the wheel: {sorted(want - have)[:10]}")
        check(not have - want, f"in the wheel but not in the checkout: {sorted(have - want)[:10]}")
    return f"{len(have)} files"


def check_samples(cache: Path) -> str:
    """The npe2 sample hooks open each sample headless, from the bundled folder."""
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-iaa")
    samples = {s.key: s for s in manifest.contributions.sample_data}
    check(set(samples) == set(SAMPLES), f"sample hooks {sorted(samples)}, expected {SAMPLES}")
    shapes = []
    for key in SAMPLES:
        layers = samples[key].open()
        kinds = [kind for _data, _meta, kind in layers]
        check(kinds[0] == "image" and kinds.count("labels") >= 2,
              f"sample {key!r}: layers {kinds} (expected the image first, then 2+ masks)")
        image = layers[0][0]
        if key in VOLUME_SAMPLES:
            check(image.ndim == 3, f"sample {key!r}: image of shape {image.shape}, not a volume")
        shapes.append(f"{key} {tuple(image.shape)} + {kinds.count('labels')} labels layers")
    ours = cache / "napari-iaa"
    generated = [p for p in ours.rglob("*") if p.is_file()] if ours.is_dir() else []
    check(not generated, f"samples generated into the cache instead of read: {generated[:3]}")
    return "; ".join(shapes)


def check_reader() -> str:
    """npe2's reader path opens the LIDC sample folder with our reader."""
    import npe2

    from napari_iaa.data import sample_data_path

    layers = npe2.read([str(sample_data_path("lidc"))], stack=False, plugin_name="napari-iaa")
    kinds = [layer[2] for layer in layers]
    check("image" in kinds and kinds.count("labels") >= 2, f"reader gave layers {kinds}")
    return f"{len(layers)} layers"


def check_registry() -> str:
    """The registry lists every shipped card, and each task has a shipped model."""
    from napari_iaa.models import ModelRegistry
    from napari_iaa.models.registry import shipped_models_dir

    registry = ModelRegistry()
    shipped = [e for e in registry.list() if e.source == "shipped"]
    cards = {p.resolve() for p in shipped_models_dir().glob("*.json")}
    check(not registry.problems, f"registry problems: {registry.problems}")
    check({e.path for e in shipped} == cards,
          f"registry lists {sorted(e.name for e in shipped)}; cards {sorted(p.name for p in cards)}")
    for task in TASKS:
        check(any(e.card.task == task for e in shipped), f"no shipped {task} model")
    return ", ".join(sorted(e.name for e in shipped))


def check_score(out: Path) -> str:
    """``napari-iaa score`` on the LIDC sample: one row per case, finite IAA."""
    from napari_iaa.data import open_dataset, sample_data_path

    lidc = sample_data_path("lidc")
    csv_path = out / "scores.csv"
    run_cli("napari-iaa", "score", str(lidc), "--out", str(csv_path), "--quiet")
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    n = len(open_dataset(lidc))
    check(len(rows) == n, f"{csv_path}: {len(rows)} rows for {n} cases")
    check(all(math.isfinite(float(r["iaa"])) for r in rows), f"{csv_path}: IAA not finite")
    return f"{len(rows)} cases"


def check_predict(out: Path) -> str:
    """``napari-iaa predict`` on the LIDC sample with the shipped models best for it."""
    from napari_iaa.data import open_dataset, sample_data_path
    from napari_iaa.models import ModelRegistry
    from napari_iaa.models.domain import domain_of

    lidc = sample_data_path("lidc")
    ds = open_dataset(lidc)
    domain = domain_of(ds)
    registry = ModelRegistry()
    names = []
    for task in TASKS:
        best = registry.best_for(task, domain)
        check(best is not None and best.entry.source == "shipped", f"no shipped {task} model")
        names.append(best.entry.name)
    csv_path, maps = out / "predictions.csv", out / "maps"
    args = ["napari-iaa", "predict", str(lidc), "--out", str(csv_path), "--maps", str(maps),
            "--device", "cpu", "--no-progress"]
    for name in names:
        args += ["--model", name]
    run_cli(*args)
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    cases = {r["case_id"] for r in rows}
    check(len(cases) == len(ds), f"{csv_path}: {len(cases)} cases for {len(ds)}")
    for col in ("predicted_iaa", "predicted_quality"):
        check(all(math.isfinite(float(r[col])) for r in rows), f"{csv_path}: {col} not finite")
    n_maps = len(list(maps.glob("*_mhr.png")))
    check(n_maps == len(ds), f"{maps}: {n_maps} MHR maps for {len(ds)} cases")
    return f"{len(cases)} cases with {', '.join(names)}"


def check_npe2_validate() -> str:
    """``npe2 validate napari-iaa`` passes on the installed manifest.

    Run as ``python -m npe2``: npe2 is a dependency, and with ``SMOKE_DEPS=shared`` its
    console script stays in the environment the dependencies are borrowed from (our own
    ``napari-iaa`` script must be in this one, which :func:`run_cli` checks).
    """
    cmd = [sys.executable, "-m", "npe2", "validate", "napari-iaa"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    check(proc.returncode == 0,
          f"npe2 validate napari-iaa exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    return proc.stdout.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    """Run every check; 0 when all pass, 1 at the first failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None,
                        help="the checkout the wheel was built from (to compare its files)")
    args = parser.parse_args(argv)
    source = args.source.resolve() if args.source else None
    work = Path(tempfile.mkdtemp(prefix="napari-iaa-smoke-"))
    cache = work / "cache"
    # samples must come from the wheel, models from the wheel only; no screen needed
    os.environ["XDG_CACHE_HOME"] = str(cache)
    os.environ["NAPARI_IAA_MODELS"] = str(work / "user-models")
    os.environ.pop("NAPARI_IAA_SAMPLE_DATA", None)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    steps: list[tuple[str, Callable[[], str]]] = [
        ("installed from site-packages", lambda: check_installed(source)),
        ("samples and models in the wheel", lambda: check_bundled_files(source)),
        ("npe2 sample hooks (2D and 3D)", lambda: check_samples(cache)),
        ("npe2 reader on the LIDC sample", check_reader),
        ("registry lists the shipped models", check_registry),
        ("napari-iaa score on the LIDC sample", lambda: check_score(work)),
        ("napari-iaa predict on the LIDC sample", lambda: check_predict(work)),
        ("npe2 validate napari-iaa", check_npe2_validate),
    ]
    total = time.perf_counter()
    for name, step in steps:
        t0 = time.perf_counter()
        try:
            detail = step()
        except SmokeFailure as exc:
            print(f"smoke_wheel: FAIL: {name}: {exc}", flush=True)
            return 1
        print(f"smoke_wheel: ok {name} ({time.perf_counter() - t0:.1f} s): {detail}", flush=True)
    print(f"smoke_wheel: all {len(steps)} checks passed in {time.perf_counter() - total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
