"""``evaluate_checkpoint`` (``python -m training evaluate``): held-out metrics of a saved model.

It loads a checkpoint and runs the metrics of its task (:mod:`training.metrics`) on the
test split recorded in its card (or on every case). For MHR models a ``summary`` puts the
pooled and the CURVAS challenge's headline numbers side by side (docs/metrics.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_iaa.data import atomic_write_json, json_safe
from training.datasets import build_cache
from training.tasks import TASKS, select_split, task_for_card

__all__ = ["evaluate_checkpoint"]


def evaluate_checkpoint(
    model_path: str | Path,
    data: str | Path,
    layout: str | None = None,
    split: str = "test",
    max_cases: int | None = None,
    device: str = "auto",
    out: str | Path | None = None,
    workers: int = 2,
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Metrics of a saved checkpoint on a data set.

    Parameters
    ----------
    model_path : path
        Checkpoint (``.json`` card, ``.safetensors`` or stem).
    data : path
        Data set.
    split : {"test", "val", "calib", "train", "all"}
        Which cases: the groups the card's split put into that split (cases of groups the
        model never saw when the data set differs), or every case with ``"all"``.
    out : path, optional
        Folder for ``<name>.eval.json`` and the reliability PNG.

    Returns
    -------
    dict
        The metrics (also written when ``out`` is given); NaN and inf are None.
    """
    from napari_iaa.models.checkpoint import load_checkpoint
    from napari_iaa.models.device import pick_device

    dev = pick_device(device)
    model, card = load_checkpoint(model_path, device=dev)
    size = TASKS[card.task].cache_size(int(card.input_size[0]))
    cache = build_cache(data, size, layout=layout, empty=(card.extra or {}).get("empty_pair", "zero"),
                        max_cases=max_cases, workers=workers, cache_dir=cache_dir,
                        progress=progress, should_stop=should_stop)
    idx = select_split(cache, card.split, split)
    task = task_for_card(card, cache, data)
    png = (Path(out) / f"{card.name}_reliability.png") if out else None
    metrics = task.evaluate(model, card, cache, idx, dev, out_png=png)
    metrics = json_safe({"model": str(model_path), "data": str(data), "split": split,
                         "n_cases": len(idx), **metrics})
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(out) / f"{card.name}.eval.json", metrics)
    return metrics
