"""Batched inference of the models being trained or evaluated (eval mode, no gradients)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

__all__ = ["predict_batches", "predict_mhr"]


def predict_batches(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    fn: Callable[[torch.nn.Module, dict], Any],
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    should_stop: Callable[[], bool] | None = None,
) -> list[Any]:
    """Run ``fn(model, batch_on_device)`` over a data set in eval mode; list of outputs."""
    model.eval()
    outs = []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    with torch.no_grad():
        for batch in loader:
            if should_stop is not None and should_stop():
                raise InterruptedError("evaluation cancelled")
            batch = {k: v.to(device) for k, v in batch.items()}
            outs.append(fn(model, batch))
    return outs


def predict_mhr(models: Sequence[torch.nn.Module], dataset, device="cpu", batch_size: int = 64) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean expected fraction ``(n, S, S)`` over models, and level probs of the first (or None)."""
    from napari_iaa.models.networks import expected_fraction

    ps, lps = [], []
    for k, m in enumerate(models):
        def fn(model, batch, keep=(k == 0)):
            logits = model(batch["image"])
            if logits.dim() == 3:  # an ensemble already returns the fraction
                return logits.float().cpu().numpy(), None
            probs = torch.softmax(logits.float(), 1)
            return expected_fraction(logits).cpu().numpy(), (probs.cpu().numpy().astype(np.float32) if keep else None)

        outs = predict_batches(m, dataset, fn, device, batch_size)
        ps.append(np.concatenate([o[0] for o in outs]))
        if k == 0 and outs and outs[0][1] is not None:
            lps = np.concatenate([o[1] for o in outs])
    p = np.mean(ps, axis=0).astype(np.float32)
    return p, (lps if isinstance(lps, np.ndarray) else None)
