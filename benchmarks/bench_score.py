"""Data-set scoring: ``napari-iaa score`` cases per second vs a straightforward loop.

Data sets:
- LIDC (``NAPARI_IAA_LIDC_DIR``, else extracted once from ../shared/data into the cache;
  skipped with a note when absent): 606 patients, 10,681 slices of 128 x 128, 4 readers
  (``--quick``: the first 40 patients);
- synthetic: 2000 dermoscopy-like images at 1024 x 768 with 3 annotators, generated once
  into the cache (``--quick``: 200).
Baseline: read each mask with ``skimage.io.imread``, pairwise Dice in numpy, mean. The
ratio compares the same work: ``score --no-surface`` (Dice and the IAA columns). The
command's default adds HD95 and ASSD per pair (surface points and k-d tree queries, which
the baseline does not compute): timed beside it, once, as "with HD95/ASSD".
Scaling (``--no-surface``): time per case against the number of cases and of annotators
(2, 4, 8).

    python benchmarks/bench_score.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PROJECT_ROOT, cache_dir, fmt_ratio, fmt_time, table, write_results


def shared_data_dir() -> Path:
    env = os.environ.get("NAPARI_IAA_SHARED_DATA")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data"


def lidc_root() -> tuple[Path | None, str]:
    env = os.environ.get("NAPARI_IAA_LIDC_DIR")
    if env and Path(env).is_dir():
        return Path(env), f"NAPARI_IAA_LIDC_DIR={env}"
    archive = shared_data_dir() / "lidc-idri-4raters" / "lidc-idri-4raters-dev.tar.gz"
    if not archive.is_file():
        return None, f"LIDC archive not found at {archive}"
    out = cache_dir() / "lidc"
    root = out / "LIDC-IDRI-slices"
    if not (out / ".complete").is_file():
        print(f"extracting {archive} into {out} (once)...", file=sys.stderr, flush=True)
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(out, filter="data")
        (out / ".complete").write_text("ok\n")
    return root, f"extracted from {archive}"


def lidc_subset(root: Path, n_patients: int) -> Path:
    """The first ``n_patients`` patients, as a folder of symlinks (cached)."""
    out = cache_dir() / f"lidc-first{n_patients}"
    if not (out / ".complete").is_file():
        out.mkdir(parents=True, exist_ok=True)
        for p in sorted(d for d in root.iterdir() if d.is_dir())[:n_patients]:
            link = out / p.name
            if not link.exists():
                link.symlink_to(p.resolve(), target_is_directory=True)
        (out / ".complete").write_text("ok\n")
    return out


#: distinct generated images; larger sets repeat them under new ids (hard links)
UNIQUE = int(os.environ.get("NAPARI_IAA_BENCH_UNIQUE", "400"))


def _case_files(src: Path) -> tuple[list[Path], dict[str, list[Path]]]:
    images = sorted((src / "images").iterdir())
    masks: dict[str, list[Path]] = defaultdict(list)
    for m in (src / "masks").iterdir():
        masks[m.name.split("_A")[0]].append(m)
    return images, masks


def _link_set(src: Path, dst: Path, n: int) -> None:
    """``n`` cases built from ``src`` by hard links; case j repeats ``src`` case j % len."""
    import shutil

    shutil.rmtree(dst, ignore_errors=True)
    (dst / "images").mkdir(parents=True)
    (dst / "masks").mkdir()
    images, masks = _case_files(src)
    for j in range(n):
        img = images[j % len(images)]
        old = img.stem
        new = old if j < len(images) else f"SYN_R{j:07d}"
        os.link(img, dst / "images" / f"{new}{img.suffix}")
        for m in masks[old]:
            os.link(m, dst / "masks" / m.name.replace(old, new, 1))
    (dst / ".complete").write_text(f"{n} cases from {min(n, len(images))} distinct images of {src.name}\n")


def _generate(n: int, annotators: int, w: int, h: int, seed: int) -> tuple[Path, float | None]:
    from napari_iaa.data import generate_synthetic_dataset

    d = cache_dir() / f"synth-{n}-{w}x{h}-a{annotators}-seed{seed}"
    marker = d / ".complete"
    if marker.is_file():
        return d, None
    # image i depends only on (seed, i): the first n cases of a larger cached set are the same
    for big in sorted(cache_dir().glob(f"synth-*-{w}x{h}-a{annotators}-seed{seed}")):
        m = big.name.split("-")[1]
        if m.isdigit() and int(m) > n and (big / ".complete").is_file():
            _link_set(big, d, n)
            return d, None
    print(f"generating {n} synthetic cases {w}x{h} x {annotators} annotators into {d} (once)...",
          file=sys.stderr, flush=True)
    t = time.perf_counter()
    generate_synthetic_dataset(d, n=n, seed=seed, size=(h, w), n_annotators=(annotators, annotators),
                               overwrite=True)
    dt = time.perf_counter() - t
    marker.write_text(f"{dt:.1f}\n")
    return d, dt


def synthetic_set(n: int, annotators: int, w: int = 1024, h: int = 768, seed: int = 0) -> tuple[Path, float | None]:
    """A synthetic IMA++-layout set of ``n`` cases, cached; returns (folder, generation s or None).

    At most :data:`UNIQUE` distinct images are generated (the generator takes about a
    second per 1024 x 768 image on 2 cores); a larger set repeats them under new case
    ids through hard links. Scoring decodes every file of every case, so the work per
    case is that of distinct images (all files sit in the page cache either way).
    """
    if n <= UNIQUE:
        return _generate(n, annotators, w, h, seed)
    src, gen = _generate(UNIQUE, annotators, w, h, seed)
    d = cache_dir() / f"synth-{n}-from{UNIQUE}-{w}x{h}-a{annotators}-seed{seed}"
    if (d / ".complete").is_file():
        return d, gen
    _link_set(src, d, n)
    return d, gen


# ------------------------------------------------------------------ baseline


def _pair_iaa(masks: list[np.ndarray]) -> float:
    vals = []
    for a, b in combinations(masks, 2):
        s = int(a.sum()) + int(b.sum())
        vals.append(2.0 * int(np.logical_and(a, b).sum()) / s if s else 0.0)
    return float(np.mean(vals)) if vals else float("nan")


def baseline_lidc(root: Path) -> dict[str, float]:
    from skimage.io import imread

    out = {}
    for img in sorted(root.glob("*/*/images/*.png")):
        nod = img.parent.parent
        masks = [imread(d / img.name) > 0 for d in sorted(nod.glob("mask-*")) if (d / img.name).is_file()]
        out[f"{nod.parent.name}/{nod.name}/{img.stem}"] = _pair_iaa(masks)
    return out


def baseline_imapp(root: Path, limit: int | None = None) -> dict[str, float]:
    from skimage.io import imread

    groups: dict[str, list[Path]] = defaultdict(list)
    for m in sorted((root / "masks").glob("*.png")):
        parts = m.stem.split("_")
        if parts[-4] in ("ST", "MV"):
            continue
        groups["_".join(parts[:-4])].append(m)
    ids = sorted(groups)[:limit]
    return {cid: _pair_iaa([imread(p) > 0 for p in groups[cid]]) for cid in ids}


# ------------------------------------------------------------------ ours


def run_score(path: Path, workers: int = 1, surface: bool = False) -> tuple[float, dict[str, float]]:
    """``napari-iaa score PATH [--no-surface]`` in-process; returns (seconds, {case_id: iaa})."""
    import pandas as pd

    from napari_iaa.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "iaa.csv"
        err = io.StringIO()
        t = time.perf_counter()
        with contextlib.redirect_stderr(err):
            rc = main(["score", str(path), "--out", str(out), "-q", "--workers", str(workers)]
                      + ([] if surface else ["--no-surface"]))
        dt = time.perf_counter() - t
        if rc != 0:
            raise RuntimeError(f"napari-iaa score {path} failed: {err.getvalue()}")
        frame = pd.read_csv(out, usecols=["case_id", "iaa"], dtype={"case_id": str})
    return dt, dict(zip(frame["case_id"], frame["iaa"]))


def compare(ours: dict[str, float], ref: dict[str, float]) -> float:
    common = set(ours) & set(ref)
    if len(common) != len(ref):
        return float("inf")
    return max((abs(ours[c] - ref[c]) for c in common), default=0.0)


def warm_files(path: Path) -> None:
    """Read every file once so neither contender pays for a cold page cache."""
    for f in path.rglob("*"):
        if f.is_file():
            f.read_bytes()


def bench_pair(label: str, path: Path, baseline, n_annotators: str, repeats: int) -> dict:
    warm_files(path)
    times, base_times = [], []
    ours = ref = {}
    for _ in range(repeats):
        t, ours = run_score(path)
        times.append(t)
        t0 = time.perf_counter()
        ref = baseline(path)
        base_times.append(time.perf_counter() - t0)
    t2, ours2 = run_score(path, workers=2)
    t_surface, ours_surface = run_score(path, surface=True)
    n = len(ours)
    ours_s, base_s = float(np.median(times)), float(np.median(base_times))
    rec = {"dataset": label, "path": str(path), "cases": n, "annotators": n_annotators,
           "score_s": ours_s, "score_cases_per_s": n / ours_s,
           "score_workers2_s": t2, "score_workers2_cases_per_s": n / t2,
           "score_surface_s": t_surface, "surface_same_iaa": ours_surface == ours,
           "baseline_s": base_s, "baseline_cases_per_s": len(ref) / base_s,
           "speedup_vs_baseline": base_s / ours_s, "speedup_workers2_vs_baseline": base_s / t2,
           "max_abs_diff_vs_baseline": compare(ours, ref), "workers2_same": ours2 == ours,
           "repeats": repeats}
    print(f"  {label}: {n} cases, score --no-surface {fmt_time(ours_s)} vs baseline "
          f"{fmt_time(base_s)}; score with HD95/ASSD {fmt_time(t_surface)}",
          file=sys.stderr, flush=True)
    return rec


def scaling(path: Path, counts: list[int], repeats: int) -> list[dict]:
    from napari_iaa.data import open_dataset
    from napari_iaa.scoring import score_dataset

    ds = open_dataset(path)
    rows = []
    for k in counts:
        sub = ds.subset(ds.ids[:k])
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            score_dataset(sub, surface=False)
            ts.append(time.perf_counter() - t)
        t = float(np.median(ts))
        rows.append({"cases": k, "seconds": t, "ms_per_case": 1e3 * t / k})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    quick = args.quick
    records, notes, generation = [], [], {}

    root, how = lidc_root()
    if root is None:
        notes.append(f"LIDC: not measured: {how}")
    else:
        if quick:
            root = lidc_subset(root, 20)
            how += " (first 20 patients)"
        records.append(bench_pair("LIDC" + (" (20 patients)" if quick else ""), root, baseline_lidc, "4", 1))
        records[-1]["source"] = how

    n_big = 100 if quick else 2000
    big, gen = synthetic_set(n_big, 3)
    if gen is not None:
        generation[big.name] = gen
    records.append(bench_pair(f"synthetic {n_big} x 1024x768", big, baseline_imapp, "3", 1))

    counts = [25, 50, 100] if quick else [100, 500, 2000]
    by_cases = scaling(big, counts, 1)
    by_ann = []
    n_small = 10 if quick else 20
    for k in (2, 4, 8):
        d, gen = synthetic_set(20, k)
        if gen is not None:
            generation[d.name] = gen
        r = scaling(d, [n_small], 2)[0]
        t0 = time.perf_counter()
        baseline_imapp(d, limit=n_small)
        base = time.perf_counter() - t0
        by_ann.append({"annotators": k, "cases": n_small, "ms_per_case": r["ms_per_case"],
                       "baseline_ms_per_case": 1e3 * base / n_small,
                       "speedup_vs_baseline": 1e3 * base / n_small / r["ms_per_case"]})

    rows = [{"data set": r["dataset"], "cases": r["cases"], "ann.": r["annotators"],
             "score --no-surface": f"{fmt_time(r['score_s'])} ({r['score_cases_per_s']:.0f}/s)",
             "--workers 2": f"{fmt_time(r['score_workers2_s'])} ({r['score_workers2_cases_per_s']:.0f}/s)",
             "baseline loop": f"{fmt_time(r['baseline_s'])} ({r['baseline_cases_per_s']:.0f}/s)",
             "speed-up (1 / 2 workers)": f"{fmt_ratio(r['speedup_vs_baseline'])} / {fmt_ratio(r['speedup_workers2_vs_baseline'])}",
             "max |diff|": f"{r['max_abs_diff_vs_baseline']:.1e}",
             "with HD95/ASSD (default)": f"{fmt_time(r['score_surface_s'])} "
                                         f"({r['cases'] / r['score_surface_s']:.0f}/s)"} for r in records]
    print("\nnapari-iaa score --no-surface vs straightforward loop (skimage.io.imread + numpy "
          "pairwise Dice), 1 and 2 workers; last column: the default, with HD95/ASSD:")
    print(table(rows, list(rows[0].keys())))
    for n in notes:
        print(n)
    print("\nGrowth with the number of cases (synthetic 1024x768, 3 annotators, score_dataset, "
          "no surface):")
    print(table([{"cases": r["cases"], "time": fmt_time(r["seconds"]), "ms/case": f"{r['ms_per_case']:.2f}"}
                 for r in by_cases], ["cases", "time", "ms/case"]))
    print(f"\nGrowth with the number of annotators (synthetic 1024x768, {n_small} cases):")
    print(table([{"annotators": r["annotators"], "ms/case": f"{r['ms_per_case']:.2f}",
                  "baseline ms/case": f"{r['baseline_ms_per_case']:.2f}",
                  "speed-up": fmt_ratio(r["speedup_vs_baseline"])} for r in by_ann],
                ["annotators", "ms/case", "baseline ms/case", "speed-up"]))
    if generation:
        print("\none-time data generation (cached for later runs): "
              + ", ".join(f"{k} {v:.0f} s" for k, v in generation.items()))
    write_results("score", {"quick": quick, "datasets": records, "scaling_cases": by_cases,
                            "scaling_annotators": by_ann, "notes": notes, "generation_s": generation})
    return 0


if __name__ == "__main__":
    sys.exit(main())
