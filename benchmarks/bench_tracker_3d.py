"""Live agreement on volumes (issue 12): a brush stroke in 3D, a full recompute, HD95.

For 4 and 15 annotators x 300 x 512 x 512 (Z x Y x X, boolean masks, one ellipsoid lesion
per annotator with a jittered centre and semi-axes):
- stroke: a disc of radius 20 px in one slice (napari's 2D brush on a 3D layer) and a ball
  of radius 10 voxels (``n_edit_dimensions = 3``) painted on a lesion's border, then
  ``AgreementTracker.update_region(mask, box, old_values, value, region_mask)`` +
  ``dice_matrix()`` (target < 1 ms), checked exact against a recount afterwards;
- full recompute: ``AgreementTracker.recompute()`` + ``dice_matrix()`` against the
  read-once floor of the same run (``np.count_nonzero`` of every mask once; target
  <= 1.5x);
- HD95 of one pair (anisotropic spacing 2.5 x 0.7 x 0.7 mm): ``napari_iaa.agreement.
  hausdorff_distance`` against MONAI's ``compute_hausdorff_distance(percentile=95)`` on
  CPU tensors (same value checked), and the data-set scorer's surface step for all pairs.

    python benchmarks/bench_tracker.py --3d [--quick]     (or this file directly)
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_ratio, fmt_time, table, timeit, write_results

SHAPE = (300, 512, 512)  # Z x Y x X
ANNOTATORS = [4, 15]
SPACING = (2.5, 0.7, 0.7)


def make_volumes(n: int, shape=SHAPE, seed: int = 0) -> list[np.ndarray]:
    """One axis-aligned ellipsoid per annotator (about a third of each axis), jittered."""
    rng = np.random.default_rng(seed)
    z, y, x = (np.arange(s, dtype=np.float32) for s in shape)
    out = []
    for _ in range(n):
        c = [s / 2 + rng.normal(0, s * 0.02) for s in shape]
        a = [s * 0.3 * (1 + rng.normal(0, 0.05)) for s in shape]
        dz = ((z - c[0]) / a[0]) ** 2
        dy = ((y - c[1]) / a[1]) ** 2
        dx = ((x - c[2]) / a[2]) ** 2
        m = np.empty(shape, bool)
        for k in range(shape[0]):  # slice by slice: no full-size float temporary
            np.less_equal(dy[:, None] + dx[None, :], 1.0 - dz[k], out=m[k])
        out.append(m)
    return out


def _brush(kind: str, radius: int) -> np.ndarray:
    """The brush's region mask: a (1, 2r+1, 2r+1) disc or a (2r+1)^3 ball."""
    r = radius
    if kind == "disc":
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        return (yy * yy + xx * xx <= r * r)[None]
    zz, yy, xx = np.mgrid[-r : r + 1, -r : r + 1, -r : r + 1]
    return zz * zz + yy * yy + xx * xx <= r * r


def _border_points(m: np.ndarray, rng, k: int = 512) -> np.ndarray:
    """``k`` voxels on the mask's border (first/last marked voxel of random rows)."""
    zs = np.flatnonzero(m.any(axis=(1, 2)))
    pts = []
    while len(pts) < k:
        z = int(rng.choice(zs))
        ys = np.flatnonzero(m[z].any(axis=1))
        y = int(rng.choice(ys))
        on = np.flatnonzero(m[z, y])
        pts.append((z, y, int(on[0] if rng.random() < 0.5 else on[-1])))
    return np.array(pts)


def stroke_bench(tracker, masks, kind: str, radius: int, reps: int, rng) -> dict:
    """Median time of one stroke through ``update_region`` (+ ``dice_matrix``)."""
    ids = tracker.mask_ids
    rm = _brush(kind, radius)
    half = np.array(rm.shape) // 2
    shape = np.array(masks[0].shape)
    points = [_border_points(m, rng) for m in masks]
    state: dict = {}
    changed: list[int] = []

    def setup():
        k = int(rng.integers(len(masks)))
        p = points[k][int(rng.integers(len(points[k])))]
        p = np.clip(p, half, shape - half - 1)
        box = tuple(slice(int(c - h), int(c + h + 1)) for c, h in zip(p, half, strict=True))
        view = masks[k][box]
        old = view[rm].copy()
        value = not bool(masks[k][tuple(p)])
        view[rm] = value  # the layer changes first, as napari does
        changed.append(int(np.count_nonzero(old != value)))
        state.update(k=k, box=box, old=old, value=value)

    def stroke():
        tracker.update_region(ids[state["k"]], state["box"], state["old"], new_values=state["value"],
                              region_mask=rm)
        tracker.dice_matrix()

    s = timeit(stroke, reps, setup=setup, warmup=3)
    s["voxels"] = int(rm.sum())
    s["changed_median"] = float(np.median(changed))
    return s


