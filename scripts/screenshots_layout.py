"""Screenshots of the three docks open at once (run under a 1920x1080 virtual screen).

Makes ``docs/images/docks_1080p.png``: napari at 1920x1080 with the Review, Predictions and
Training docks open (one tab group, the content scrolls) on an LIDC sample slice, zoomed to
the lesion, predicted by the shipped models; and, in ``--shots`` (not for the README), the
same window at 1366x768, the predicted MHR and difference layers, and the Cohort tab on a
data set without a grouping column and with a labels CSV joined.

    xvfb-run -a -s "-screen 0 1920x1080x24" python scripts/screenshots_layout.py \\
        [--out docs/images] [--shots /tmp/shots]

napari keeps a window's size between sessions; this script runs with a settings file of
its own (``NAPARI_CONFIG`` in a temporary folder), as a first launch does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from _qt_wait import settle as _settle
from _qt_wait import wait as _wait

ROOT = Path(__file__).resolve().parents[1]


def _shot(viewer, path: Path) -> None:
    from qtpy.QtWidgets import QApplication

    _settle()
    try:
        from napari._qt.dialogs.qt_notification import NapariQtNotification
    except ImportError:  # pragma: no cover - napari moved it
        NapariQtNotification = None
    if NapariQtNotification is not None:
        for w in QApplication.allWidgets():
            if isinstance(w, NapariQtNotification):
                w.close()
    _settle(5)
    path.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(path), canvas_only=False)
    print("wrote", path)


def _open_docks(viewer):
    docks = {}
    for name in ("Review", "Predictions", "Training"):
        docks[name] = viewer.window.add_plugin_dock_widget("napari-iaa", name)
    _settle()
    return docks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    ap.add_argument("--shots", type=Path, default=None, help="folder for the other shots")
    ap.add_argument("--size", type=int, nargs=2, default=(1920, 1080), metavar=("W", "H"),
                    help="window size (the screen's: a maximised window)")
    ap.add_argument("--name", default="docks_1080p.png", help="file name of the main shot")
    args = ap.parse_args(argv)
    os.environ.setdefault("NAPARI_CONFIG", str(Path(tempfile.mkdtemp()) / "settings.yaml"))

    import napari

    from napari_iaa._sample_data import pick_case
    from napari_iaa.data import open_dataset, sample_data_path
    from napari_iaa.widgets.review.zoom import zoom_to_lesion

    viewer = napari.Viewer(show=True, title="napari-iaa")
    qmw = viewer.window._qt_window
    qmw.setGeometry(0, 0, *args.size)  # maximised (no window manager on a virtual screen)
    _settle()
    docks = _open_docks(viewer)
    review_dock, review = docks["Review"]
    predictions = docks["Predictions"][1]
    data = sample_data_path("lidc")
    ds = open_dataset(data)
    review.set_dataset(ds, source=str(data), case_id=pick_case(ds))
    _wait(lambda: not review.dataset_panel.busy and review.live is not None)
    _wait(lambda: not predictions.busy)
    zoom_to_lesion(viewer)
    review_dock.raise_()
    _shot(viewer, args.out / args.name)
    print("window", qmw.size().width(), "x", qmw.size().height(), "canvas",
          viewer.window._qt_viewer.canvas.native.width(), "minimum",
          qmw.minimumSizeHint().width(), "x", qmw.minimumSizeHint().height())
    if args.shots is None:
        viewer.close()
        return 0

    shots = args.shots
    for name in ("predicted MHR (calibrated)", "MHR difference (predicted - empirical)"):
        if name in viewer.layers:
            for layer in viewer.layers:
                if layer.name.startswith(("predicted MHR", "MHR difference")):
                    layer.visible = layer.name == name
            viewer.layers["MHR"].visible = False
            docks["Predictions"][0].raise_()
            _shot(viewer, shots / f"predicted_{name.split()[1]}.png")
    viewer.layers["MHR"].visible = True
    for layer in viewer.layers:
        if layer.name.startswith(("predicted MHR", "MHR difference")):
            layer.visible = False
    review_dock.raise_()
    review.tabs.setCurrentIndex(2)
    review.cohort_panel.refresh_columns()
    _shot(viewer, shots / "cohort_no_groups.png")

    # a data set without metadata and a labels CSV of its diagnoses
    tmp = Path(tempfile.mkdtemp(prefix="napari-iaa-shots-"))
    syn = sample_data_path("synthetic")
    copy = tmp / "synthetic"
    shutil.copytree(syn, copy, ignore=shutil.ignore_patterns(".napari-iaa"))
    meta = next(copy.glob("*_img_metadata.csv"))
    labels = tmp / "diagnoses.csv"
    meta.rename(labels)
    ds2 = open_dataset(copy)
    review.set_dataset(ds2, source=str(copy), case_id=ds2.ids[0])
    _wait(lambda: not review.dataset_panel.busy and review.live is not None)
    review.tabs.setCurrentIndex(2)
    review.cohort_panel.load_labels(labels)
    review.cohort_panel.run()
    _shot(viewer, shots / "cohort_labels.png")
    viewer.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
