"""Compare MHR checkpoints trained on different splits, on the cases none of them saw.

The models trained on the first N cases of a data set (``--first``, split seed as in
their cards) and one trained on all of it have different held-out patients. This keeps
the last model's ``--split`` cases minus every group of the first N cases that an
earlier model trained, selected or calibrated on (everything there but its test split),
and prints each model's summary (pooled and CURVAS metrics; isotonic = ``calibrated``).

    python scripts/compare_mhr_unseen.py --data LIDC --first 3000 --split val \\
        sample_data/models/twintrack-lidc.json runs/tt16h/twintrack-lidc.json
"""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> dict[str, dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="cards: the first-N models, then the all-cases model")
    ap.add_argument("--data", required=True, help="the data set all of them were trained on")
    ap.add_argument("--first", type=int, required=True, help="the earlier models' --max-cases")
    ap.add_argument("--split", default="val", choices=("val", "test"))
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args(argv)

    from napari_iaa.models.checkpoint import load_checkpoint
    from training.datasets import build_cache
    from training.tasks import TASKS, select_split, task_for_card

    loaded = [(p, *load_checkpoint(p, device="cpu")) for p in args.models]
    size = TASKS[loaded[0][2].task].cache_size(int(loaded[0][2].input_size[0]))
    cache = build_cache(args.data, size, empty="zero", workers=0, cache_dir=args.cache_dir)
    keys = [str(g) for g in cache.groups]
    first = set(keys[: args.first])
    seen: set[str] = set()
    for _, _, card in loaded[:-1]:
        seen |= first - set(card.split["groups"]["test"])
    idx = [i for i in select_split(cache, loaded[-1][2].split, args.split) if keys[i] not in seen]
    print(f"{args.split}: {len(idx)} cases, {len({keys[i] for i in idx})} groups no model saw")
    out = {}
    for path, model, card in loaded:
        res = task_for_card(card, cache, args.data).evaluate(model, card, cache, idx, "cpu")
        out[path] = res.get("summary", res)
        print(path, json.dumps(res.get("summary", res), default=float))
    return out


if __name__ == "__main__":
    main()