def hd95_bench(a: np.ndarray, b: np.ndarray, reps: int) -> dict:
    """Ours vs MONAI for one pair (same value), in mm."""
    from napari_iaa.agreement import hausdorff_distance

    ours = timeit(lambda: hausdorff_distance(a, b, SPACING), reps, warmup=0)
    value = hausdorff_distance(a, b, SPACING)
    rec = {"ours": ours, "value_mm": value}
    try:
        import torch
        from monai.metrics import compute_hausdorff_distance
    except ImportError as exc:  # MONAI is a dev extra
        rec["monai"] = None
        rec["monai_missing"] = str(exc)
        return rec
    ta = torch.from_numpy(a)[None, None]
    tb = torch.from_numpy(b)[None, None]

    def monai():
        return float(compute_hausdorff_distance(ta, tb, percentile=95, spacing=SPACING)[0, 0])

    rec["monai"] = timeit(monai, reps, warmup=0)
    rec["monai_value_mm"] = monai()
    rec["same_value"] = bool(np.isclose(rec["monai_value_mm"], value, rtol=1e-6))
    rec["time_vs_monai"] = ours["median_s"] / rec["monai"]["median_s"]
    return rec


def bench_config(n: int, quick: bool, rng) -> tuple[dict, list[dict]]:
    from napari_iaa.agreement import AgreementTracker, pairwise_counts

    masks = make_volumes(n, seed=n)
    ids = [f"r{i}" for i in range(n)]
    tracker = AgreementTracker(dict(zip(ids, masks, strict=True)))
    floor = timeit(lambda: sum(np.count_nonzero(m) for m in masks), 3 if quick else 5)
    full = timeit(lambda: (tracker.recompute(), tracker.dice_matrix()), 3 if quick else 5)
    rec = {"shape": "x".join(map(str, SHAPE)), "annotators": n, "read_once": floor,
           "recompute": full, "recompute_vs_read_once": full["median_s"] / floor["median_s"]}
    strokes = []
    for kind, radius in (("disc", 20), ("ball", 10)):
        s = stroke_bench(tracker, masks, kind, radius, 21 if quick else 101, rng)
        counts, inter = pairwise_counts(masks)
        s["exact"] = bool(np.array_equal(tracker.counts, counts)
                          and np.array_equal(tracker.intersections, inter))
        strokes.append({"annotators": n, "brush": f"{kind} r={radius}", **s})
    print(f"  {n} x {rec['shape']}: read-once {fmt_time(floor['median_s'])}, recompute "
          f"{fmt_time(full['median_s'])}", file=sys.stderr, flush=True)
    if n == ANNOTATORS[0]:
        rec["hd95_pair"] = hd95_bench(masks[0], masks[1], 1 if quick else 3)
        from napari_iaa.agreement import pairwise_surface_distances

        rec["surface_all_pairs"] = timeit(
            lambda: pairwise_surface_distances(masks, SPACING), 1, warmup=0)
    return rec, strokes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(12)
    records, strokes = [], []
    for n in ANNOTATORS:
        rec, st = bench_config(n, args.quick, rng)
        gc.collect()  # the previous volumes go before the next are made
        records.append(rec)
        strokes += st
    rows = [{"N": r["annotators"], "volume": r["shape"],
             "read once": fmt_time(r["read_once"]["median_s"]),
             "recompute": fmt_time(r["recompute"]["median_s"]),
             "recompute / read once": fmt_ratio(r["recompute_vs_read_once"])} for r in records]
    print("\nFull recompute vs the read-once floor (median):")
    print(table(rows, list(rows[0])))
    srows = [{"N": s["annotators"], "brush": s["brush"], "voxels": s["voxels"],
              "changed": f"{s['changed_median']:.0f}", "update_region + dice": fmt_time(s["median_s"]),
              "max": fmt_time(s["max_s"]) if "max_s" in s else "",
              "exact": "yes" if s["exact"] else "NO"} for s in strokes]
    print("\nStroke (update_region + dice_matrix, median):")
    print(table(srows, list(srows[0])))
    hd = records[0].get("hd95_pair", {})
    if hd:
        line = f"\nHD95 of one pair ({records[0]['shape']}, spacing {SPACING} mm): ours " \
               f"{fmt_time(hd['ours']['median_s'])} ({hd['value_mm']:.4f} mm)"
        if hd.get("monai"):
            line += (f", MONAI {fmt_time(hd['monai']['median_s'])} ({hd['monai_value_mm']:.4f} mm,"
                     f" same: {hd['same_value']}); ours / MONAI time {fmt_ratio(hd['time_vs_monai'])}")
        print(line)
        print(f"surface distances of all {ANNOTATORS[0] * (ANNOTATORS[0] - 1) // 2} pairs "
              f"(the scorer's step): {fmt_time(records[0]['surface_all_pairs']['median_s'])}")
    targets = {
        "stroke_max_median_s": max(s["median_s"] for s in strokes),
        "stroke_under_1ms": all(s["median_s"] < 1e-3 for s in strokes),
        "strokes_exact": all(s["exact"] for s in strokes),
        "recompute_vs_read_once_max": max(r["recompute_vs_read_once"] for r in records),
        "recompute_within_1_5x": all(r["recompute_vs_read_once"] <= 1.5 for r in records),
    }
    print(f"\nTargets: slowest stroke {fmt_time(targets['stroke_max_median_s'])} (< 1 ms: "
          f"{'met' if targets['stroke_under_1ms'] else 'MISSED'}); recompute <= "
          f"{fmt_ratio(targets['recompute_vs_read_once_max'])} of the floor (<= 1.5x: "
          f"{'met' if targets['recompute_within_1_5x'] else 'MISSED'})")
    write_results("tracker_3d", {"quick": args.quick, "shape": list(SHAPE), "records": records,
                                 "strokes": strokes, "targets": targets})
    return 0


if __name__ == "__main__":
    sys.exit(main())
