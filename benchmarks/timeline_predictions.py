"""Where a Predictions-dock prediction's event-loop gaps come from: a timeline.

Not a benchmark with a target (``bench_gui_predictions.py`` is): a diagnosis. One process
(under ``xvfb-run -a`` when no display) with a viewer, the review dock on a synthetic
sample case and the Predictions dock (automatic predictions off) runs a first prediction,
``--reps`` later ones and as many plain updates of the three map layers (napari given a
copy of their data, one per event-loop turn: the baseline). For every gap of the 1 ms
probe timer over 15 ms it prints the gap's wall time, the GUI thread's CPU time in it
(``time.thread_time``: unlike the wall time, nearly blind to other processes' load; a
wall time well above it means the GUI thread waited, for a core or for the GIL) and the
dock's callbacks that ran in it (start in ms after the gap's start, own duration).
``--profile`` adds a cProfile of the GUI thread over the later predictions
(``--profile-out``, a ``pstats`` file).

    env -u PYTHONDONTWRITEBYTECODE xvfb-run -a python benchmarks/timeline_predictions.py [--reps 3]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timeline import Timeline, trace
from bench_gui import StallProbe, plain_map_update

#: the dock's callbacks put on the timeline: (module, class, methods)
_TRACED = [
    ("napari_iaa.widgets.predictions.case_tab", "CaseTab",
     ["predict_current", "_on_yield", "_apply_progress", "_case_done", "show_result",
      "_set_layer", "_show_numbers"]),
    ("napari_iaa.widgets.predictions.quality", "QualityPanel", ["show_prediction"]),
    ("napari_iaa.widgets._common.plots", "AsyncPlot", ["submit", "show_image", "_on_done"]),
    ("napari_iaa.widgets._common.workers", "Activity", ["__init__", "_open", "_apply", "close"]),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--profile-out", default=str(Path(tempfile.gettempdir()) / "later.prof"))
    args = ap.parse_args(argv)
    os.environ.setdefault("NAPARI_IAA_MODELS", tempfile.mkdtemp(prefix="napari-iaa-bench-models-"))
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_iaa.data import open_dataset, sample_data_path
    from napari_iaa.widgets import ReviewWidget

    viewer = napari.Viewer(show=True)
    probe = StallProbe(QApplication.instance())
    review = ReviewWidget(viewer)
    viewer.window.add_dock_widget(review, name="IAA review", area="right")
    ds = open_dataset(sample_data_path("synthetic"))
    case = ds.load(ds.ids[0])
    probe.measure(lambda: review.show_case(case), settle_s=1.0, until=lambda: review.live is not None)
    from napari_iaa.widgets.predictions import PredictionsWidget

    dock = PredictionsWidget(viewer, auto=False)
    viewer.window.add_dock_widget(dock, name="Predictions", area="right")
    probe.measure(lambda: None, settle_s=1.0, until=lambda: not dock.settings.loading, timeout_s=300)
    timeline = Timeline(probe)
    trace(timeline.log, _TRACED)
    prof = cProfile.Profile() if args.profile else None

    def run(label: str, action, until, profile: bool = False) -> None:
        if profile:
            prof.enable()
        timeline.run(label, action, until=until, settle_s=1.0, timeout_s=300)
        if profile:
            prof.disable()

    def idle() -> bool:
        return not dock.busy

    run("first prediction", dock.predict_current, idle)
    for i in range(args.reps):
        run(f"later prediction {i + 1}", dock.predict_current, idle, profile=args.profile)

    def plain_update():
        return plain_map_update(viewer)

    for i in range(args.reps):
        run(f"napari given new data for the map layers {i + 1}", *plain_update())
    if prof is not None:
        prof.dump_stats(args.profile_out)
        print(f"\nprofile of the later predictions: {args.profile_out}")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
