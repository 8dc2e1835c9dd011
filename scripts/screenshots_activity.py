"""Screenshot of napari's activity dock while the plugin works (run under a virtual screen).

Makes ``docs/images/activity.png``: the Review, Predictions and Training docks open on a
copy of the synthetic sample, with three jobs running at once - the data-set table
scoring, a triage of the folder with the shipped models and a short training run - and
napari's activity dock (bottom right) showing a bar for each.

    xvfb-run -a -s "-screen 0 1920x1080x24" python scripts/screenshots_activity.py \\
        [--out docs/images]

The whole screen is grabbed (the activity dock is a separate pop-up, not part of the main
window's own picture).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from _qt_wait import settle, wait

ROOT = Path(__file__).resolve().parents[1]


def _bars() -> list[str]:
    """The descriptions of the bars in napari's activity dock."""
    from napari.utils import progress

    return [p.desc for p in progress._all_instances]


def _close_toasts() -> None:
    """Dismiss napari's notification pop-ups (they would cover the activity dock)."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification
    from qtpy.QtWidgets import QApplication

    for w in QApplication.allWidgets():
        if isinstance(w, NapariQtNotification):
            w.close()
    settle(5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="napari-iaa-activity-"))
    os.environ.setdefault("NAPARI_CONFIG", str(tmp / "settings.yaml"))
    os.environ.setdefault("NAPARI_IAA_MODELS", str(tmp / "user-models"))

    import napari
    from napari.settings import get_settings
    from qtpy.QtWidgets import QApplication

    from napari_iaa.data import open_dataset, sample_data_path

    data = tmp / "synthetic"
    shutil.copytree(sample_data_path("synthetic"), data,
                    ignore=shutil.ignore_patterns(".napari-iaa"))
    # the run's small-data warnings would pop up over the activity dock: keep them in the log
    get_settings().application.gui_notification_level = "none"
    viewer = napari.Viewer(show=True, title="napari-iaa")
    qmw = viewer.window._qt_window
    qmw.setGeometry(0, 0, 1920, 1080)
    docks = {name: viewer.window.add_plugin_dock_widget("napari-iaa", name)[1]
             for name in ("Review", "Predictions", "Training")}
    review, predictions, training = docks["Review"], docks["Predictions"], docks["Training"]
    ds = open_dataset(data)
    review.set_dataset(ds, source=str(data), case_id=ds.ids[0])
    wait(lambda: not review.dataset_panel.busy and review.live is not None)
    wait(lambda: not predictions.busy and not predictions.settings.loading)

    training.set_values(data=data, task="iaa", backbone="resnet18", size=64, epochs=3,
                        batch_size=8, device="cpu", out=tmp / "run", name="activity-demo")
    training.start()  # the slowest first, so that the three overlap
    predictions.triage_tab.start_triage(data)
    review.dataset_panel.compute()
    viewer.window._status_bar._toggle_activity_dock(True)
    settle(8)
    _close_toasts()
    print("bars:", _bars())
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "activity.png"
    QApplication.primaryScreen().grabWindow(0).save(str(path))
    print("wrote", path)
    training.cancel()
    predictions.triage_tab.cancel_triage()
    review.dataset_panel.cancel()
    wait(lambda: not training.running, timeout_s=300)
    viewer.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
