"""Batched inference shared by the predictors.

The next batch is prepared in a worker thread while the current one runs through the
network (torch releases the GIL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from napari_iaa.errors import IAAError

__all__ = ["Progress", "ShouldStop", "image_of", "iter_batched", "prep_batch", "run_batched"]


Progress = Callable[[int, int], None] | None
ShouldStop = Callable[[], bool] | None


def image_of(x: Any) -> np.ndarray:
    return np.asarray(x.image if hasattr(x, "image") else x)



def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for it in items:
        batch.append(it)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def iter_batched(
    items: Iterable[Any],
    prep: Callable[[list[Any]], Any],
    run: Callable[[Any], list[Any]],
    batch_size: int,
    should_stop: ShouldStop = None,
) -> Iterator[list[Any]]:
    """Yield ``run(prep(batch))`` batch by batch, the next batch prepared meanwhile.

    ``prep`` of the next batch runs in a worker thread while ``run`` handles the current
    one. Errors raised by ``prep`` surface when their batch is due. ``should_stop`` is
    checked before the first batch, before the next batch's preparation is started and
    after every batch; a caller that stops iterating (``close()`` on the generator, e.g.
    a cancelled worker) ends it between batches as well.
    """
    stopped = (lambda: False) if should_stop is None else should_stop
    batches = _batches(items, max(1, int(batch_size)))
    first = next(batches, None)
    if first is None or stopped():
        return
    second = next(batches, None)
    if second is None:  # one batch: nothing to overlap
        yield run(prep(first))
        return
    n_threads = torch.get_num_threads()
    with ThreadPoolExecutor(1, thread_name_prefix="napari-iaa-prep",
                            initializer=torch.set_num_threads,
                            initargs=(n_threads,)) as pool:
        pending: Future | None = pool.submit(prep, first)
        upcoming: list[Any] | None = second
        try:
            while pending is not None:
                prepared = pending.result()
                pending = None
                if upcoming is not None and not stopped():
                    pending = pool.submit(prep, upcoming)
                    upcoming = next(batches, None)
                yield run(prepared)
                if pending is not None and stopped():
                    break
        finally:
            if pending is not None:
                pending.cancel()


def run_batched(
    items: Iterable[Any],
    prep: Callable[[list[Any]], Any],
    run: Callable[[Any], list[Any]],
    batch_size: int,
    progress: Progress,
    should_stop: ShouldStop,
) -> list[Any]:
    """``run(prep(batch))`` for every batch (see :func:`iter_batched`), as one list.

    ``progress(done, total)`` is called after every batch; ``should_stop`` is checked
    before every batch and the results so far are returned once it is true.
    """
    total = len(items) if hasattr(items, "__len__") else 0  # type: ignore[arg-type]
    out: list[Any] = []
    for res in iter_batched(items, prep, run, batch_size, should_stop):
        out.extend(res)
        if progress is not None:
            progress(len(out), total)
    return out


def prep_batch(
    items: list[Any], prep: Callable[[Any], torch.Tensor], strict: bool
) -> tuple[torch.Tensor | None, list[int], dict[int, str]]:
    """Prepare a batch; with ``strict=False`` unusable items are reported, not raised."""
    tensors, ok, errors = [], [], {}
    for i, it in enumerate(items):
        try:
            tensors.append(prep(it))
            ok.append(i)
        except IAAError as exc:
            if strict:
                raise
            errors[i] = str(exc)
    return (torch.stack(tensors) if tensors else None), ok, errors


