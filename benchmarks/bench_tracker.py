"""Live agreement: one brush stroke through AgreementTracker vs recomputing from scratch.

For 2, 5 and 15 annotators at 512 x 512, 2048 x 2048 and 6000 x 4000 (W x H):
- stroke update: paint a disc (radius 5, 20, 100 px) into one mask, then
  ``tracker.update(mask_id, indices, True, old_values)`` + ``tracker.dice_matrix()``;
- (a) from scratch, plain numpy: ``np.count_nonzero(np.logical_and(mi, mj))`` over all pairs;
- (b) torchmetrics ``dice_score`` pair by pair, as a user would call it;
- (c) read-once floor: ``np.count_nonzero`` of every mask once;
- the tracker's full ``recompute()`` (+ dice matrix) against (c), with its default threads
  (up to 2) and on one thread, and against (c) read by 2 threads.
Targets (issue 6): stroke at 15 x 6000 x 4000 < 1 ms median and >= 500x faster than (a);
full recompute within 1.5x of (c). Also reports the tracker's memory per pixel per annotator.

    python benchmarks/bench_tracker.py [--quick]
    python benchmarks/bench_tracker.py --3d [--quick]   (volumes: bench_tracker_3d.py)
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_ratio, fmt_time, table, timeit, write_results

from napari_iaa.agreement import _counts, _kernels

SIZES = [(512, 512), (2048, 2048), (6000, 4000)]  # W x H
ANNOTATORS = [2, 5, 15]
RADII = [5, 20, 100]


def make_masks(n: int, w: int, h: int, seed: int = 0) -> list[np.ndarray]:
    """Lesion-like masks: one ellipse per annotator, jittered centre, axes and angle."""
    rng = np.random.default_rng(seed)
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    masks = []
    for _ in range(n):
        cx = w / 2 + rng.normal(0, w * 0.02)
        cy = h / 2 + rng.normal(0, h * 0.02)
        a = w * 0.3 * (1 + rng.normal(0, 0.05))
        b = h * 0.3 * (1 + rng.normal(0, 0.05))
        t = rng.uniform(0, np.pi)
        c, s = np.float32(np.cos(t)), np.float32(np.sin(t))
        dx, dy = xx - np.float32(cx), yy - np.float32(cy)
        u = (dx * c + dy * s) / np.float32(a)
        v = (-dx * s + dy * c) / np.float32(b)
        masks.append((u * u + v * v) <= 1.0)
        del dx, dy, u, v
    return masks


def disc_offsets(r: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    keep = x * x + y * y <= r * r
    return y[keep], x[keep]


def numpy_from_scratch(masks: list[np.ndarray]) -> np.ndarray:
    """Baseline (a): the straightforward N x N Dice."""
    n = len(masks)
    counts = [np.count_nonzero(m) for m in masks]
    d = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            inter = np.count_nonzero(np.logical_and(masks[i], masks[j]))
            tot = counts[i] + counts[j]
            d[i, j] = d[j, i] = 2 * inter / tot if tot else 0.0
    return d


def torchmetrics_pairs(masks: list[np.ndarray], pairs: list[tuple[int, int]]) -> list[float]:
    """Baseline (b): torchmetrics' Dice, pair by pair."""
    import torch
    from torchmetrics.functional.segmentation import dice_score

    out = []
    for i, j in pairs:
        p = torch.from_numpy(masks[i])[None, None]
        t = torch.from_numpy(masks[j])[None, None]
        out.append(float(dice_score(p, t, num_classes=1, input_format="one-hot")))
    return out


def read_once(masks: list[np.ndarray]) -> int:
    """Floor (c): read every mask once."""
    return sum(np.count_nonzero(m) for m in masks)


