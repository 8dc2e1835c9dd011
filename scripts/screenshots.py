"""Screenshots of the review plugin for the README (run under ``xvfb-run -a``).

Makes ``docs/images/review.png`` (viewer + review dock on a synthetic case with visible
disagreement), ``docs/images/dataset.png`` (the data-set table, scored and flagged) and
``docs/images/cohort.png`` (IAA by diagnosis), ``docs/images/verdicts.png`` (the case tab
with a verdict) and ``docs/images/review_table.png`` (the table with the review columns;
both on a copy of the data set, so its review store is a throw-away one).

    xvfb-run -a python scripts/screenshots.py [--out docs/images] [--data FOLDER]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _qt_wait import wait

ROOT = Path(__file__).resolve().parents[1]


def _close_toasts() -> None:
    """Dismiss notification pop-ups (e.g. napari's backend deprecation notice)."""
    from qtpy.QtWidgets import QApplication

    try:
        from napari._qt.dialogs.qt_notification import NapariQtNotification
    except ImportError:  # pragma: no cover - napari moved it
        return
    for w in QApplication.allWidgets():
        if isinstance(w, NapariQtNotification):
            w.close()
    for _ in range(5):
        QApplication.processEvents()


def _zoom_to_masks(viewer, dock) -> None:
    """Zoom on the annotated region when it is small (LIDC nodules are ~10 px)."""
    import numpy as np

    case = dock.current_case()
    if case is None or not case.masks:
        return
    union = np.any(case.stack(), axis=0)
    if not union.any():
        return
    ys, xs = np.nonzero(union)
    h, w = union.shape
    bh, bw = int(np.ptp(ys)) + 1, int(np.ptp(xs)) + 1
    if bh * bw > 0.1 * h * w:
        return
    viewer.camera.center = (float(ys.mean()), float(xs.mean()))
    viewer.camera.zoom = viewer.camera.zoom * min(h / (8 * bh), w / (8 * bw), 3.0)


def _shot(viewer, path: Path) -> None:
    from qtpy.QtWidgets import QApplication

    for _ in range(20):
        QApplication.processEvents()
    _close_toasts()
    viewer.screenshot(str(path), canvas_only=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    ap.add_argument("--data", type=Path, default=None, help="data set (default: synthetic sample)")
    ap.add_argument("--case", default=None, help="case to show (default: the sample's choice)")
    ap.add_argument("--dock-width", type=int, default=660, help="dock width in pixels (0: napari's)")
    ap.add_argument("--only-review", action="store_true", help="only review.png")
    ap.add_argument("--name", default="review.png", help="file name of the review screenshot")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    import napari
    from qtpy.QtCore import Qt

    from napari_iaa._dock import open_review_dock
    from napari_iaa._sample_data import pick_case
    from napari_iaa.data import open_dataset, sample_data_path

    data = args.data or sample_data_path("synthetic")
    viewer = napari.Viewer(show=True, title="napari-iaa review")
    viewer.window.resize(1800, 1020)
    dock = open_review_dock(viewer)
    ds = open_dataset(data)
    case_id = args.case or pick_case(ds)
    dock.set_dataset(ds, source=str(data), case_id=case_id)
    wait(lambda: not dock.dataset_panel.busy)
    if args.case is None:
        # the most disagreeing case among those with many annotators (IAA > 0.5)
        df = dock.dataset_panel.model.frame()
        many = df[(df["n_annotators"] >= max(4, int(df["n_annotators"].max()) - 1)) & (df["IAA"] > 0.5)]
        if len(many):
            dock.open_case(str(many.sort_values("IAA")["case_id"].iloc[0]))
    # widen the dock so the tables are readable
    qwin = dock.parentWidget()
    while qwin is not None and qwin.metaObject().className() != "QtViewerDockWidget":
        qwin = qwin.parentWidget()
    if qwin is not None and args.dock_width:
        viewer.window._qt_window.resizeDocks([qwin], [args.dock_width], 1)  # 1 = Qt.Horizontal
    dock.tabs.setCurrentIndex(0)
    viewer.reset_view()
    _zoom_to_masks(viewer, dock)
    _shot(viewer, args.out / args.name)
    if args.only_review:
        print("wrote", args.out / args.name)
        viewer.close()
        return 0

    dock.tabs.setCurrentIndex(1)
    dock.dataset_panel.view.sortByColumn(
        dock.dataset_panel.model.columns.index("IAA"), Qt.SortOrder.AscendingOrder
    )
    dock.dataset_panel.view.clearSelection()
    dock.dataset_panel.view.scrollToTop()
    _shot(viewer, args.out / "dataset.png")

    dock.tabs.setCurrentIndex(2)
    dock.cohort_panel.refresh_columns()
    dock.cohort_panel.run()
    _shot(viewer, args.out / "cohort.png")
    _verdict_shots(viewer, dock, Path(data), args.out)
    names = ("review.png", "dataset.png", "cohort.png", "verdicts.png", "review_table.png",
             "edits.png", "export.png")
    print("wrote", *(str(args.out / n) for n in names))
    viewer.close()
    return 0


def _verdict_shots(viewer, dock, data: Path, out: Path) -> None:
    """verdicts.png and review_table.png, on a copy of ``data`` with a few verdicts."""
    import shutil
    import tempfile

    from qtpy.QtCore import Qt

    from napari_iaa.data import open_dataset
    from napari_iaa.review import ReviewStore

    tmp = Path(tempfile.mkdtemp(prefix="napari-iaa-shots-"))
    copy = tmp / data.name
    if data.is_dir():
        shutil.copytree(data, copy, ignore=shutil.ignore_patterns(".napari-iaa"))
    else:
        shutil.copy2(data, copy)
    ds = open_dataset(copy)
    case_id = dock.case_id if dock.case_id in ds.ids else ds.ids[0]
    others = [c for c in ds.ids if c != case_id]
    with ReviewStore.open(copy, reviewer="second.reader") as second:  # "another window"
        for cid, status, comment in zip(
            others[:5], ["accepted", "accepted", "reannotate", "excluded", "accepted"],
            ["", "", "r2 missed the lower lobe", "image blurred", ""], strict=False,
        ):
            second.set_verdict(cid, status, comment=comment or None)
    done = []
    dock.verdicts.table_refreshed.connect(lambda: done.append(True))
    dock.set_dataset(ds, source=str(copy), case_id=case_id)
    wait(lambda: done and not dock.dataset_panel.busy)
    dock.verdict_box.reviewer_edit.setText("first.reader")  # not kept in the settings
    dock.verdict_box.comment_edit.setText("r3 traced the hair artefact; majority vote is fine")
    dock.verdict_box.buttons["accepted"].click()
    wait(lambda: not dock.verdicts.busy)
    dock.tabs.setCurrentIndex(0)
    viewer.reset_view()
    _zoom_to_masks(viewer, dock)
    _shot(viewer, out / "verdicts.png")
    panel = dock.dataset_panel
    dock.tabs.setCurrentIndex(1)
    panel.view.sortByColumn(panel.model.columns.index("status"), Qt.SortOrder.AscendingOrder)
    panel.view.clearSelection()
    panel.view.scrollToTop()
    _shot(viewer, out / "review_table.png")
    _outcome_shots(viewer, dock, out)
    dock.verdicts.close()
    shutil.rmtree(tmp, ignore_errors=True)


def _outcome_shots(viewer, dock, out: Path) -> None:
    """edits.png (two saved edits of one mask, its history) and export.png (a consensus run)."""
    mid, layer = next(iter(dock.annotator_layers().items()))
    h, w = layer.data.shape[:2]
    layer.brush_size = 30
    for k in range(2):  # two versions of one mask, saved in turn
        layer.paint((20 + 40 * k, 20), 1)  # outside the lesion: a real change
        wait(lambda: mid in dock.unsaved_mask_ids())
        dock.save_edits()
        wait(lambda: not dock.unsaved_mask_ids())
    dock.tabs.setCurrentIndex(3)
    dock.edits_panel.refresh_masks()
    idx = dock.edits_panel.mask_combo.findText(mid)
    if idx >= 0:
        dock.edits_panel.mask_combo.setCurrentIndex(idx)
    dock.edits_panel.refresh()
    _shot(viewer, out / "edits.png")
    dock.tabs.setCurrentIndex(4)
    dock.export_panel.start()
    wait(lambda: not dock.export_panel.running())
    _shot(viewer, out / "export.png")


if __name__ == "__main__":
    raise SystemExit(main())
