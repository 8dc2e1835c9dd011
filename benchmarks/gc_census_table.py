"""What a data-set table run leaves for Python's garbage collector (issue 16; no timing).

A ``DatasetPanel`` (offscreen Qt, no napari viewer) opens a data set and scores it with
the table's worker ``--runs`` times. For each run: the collections per generation, the
objects promoted to the oldest generation (the survivors of each generation-1
collection: what brings a full collection of the whole heap nearer, CPython 3.8-3.12)
with their types, and the GC-tracked objects left after a generation-0 collection; for
the open, the tracked objects left after a full collection. The first run also pays the
process's first imports (napari's worker module, without a viewer).

    python benchmarks/gc_census_table.py FOLDER [--unit slice] [--runs 3]
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--unit", default="slice")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qtpy.QtCore import QEventLoop, QTimer
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])  # noqa: F841 - Qt needs one
    from napari_iaa.widgets.dataset.panel import DatasetPanel
    from napari_iaa.widgets.review.navigation import open_in_unit

    ds, unit = open_in_unit(args.folder, args.unit)
    panel = DatasetPanel()
    gc.collect()
    before = len(gc.get_objects())
    panel.set_dataset(ds, compute=False)
    gc.collect()
    print(f"opening {len(ds):,} {unit}s: GC-tracked objects after a full collection "
          f"{len(gc.get_objects()) - before:+,}")
    types: collections.Counter = collections.Counter()
    state = {"promoted": 0, "collections": [0, 0, 0]}

    def census(phase: str, info: dict) -> None:
        gen = info["generation"]
        if phase == "start":
            if gen == 1:  # generations 0 and 1: their survivors go to the oldest
                young = gc.get_objects(0) + gc.get_objects(1)
                state["young"] = len(young)
                types.update(type(o).__name__ for o in young)
                del young
            return
        state["collections"][gen] += 1
        if gen == 1 and "young" in state:
            state["promoted"] += state.pop("young") - info["collected"] - 1  # less our list

    for run in range(args.runs):
        loop = QEventLoop()
        panel.scoring_finished.connect(loop.quit)
        gc.collect()
        before = len(gc.get_objects())
        types.clear()
        state.update(promoted=0, collections=[0, 0, 0])
        gc.callbacks.append(census)
        t = time.perf_counter()
        QTimer.singleShot(0, panel.compute)
        loop.exec_()
        took = time.perf_counter() - t
        gc.callbacks.remove(census)
        panel.scoring_finished.disconnect(loop.quit)
        gc.collect(0)
        n = state["collections"]
        print(f"run {run + 1}: {took:.1f} s; collections {n[0]} / {n[1]} / {n[2]} (generation "
              f"0 / 1 / 2); {state['promoted']:,} objects promoted to the oldest generation; "
              f"GC-tracked objects left {len(gc.get_objects()) - before:+,}")
        if types:
            print("  types alive at the generation-1 collections:", types.most_common(8))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
