"""Loop overhead: the Trainer against a minimal hand-written loop (same model, data, batch).

``python -m training.bench [--backbone resnet10t --size 64 --batch-size 32 --steps 30]``
prints images/s of both and their ratio (target: the Trainer within 10 %).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from training.engine import Trainer

__all__ = ["loop_overhead"]


def loop_overhead(backbone: str = "resnet10t", size: int = 64, batch_size: int = 32, steps: int = 30,
                  seed: int = 0, repeats: int = 2) -> dict[str, float]:
    """Images/s of a minimal loop and of :class:`Trainer` on the same random data (CPU)."""
    from napari_iaa.models.card import ModelCard
    from napari_iaa.models.networks import build_model

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(steps * batch_size, 3, size, size, generator=g)
    y = torch.rand(steps * batch_size, generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)
    card = ModelCard(name="bench", task="iaa", backbone=backbone, input_size=(size, size))

    def step(model, batch):
        xb, yb = batch
        return torch.nn.functional.smooth_l1_loss(model(xb)["iaa"], yb, beta=0.1)

    def minimal() -> float:
        torch.manual_seed(seed)
        model = build_model(card)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        model.train()
        t = time.perf_counter()
        for xb, yb in loader:
            loss = step(model, (xb, yb))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return len(x) / (time.perf_counter() - t)

    def ours() -> float:
        torch.manual_seed(seed)
        model = build_model(card)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        tr = Trainer(model, opt, loader, step, None, epochs=1, device="cpu")
        return tr.fit().images_per_second

    minimal()  # warm-up (allocator, kernels)
    a = max(minimal() for _ in range(repeats))
    b = max(ours() for _ in range(repeats))
    return {"minimal_images_per_second": a, "trainer_images_per_second": b, "ratio": b / a,
            "backbone": backbone, "size": size, "batch_size": batch_size, "steps": steps}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.bench")
    ap.add_argument("--backbone", default="resnet10t")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=30)
    a = ap.parse_args(argv)
    print(json.dumps(loop_overhead(a.backbone, a.size, a.batch_size, a.steps), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