def read_once_threads(masks: list[np.ndarray], threads: int) -> int:
    """Floor (c) with the pixels split over ``threads`` threads (as the recompute does)."""
    flats = [m.reshape(-1) for m in masks]
    size = flats[0].size
    bounds = [size * t // threads for t in range(threads + 1)]
    with ThreadPoolExecutor(threads) as pool:
        parts = pool.map(lambda t: sum(np.count_nonzero(f[bounds[t]:bounds[t + 1]]) for f in flats),
                         range(threads))
        return sum(parts)


def tracker_memory(tracker_cls, masks) -> dict[str, float]:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tr = tracker_cls(masks)
    retained = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.reset_peak()
    tr.recompute()
    tr.dice_matrix()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    px = masks[0].size * len(masks)
    return {"retained_bytes": retained, "peak_bytes": peak,
            "retained_per_px_per_annotator": retained / px, "peak_per_px_per_annotator": peak / px}


def stroke_bench(tracker, masks: list[np.ndarray], radius: int, reps: int, rng,
                 region: bool = False) -> dict:
    """Median time of one stroke: paint a disc into one mask, then update the tracker.

    ``region=False``: ``tracker.update(mask, (rows, cols), value, old_values)`` (pixel
    lists, napari < 0.8 payload). ``region=True``: ``tracker.update_region(mask, box,
    old_values, value, region_mask=disc)`` (bounding box + mask, the payload of napari's
    paint event from 0.8 on, which the review dock receives).
    """
    n = len(masks)
    h, w = masks[0].shape
    dy, dx = disc_offsets(radius)
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disc = xx * xx + yy * yy <= radius * radius
    state: dict = {}
    border = [_border_pixels(m) for m in masks]

    changed: list[int] = []

    def setup():
        # a stroke on the lesion border (where reviewers edit), painting the value the
        # centre pixel does not have: about half the disc changes (worst case: all)
        k = int(rng.integers(n))
        ys, xs = border[k]
        j = int(rng.integers(ys.size))
        cy = int(np.clip(ys[j], radius, h - radius - 1))
        cx = int(np.clip(xs[j], radius, w - radius - 1))
        idx = (dy + cy, dx + cx)
        box = (slice(cy - radius, cy + radius + 1), slice(cx - radius, cx + radius + 1))
        old = masks[k][idx].copy()  # same pixel order as masks[k][box][disc]
        value = not bool(masks[k][cy, cx])
        masks[k][idx] = value  # the layer changes first (as napari does)
        changed.append(int(np.count_nonzero(old != value)))
        state.update(k=k, idx=idx, box=box, old=old, value=value)

    def stroke():
        if region:
            tracker.update_region(state["k"], state["box"], state["old"], new_values=state["value"],
                                  region_mask=disc)
        else:
            tracker.update(state["k"], state["idx"], state["value"], old_values=state["old"])
        tracker.dice_matrix()

    s = timeit(stroke, reps, setup=setup, warmup=3)
    s["pixels"] = int(dy.size)
    s["changed_median"] = float(np.median(changed))
    return s


def _border_pixels(m: np.ndarray, max_points: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of (a sample of) the mask's border pixels, from its row-wise edges."""
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        h, w = m.shape
        return np.array([h // 2]), np.array([w // 2])
    rows = rows[:: max(1, rows.size // (max_points // 2))]
    ys, xs = [], []
    for y in rows:
        on = np.flatnonzero(m[y])
        ys += [y, y]
        xs += [on[0], on[-1]]
    return np.array(ys), np.array(xs)


def bench_config(tracker_cls, n: int, w: int, h: int, quick: bool, stroke_reps: int, rng):
    """All measurements for N masks of W x H: (record, table row, stroke records)."""
    masks = make_masks(n, w, h, seed=n * 7 + w)
    px = w * h
    big = px * n * (n - 1) / 2 > 2e8
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    base_reps = 1 if (quick and big) else (3 if big else 7)
    a = timeit(lambda: numpy_from_scratch(masks), base_reps, warmup=0 if big else 1)
    c = timeit(lambda: read_once(masks), 3 if big else 9)
    # torchmetrics: all pairs, except in --quick at large sizes (measured on 3 pairs, scaled)
    # (scaled from a few pairs where all pairs would take minutes; marked * in the table)
    if quick and px * len(pairs) > 2e7:
        tm_pairs = pairs[:3]
    elif px * len(pairs) > 3e8:
        tm_pairs = pairs[:10]
    else:
        tm_pairs = pairs
    try:
        torchmetrics_pairs(masks, pairs[:1])  # warm-up (first-call overhead)
        tm = timeit(lambda: torchmetrics_pairs(masks, tm_pairs), 1 if px * len(tm_pairs) > 2e7 else 3,
                    warmup=0)
        tm_s = tm["median_s"] * len(pairs) / len(tm_pairs)
    except ImportError:  # torchmetrics is a benchmark-only extra
        tm_s = float("nan")
    rec = {"size": f"{w}x{h}", "annotators": n, "pairs": len(pairs),
           "numpy_from_scratch": a, "read_once": c, "torchmetrics_s": tm_s,
           "torchmetrics_pairs_measured": len(tm_pairs)}
    strokes = []
    if tracker_cls is not None:
        tracker = tracker_cls(masks)
        ref = numpy_from_scratch(masks)
        r = timeit(lambda: (tracker.recompute(), tracker.dice_matrix()), 3 if big else 9)
        rec["tracker_recompute"] = r
        rec["recompute_vs_read_once"] = r["median_s"] / c["median_s"]
        rec["recompute_threads"] = _counts._n_threads()
        rec["compiled_kernels"] = bool(_kernels.AVAILABLE)
        # the same recompute on one thread (the default uses up to 2), and the floor read
        # by 2 threads, so the ratio is shown like for like both ways
        r1 = timeit(lambda: _counts.pairwise_counts(masks, threads=1), 3 if big else 9)
        c2 = timeit(lambda: read_once_threads(masks, 2), 3 if big else 9)
        rec["tracker_recompute_1_thread"] = r1
        rec["read_once_2_threads"] = c2
        rec["recompute_1_thread_vs_read_once"] = r1["median_s"] / c["median_s"]
        rec["recompute_vs_read_once_2_threads"] = r["median_s"] / c2["median_s"]
        rec["tracker_matches_numpy"] = bool(np.allclose(tracker.dice_matrix(), ref))
        if n == 15 or (w, h) == (512, 512):
            rec["memory"] = tracker_memory(tracker_cls, masks)
        for radius in RADII:
            s = stroke_bench(tracker, masks, radius, stroke_reps, rng)
            ok = bool(np.allclose(tracker.dice_matrix(), numpy_from_scratch(masks)))
            sr = stroke_bench(tracker, masks, radius, stroke_reps, rng, region=True)
            ok = ok and bool(np.allclose(tracker.dice_matrix(), numpy_from_scratch(masks)))
            strokes.append({"size": f"{w}x{h}", "annotators": n, "radius": radius,
                            "pixels": s["pixels"], "changed": s["changed_median"], "stroke": s,
                            "stroke_region": sr,
                            "speedup_vs_numpy": a["median_s"] / s["median_s"],
                            "speedup_region_vs_numpy": a["median_s"] / sr["median_s"],
                            "speedup_vs_torchmetrics": tm_s / s["median_s"], "exact": ok})
    row = {"size": f"{w}x{h}", "N": n, "(a) numpy all pairs": fmt_time(a["median_s"]),
           "(b) torchmetrics": fmt_time(tm_s) + ("*" if len(tm_pairs) < len(pairs) else ""),
           "(c) read once": fmt_time(c["median_s"])}
    if "tracker_recompute" in rec:
        row["tracker recompute"] = fmt_time(rec["tracker_recompute"]["median_s"])
        row["recompute / (c)"] = fmt_ratio(rec["recompute_vs_read_once"])
        row["1 thread / (c)"] = fmt_ratio(rec["recompute_1_thread_vs_read_once"])
        row["/ (c) 2 threads"] = fmt_ratio(rec["recompute_vs_read_once_2_threads"])
        row["mem B/px/ann"] = (f"{rec['memory']['retained_per_px_per_annotator']:.3f}"
                               f" (peak {rec['memory']['peak_per_px_per_annotator']:.2f})"
                               if "memory" in rec else "")
    print(f"  {w}x{h} N={n}: numpy {fmt_time(a['median_s'])}, read-once {fmt_time(c['median_s'])}",
          file=sys.stderr, flush=True)
    return rec, row, strokes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="2 and 15 annotators at 512x512 and 6000x4000 only, fewer repeats")
    ap.add_argument("--3d", dest="volumes", action="store_true",
                    help="4 and 15 annotators x 300 x 512 x 512 instead (bench_tracker_3d.py)")
    args = ap.parse_args(argv)
    if args.volumes:
        import bench_tracker_3d

        return bench_tracker_3d.main(["--quick"] if args.quick else [])
    quick = args.quick
    missing = ""
    try:
        from napari_iaa.agreement import AgreementTracker
    except ImportError:
        try:  # the room's module, before its __init__ exports it
            from napari_iaa.agreement.tracker import AgreementTracker
        except ImportError as exc:
            AgreementTracker = None
            missing = f"napari_iaa.agreement.AgreementTracker ({exc})"
    stroke_reps = 21 if quick else 101
    rows, strokes, records = [], [], []
    rng = np.random.default_rng(1)
    sizes = [SIZES[0], SIZES[-1]] if quick else SIZES
    annotators = [ANNOTATORS[0], ANNOTATORS[-1]] if quick else ANNOTATORS
    for (w, h) in sizes:
        for n in annotators:
            rec, row, st = bench_config(AgreementTracker, n, w, h, quick, stroke_reps, rng)
            records.append(rec)
            rows.append(row)
            strokes += st
            gc.collect()

    print("\nFull recompute (median):")
    print(table(rows, list(rows[-1].keys())))
    if any(r["(b) torchmetrics"].endswith("*") for r in rows):
        print("* torchmetrics timed on the first 3 (--quick) or 10 pairs and scaled to all pairs")
    srows = [{"size": s["size"], "N": s["annotators"], "radius": s["radius"], "px": s["pixels"],
              "changed": f"{s['changed']:.0f}",
              "update()": fmt_time(s["stroke"]["median_s"]),
              "vs (a) numpy": fmt_ratio(s["speedup_vs_numpy"]),
              "update_region()": fmt_time(s["stroke_region"]["median_s"]),
              "region vs (a)": fmt_ratio(s["speedup_region_vs_numpy"]),
              "vs (b) torchmetrics": fmt_ratio(s["speedup_vs_torchmetrics"]),
              "exact": "yes" if s["exact"] else "NO"} for s in strokes]
    targets = {}
    if strokes:
        print("\nStroke update (tracker update + dice_matrix, median; 'changed': pixels that flipped):")
        print(table(srows, list(srows[0].keys())))
        worst = [s for s in strokes if s["size"] == "6000x4000" and s["annotators"] == 15]
        wmax = max(worst, key=lambda s: s["stroke"]["median_s"])
        big = next(r for r in records if r["size"] == "6000x4000" and r["annotators"] == 15)
        rmax = max(worst, key=lambda s: s["stroke_region"]["median_s"])
        targets = {
            "region_stroke_15x6000x4000_median_s": rmax["stroke_region"]["median_s"],
            "region_stroke_15x6000x4000_radius": rmax["radius"],
            "region_stroke_under_1ms": rmax["stroke_region"]["median_s"] < 1e-3,
            "region_speedup_vs_numpy_min": min(s["speedup_region_vs_numpy"] for s in worst),
            "region_speedup_at_least_500x": min(s["speedup_region_vs_numpy"] for s in worst) >= 500,
            "stroke_15x6000x4000_median_s": wmax["stroke"]["median_s"],
            "stroke_15x6000x4000_radius": wmax["radius"],
            "stroke_under_1ms": wmax["stroke"]["median_s"] < 1e-3,
            "stroke_speedup_vs_numpy_min": min(s["speedup_vs_numpy"] for s in worst),
            "stroke_speedup_at_least_500x": min(s["speedup_vs_numpy"] for s in worst) >= 500,
            "recompute_vs_read_once_15x6000x4000": big["recompute_vs_read_once"],
            "recompute_within_1_5x": big["recompute_vs_read_once"] <= 1.5,
            "recompute_1_thread_vs_read_once_15x6000x4000": big["recompute_1_thread_vs_read_once"],
            "recompute_vs_read_once_2_threads_15x6000x4000": big["recompute_vs_read_once_2_threads"],
            "memory_per_px_per_annotator": big.get("memory", {}).get("retained_per_px_per_annotator"),
        }
        print("\nTargets at 15 x 6000 x 4000:")
        print(f"  slowest stroke (r={wmax['radius']}): {fmt_time(wmax['stroke']['median_s'])} "
              f"(target < 1 ms: {'met' if targets['stroke_under_1ms'] else 'MISSED'})")
        print(f"  slowest stroke through update_region (r={rmax['radius']}): "
              f"{fmt_time(rmax['stroke_region']['median_s'])} "
              f"(target < 1 ms: {'met' if targets['region_stroke_under_1ms'] else 'MISSED'}; "
              f">= {fmt_ratio(targets['region_speedup_vs_numpy_min'])} vs numpy)")
        print(f"  speed-up vs numpy all pairs: >= {fmt_ratio(targets['stroke_speedup_vs_numpy_min'])} "
              f"(target >= 500x: {'met' if targets['stroke_speedup_at_least_500x'] else 'MISSED'})")
        print(f"  full recompute vs read-once: {fmt_ratio(targets['recompute_vs_read_once_15x6000x4000'])} "
              f"(target <= 1.5x: {'met' if targets['recompute_within_1_5x'] else 'MISSED'}; "
              f"on 1 thread {fmt_ratio(targets['recompute_1_thread_vs_read_once_15x6000x4000'])}, "
              f"vs the floor read by 2 threads "
              f"{fmt_ratio(targets['recompute_vs_read_once_2_threads_15x6000x4000'])})")
    else:
        print(f"\nStroke update: not yet measured: needs {missing}")
    write_results("tracker", {"quick": quick, "full_recompute": records, "strokes": strokes,
                              "targets": targets, "status": "ok" if strokes else "not measured"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
