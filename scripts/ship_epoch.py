"""Make a checkpoint of a saved training epoch other than the one the fit kept.

A fit keeps the epoch with the best ``--monitor`` metric. When another validation metric
chooses a different epoch (``python -m training evaluate --split val`` on the epoch's
``<name>_state/epoch-N/model.json``), this writes that epoch as ``OUT/<name>.safetensors``
+ card, with the test-split metrics measured once and the reason for the choice in
``extra.selected_epoch``; ship it with ``python -m training.export --from OUT ...``.

    python scripts/ship_epoch.py STATE/epoch-0007/model.json --best models/quality-lidc.json \\
        --data DATA --out OUT --why "last epoch: higher validation Pearson"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from napari_iaa.models.checkpoint import load_checkpoint, save_checkpoint
from training.evaluate import evaluate_checkpoint


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("epoch_card", type=Path, help="<name>_state/epoch-N/model.json")
    ap.add_argument("--best", type=Path, required=True, help="the fit's own card (its training record is kept)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--why", required=True, help="why this epoch (written into the card)")
    ap.add_argument("--cache-dir", default=None)
    a = ap.parse_args(argv)
    model, card = load_checkpoint(a.epoch_card)
    best = json.loads(a.best.read_text())
    a.out.mkdir(parents=True, exist_ok=True)
    stem = a.out / card.name
    save_checkpoint(model, card, stem)
    ev = evaluate_checkpoint(stem.with_suffix(".json"), a.data, split="test", device="cpu", workers=1,
                             cache_dir=a.cache_dir)
    card.metrics["test"] = {k: v for k, v in ev.items() if k not in ("model", "data")}
    if "training" in best.get("metrics", {}).get("test", {}):
        card.metrics["test"]["training"] = best["metrics"]["test"]["training"]
    card.extra["selected_epoch"] = a.why
    save_checkpoint(model, card, stem)
    print(json.dumps({k: v for k, v in card.metrics["test"].items() if k != "by_corruption"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
