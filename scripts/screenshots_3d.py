"""Screenshot of a lesion volume reviewed in 3D, with its slice profile (run under xvfb).

Makes ``docs/images/review_3d.png``: the review dock on a volume case (by default the
synthetic lesion sample, 2.5 x 0.7 x 0.7 mm voxels, or ``--data``/``--case``), the viewer
in 3D with the annotators' masks as surfaces over the CT slice of the worst-agreeing
slice (an image plane), the case panel's HD95 matrix in mm and the slice profile.

    xvfb-run -a python scripts/screenshots_3d.py [--out docs/images] [--data FOLDER]
        [--case ID] [--metric hd95|assd|dice] [--unit nodule]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from screenshots import _close_toasts, _wait  # noqa: E402 - the 2D script's helpers


def _pick_volume(ds) -> str:
    """The volume case with the lowest IAA among those every annotator marked."""
    import numpy as np

    from napari_iaa.agreement import iaa

    best, best_v = ds.ids[0], np.inf
    for cid in ds.ids:
        case = ds.load(cid)
        if not case.is_volume or not all(m.any() for m in case.masks.values()):
            continue
        v = float(iaa(case.stack()))
        if np.isfinite(v) and v < best_v:
            best, best_v = cid, v
    return best


def _dock_width(viewer, dock, width: int) -> None:
    qwin = dock.parentWidget()
    while qwin is not None and qwin.metaObject().className() != "QtViewerDockWidget":
        qwin = qwin.parentWidget()
    if qwin is not None and width:
        viewer.window._qt_window.resizeDocks([qwin], [width], 1)  # 1 = Qt.Horizontal


def _show_in_3d(viewer, dock, worst: int) -> None:
    """3D view: masks as surfaces, the image as one plane at the worst slice, zoomed in."""
    import numpy as np

    dock.contour_check.setChecked(False)  # surfaces, not outlines, in 3D
    dock.mhr_check.setChecked(False)
    for lay in dock.our_layers("annotator"):
        lay.opacity = 0.6
    viewer.dims.ndisplay = 3
    for lay in dock.our_layers("image"):
        lay.depiction = "plane"
        lay.plane.position = (float(worst), lay.data.shape[1] / 2, lay.data.shape[2] / 2)
        lay.plane.normal = (1.0, 0.0, 0.0)
        lay.blending = "translucent_no_depth"
    case = dock.current_case(copy=False)
    union = np.any(case.stack(), axis=0)
    idx = np.argwhere(union)
    sp = np.asarray(case.voxel_spacing)
    lo, hi = idx.min(0) * sp, (idx.max(0) + 1) * sp
    viewer.camera.center = tuple((lo + hi) / 2)
    viewer.camera.angles = (-20.0, 30.0, 115.0)
    extent = float(np.max(hi - lo))
    viewer.camera.zoom = 0.62 * min(viewer.window._qt_viewer.canvas.size) / max(extent, 1.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    ap.add_argument("--data", type=Path, default=None,
                    help="volume data set (default: the synthetic lesion volumes sample)")
    ap.add_argument("--case", default=None, help="case to show (default: the lowest IAA)")
    ap.add_argument("--unit", default=None, help="unit of review (LIDC slices: nodule)")
    ap.add_argument("--metric", default="hd95", choices=("dice", "hd95", "assd"))
    ap.add_argument("--name", default="review_3d.png")
    ap.add_argument("--dock-width", type=int, default=560)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    import napari

    from napari_iaa._dock import open_review_dock
    from napari_iaa.data import sample_data_path
    from napari_iaa.widgets.review.navigation import open_in_unit

    data = args.data or sample_data_path("synthetic3d")
    ds, unit = open_in_unit(data, args.unit)
    case_id = args.case or _pick_volume(ds)
    viewer = napari.Viewer(show=True, title="napari-iaa review (3D)")
    viewer.window.resize(1680, 1020)
    dock = open_review_dock(viewer)
    dock.unsaved_policy = "discard"
    dock.set_dataset(ds, source=str(data), case_id=case_id, unit=unit)
    _wait(None, lambda: dock.live is not None and dock.profile.profile is not None)
    _wait(None, lambda: not dock.dataset_panel.busy)
    dock.tabs.setCurrentIndex(0)
    _dock_width(viewer, dock, args.dock_width)
    dock.panel.set_metric(args.metric)
    _wait(None, lambda: args.metric == "dice" or dock.panel.has_surface())
    worst = dock.profile.profile.worst_slice() or 0
    dock.profile.go_to_worst()
    _show_in_3d(viewer, dock, worst)
    from qtpy.QtWidgets import QApplication

    for _ in range(30):
        QApplication.processEvents()
    _close_toasts()
    path = args.out / args.name
    viewer.screenshot(str(path), canvas_only=False)
    print("wrote", path, "case", case_id, "worst slice", worst)
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
