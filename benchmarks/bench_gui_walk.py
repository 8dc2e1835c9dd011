"""GUI stalls of walking a data set's cases in the review dock ("next case").

The reviewer's most frequent action: ``ReviewWidget.step_case(+1)`` after the data set is
open and its table scored. Each step loads the case, gives the dock's layers the new data
(reused, not re-added), binds the live agreement and, 300 ms later, refreshes LOO Dice and
STAPLE; the longest event-loop stall (1 ms probe timer, ``bench_gui.StallProbe``) is taken
over all of that (1 s settle).

Baseline, same process: napari alone (a second viewer, no dock) giving copies of the
dock's layers (the image, one Labels layer per annotator with the dock's contour width and
colours, the MHR image, the two consensus Labels layers) the next cases' data, all in one
event-loop turn, as the dock does for a case of this size.

    python benchmarks/bench_gui_walk.py [--data DIR] [--steps N]

Default data: the benchmarks' 20-case synthetic set (1024 x 768, 4 annotators), generated
once into the cache; ``--data`` takes any data set folder (e.g. LIDC slices).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import display_or_rerun, fmt_ratio, fmt_time, table, write_results
from bench_gui import StallProbe


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="", help="data set folder (default: synthetic 1024x768, 4 annotators)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--unit", default=None, help="unit of review where the layout offers one")
    args = ap.parse_args(argv)
    rc = display_or_rerun(__file__, argv, "gui_walk", "event-loop stalls")
    if rc is not None:
        return rc
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_iaa.widgets import ReviewWidget

    if args.data:
        data = Path(args.data)
    else:
        from bench_score import synthetic_set

        data, _ = synthetic_set(20, 4)
    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="IAA review", area="right")
    probe = StallProbe(app)
    probe.measure(lambda: None, settle_s=0.5)
    opened = probe.measure(
        lambda: widget.open_dataset(str(data), unit=args.unit), settle_s=2.0, timeout_s=600,
        until=lambda: widget.live is not None and not widget.dataset_panel.busy
        and not widget.reliability.busy)
    steps = []
    for _ in range(min(args.steps, len(widget.dataset.ids) - 1)):
        before = widget.case_id
        r = probe.measure(lambda: widget.step_case(+1), settle_s=1.0,
                          until=lambda b=before: widget.case_id != b and widget.live is not None
                          and not widget.reliability.busy)
        r["case_id"] = widget.case_id
        steps.append(r)
        print(f"{r['case_id']}: stall {r['max_stall_s'] * 1e3:.1f} ms, call {r['call_s'] * 1e3:.1f} ms",
              flush=True)

    # baseline: napari given the next case's data for copies of the same layers (same
    # kinds, contours, colours) in a plain viewer without the dock, in one turn
    from napari.layers import Layer

    plain = napari.Viewer(show=True)
    roles = []
    for lay in widget.our_layers():
        data, meta, kind = lay.as_layer_data_tuple()
        meta = {k: v for k, v in meta.items() if k != "metadata"}
        roles.append((plain.add_layer(Layer.create(np.copy(data), meta, kind)),
                      lay.metadata["napari_iaa"]["role"]))
    probe.measure(lambda: None, settle_s=0.5)
    cases = [widget.dataset.load(cid) for cid in widget.dataset.ids[: len(steps) + 1]]
    base = []
    for case in cases[1:] + cases[:1]:
        masks = [np.asarray(case.masks[m]).astype(np.uint8) for m in case.mask_ids]

        def give(case=case, masks=masks):
            k = 0
            for lay, role in roles:
                if role == "image":
                    lay.data = np.asarray(case.image)
                elif role == "annotator":
                    lay.data = masks[k % len(masks)]
                    k += 1
                elif role == "mhr":
                    lay.data = np.mean(masks, axis=0, dtype=np.float32)
                else:
                    lay.data = masks[0]
        base.append(probe.measure(give, settle_s=1.0)["max_stall_s"])

    stall = float(np.median([s["max_stall_s"] for s in steps]))
    b = float(np.median(base))
    size = "x".join(str(v) for v in np.shape(next(iter(cases[0].masks.values()))))
    rows = [{"action": f"next case ({len(steps)} steps), {len(cases[0].mask_ids)} annotators, {size}",
             "longest stall (median)": fmt_time(stall),
             "all": " ".join(f"{s['max_stall_s'] * 1e3:.0f}" for s in steps),
             "baseline": f"napari given the same layers new data in one turn: {fmt_time(b)}",
             "ratio": fmt_ratio(stall / b) if b else "-"}]
    print(f"\nopening the data set (table scored): stall {fmt_time(opened['max_stall_s'])}")
    print(table(rows, list(rows[0].keys())))
    summary = [{"what": "GUI stall: " + rows[0]["action"], "figure": rows[0]["longest stall (median)"],
                "baseline": rows[0]["baseline"], "ratio": rows[0]["ratio"], "target": "-", "met": "-"}]
    write_results("gui_walk", {"data": str(data), "steps": steps, "baseline_s": base,
                               "open_dataset": opened, "summary": summary, "status": "ok"})
    sys.stdout.flush()
    os._exit(0)  # workers may still be winding down


if __name__ == "__main__":
    sys.exit(main())
