"""Training speed: our loop (``training.fit``) vs a minimal hand-written loop.

Same model (``napari_iaa.models.build_model`` on the card our task makes), same data
(the task's torch data set over the same cached cases and split, same augmentation) and
same batch size. Ours: ``FitResult.images_per_second`` (training steps only, as the
Trainer counts them) of ``training.fit``; hand-written: ``for batch in DataLoader:
forward, SmoothL1, backward, AdamW step``, timed over the same number of epochs.
Target (issue 6): within 10 %. Time per epoch on the full LIDC data is estimated from the
measured throughput (the run uses a subset of patients to stay within the time budget).
CPU, 1 torch thread for both (stable on a shared machine). glibc's malloc is set up as
``python -m training`` sets it (:func:`napari_iaa._malloc.tune_malloc`, for both).

    python benchmarks/bench_training.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_ratio, fmt_time, not_measured, table, write_results


def pick_data(quick: bool) -> tuple[Path, str, int | None]:
    """LIDC subset when available, else the cached synthetic set: (path, label, full-set cases)."""
    from bench_score import lidc_root, lidc_subset, synthetic_set

    root, _how = lidc_root()
    if root is not None:
        n_pat = 8 if quick else 20
        return lidc_subset(root, n_pat), f"LIDC, first {n_pat} patients", 10681
    d, _ = synthetic_set(100, 3)
    return d, "synthetic 100 x 1024x768", None


def hand_written(config, epochs: int) -> tuple[float, int]:
    """Minimal loop on the same model, data and batch size: (seconds, images)."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader

    from napari_iaa.models import build_model
    from training.datasets import build_cache
    from training.tasks import TASKS

    task_cls = TASKS[config.task]
    cache = build_cache(config.data, task_cls.cache_size(config.size), layout=config.layout,
                        empty=config.empty_pair, max_cases=config.max_cases, workers=2,
                        cache_dir=config.cache_dir)
    task = task_cls(config, cache)
    split = task.make_split()
    card = task.make_card(split)
    torch.manual_seed(config.seed)
    model = build_model(card)
    ds = task.train_dataset(split["train"])
    loader = DataLoader(ds, batch_size=config.batch_size, shuffle=True, drop_last=len(ds) > config.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    model.train()
    n = 0
    t = time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            out = model(batch["image"])
            loss = F.smooth_l1_loss(out["iaa"], batch["iaa"], beta=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n += batch["image"].shape[0]
    return time.perf_counter() - t, n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    from napari_iaa._malloc import tune_malloc

    tune_malloc()
    try:
        import torch

        from training import FitConfig, fit
    except ImportError as exc:
        return not_measured("training", [{"what": "training images/s", "status": "not measured"}],
                            f"needs the training package ({exc})")
    torch.set_num_threads(1)
    data, label, full_cases = pick_data(args.quick)
    epochs = 1 if args.quick else 2
    with tempfile.TemporaryDirectory() as tmp:
        config = FitConfig(task="iaa", data=str(data), backbone="resnet10t", size=128, epochs=epochs,
                           batch_size=32, device="cpu", out=tmp, name="bench", workers=0, threads=1,
                           cache_dir=str(Path(tmp) / "cache"), seed=0)
        t = time.perf_counter()
        res = fit(config)
        fit_total = time.perf_counter() - t
        ours_ips = float(res.images_per_second)
        base_s, base_n = hand_written(config, epochs)
    base_ips = base_n / base_s
    ratio = base_ips / ours_ips if ours_ips else float("nan")
    n_train_full = int(full_cases * 0.55) if full_cases else None  # 1 - val - test - calib fractions
    rows = [{"what": f"IAA regressor resnet10t 128px, batch 32, {epochs} epoch(s), {label}",
             "ours (training.fit)": f"{ours_ips:.1f} img/s",
             "hand-written loop": f"{base_ips:.1f} img/s ({base_n} images in {fmt_time(base_s)})",
             "ours slower by": f"{100 * (ratio - 1):+.0f} %", "target <= +10 %": "met" if ratio <= 1.10 else "MISSED"}]
    print(f"\nTraining speed on CPU (1 thread): fit() took {fmt_time(fit_total)} in all "
          "(reading and caching the data, validation, checkpoints included)")
    print(table(rows, list(rows[0].keys())))
    epoch_est = n_train_full / ours_ips if (n_train_full and ours_ips) else None
    if epoch_est:
        print(f"estimated time per epoch on all 10,681 LIDC slices ({n_train_full} training slices): "
              f"{epoch_est / 60:.1f} min at {ours_ips:.1f} img/s")
    summary = [{"what": f"training images/s, {label} (resnet10t 128px, batch 32, CPU 1 thread)",
                "figure": f"{ours_ips:.1f} img/s", "baseline": f"hand-written loop {base_ips:.1f} img/s",
                "ratio": fmt_ratio(base_ips / ours_ips) if ours_ips else "-", "target": "<= 1.10x",
                "met": "yes" if ratio <= 1.10 else "NO"}]
    if epoch_est:
        summary.append({"what": "training time per epoch, all LIDC (estimated from throughput)",
                        "figure": f"{epoch_est / 60:.1f} min", "baseline": "-", "ratio": "-",
                        "target": "(report)", "met": "-"})
    write_results("training", {"quick": args.quick, "data": str(data), "label": label, "epochs": epochs,
                               "ours_images_per_s": ours_ips, "baseline_images_per_s": base_ips,
                               "baseline_images": base_n, "baseline_s": base_s, "fit_total_s": fit_total,
                               "ratio_baseline_over_ours": ratio, "epoch_estimate_s": epoch_est,
                               "summary": summary, "status": "ok"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
