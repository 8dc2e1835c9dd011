"""MHR checkpoints of any input size, measured at the data's native resolution.

The training metrics measure a model at its input size (64 px for most shipped MHR
models, docs/metrics.md); the CURVAS challenge measures at the native resolution. For a
data set whose images all share one native size (LIDC's 128 px crops) this runs each
model on the cache at its own input size, resizes its map to the native size the way the
plugin does (``napari_iaa.models.preprocess.resize_map``), and measures it, with
its card's calibrator when it has one, against the native masks. The models must share
the split (same data, ``--seed`` and fractions; TwinTrack members and ensembles do).

    python scripts/compare_mhr_native.py --data LIDC --split val CARD [CARD ...]
"""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> dict[str, dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="cards (.json) of mhr or mhr_ensemble checkpoints")
    ap.add_argument("--data", required=True, help="the data set the models were trained on")
    ap.add_argument("--split", default="val", choices=("val", "test", "calib"))
    ap.add_argument("--native", type=int, default=128, help="the images' native size in pixels")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    args = ap.parse_args(argv)

    import torch

    from napari_iaa.calibration import calibrator_from_dict
    from napari_iaa.models.checkpoint import load_checkpoint
    from napari_iaa.models.preprocess import resize_map
    from training.context import with_slice_context
    from training.datasets import MHRTorchDataset, build_cache
    from training.inference import predict_mhr
    from training.metrics import mhr_metrics, mhr_summary
    from training.tasks import select_split

    if args.threads:
        torch.set_num_threads(args.threads)
    caches = {}

    def cache(size: int):
        if size not in caches:
            caches[size] = build_cache(args.data, size, empty="zero", workers=0, cache_dir=args.cache_dir)
        return caches[size]

    native = cache(args.native)
    odd = {tuple(s) for s in native.shapes if tuple(s) != (args.native, args.native)}
    if not native.shapes or odd:
        raise SystemExit(f"{args.data}: not every image is {args.native} x {args.native} px "
                         f"(also {sorted(odd)[:3]}); this comparison needs one native size")
    first = None
    out = {}
    for path in args.models:
        model, card = load_checkpoint(path, device="cpu")
        size = int(card.input_size[0])
        c = cache(size)
        if c.case_ids != native.case_ids:
            raise SystemExit(f"{path}: the {size} px cache holds other cases than the native one")
        if (card.extra or {}).get("config", {}).get("slice_context"):
            c = with_slice_context(c)  # a 2.5D model: slices n-1, n, n+1 as its channels
        idx = select_split(c, card.split, args.split)
        if first is None:
            first = idx
        elif idx != first:
            raise SystemExit(f"{path}: its {args.split} split differs from {args.models[0]}'s")
        ds = MHRTorchDataset(c, idx, card.mean, card.std, None, 0, int(card.n_levels or 2))
        p, _ = predict_mhr([model], ds, "cpu")
        if size != args.native:  # the plugin's resize of a map (the cases as one stack)
            p = resize_map(p, (args.native, args.native))
        masks = [native.masks[i] for i in idx]
        raters = [native.raters[i] for i in idx]
        shapes = [native.shapes[i] for i in idx]
        blocks = {"uncalibrated": mhr_metrics(p, masks, raters, None, shapes=shapes)}
        if card.calibrator:
            kind = card.calibrator.get("kind", "calibrated")
            blocks[kind] = mhr_metrics(calibrator_from_dict(card.calibrator).transform(p), masks, raters, None,
                                       shapes=shapes)
        out[path] = mhr_summary(blocks)
        print(f"{path} ({size} px, {len(idx)} {args.split} cases):",
              json.dumps(out[path], default=lambda v: round(float(v), 4)), flush=True)
    return out


if __name__ == "__main__":
    main()
