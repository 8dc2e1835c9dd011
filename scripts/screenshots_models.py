"""Screenshots of the predictions and training docks for the README (run under ``xvfb-run -a``).

Makes ``docs/images/training.png`` (the training dock after a short real run on the
synthetic sample: progress, live loss / validation plot, log, held-out metrics) and
``docs/images/predictions.png`` (the predictions dock on a case of the sample: predicted
vs. empirical IAA, the calibrated MHR layer, the reliability diagram with the case's
multi-rater ECE, and predicted quality beside leave-one-out Dice).

The predictions use the models shipped in ``sample_data/models`` when they cover the
synthetic sample; otherwise the missing ones are trained here (a few minutes on a CPU)
into ``--work`` and registered.

    xvfb-run -a python scripts/screenshots_models.py [--out docs/images] [--work /tmp/iaa-shots] \
        [--only training]

The training run is small (40 images): its warnings (splits too small to measure) show in
the dock's warning label, above the plot, and counted on its bar; no pop-up covers the
window. ``--only training`` makes that picture alone (about a minute).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _qt_wait import settle as _settle
from _qt_wait import wait as _wait

ROOT = Path(__file__).resolve().parents[1]


def _widen(viewer, widget, width: int) -> None:
    q = widget.parentWidget()
    while q is not None and q.metaObject().className() != "QtViewerDockWidget":
        q = q.parentWidget()
    if q is not None:
        viewer.window._qt_window.resizeDocks([q], [width], 1)


def _shipped_for(task: str, data_name: str = "synth") -> Path | None:
    """A shipped model of ``task`` trained on the synthetic sample, if there is one."""
    from napari_iaa.models import ModelRegistry

    reg = ModelRegistry(include_user=False)
    for entry in reg.by_task(task):
        if entry.source == "shipped" and data_name in entry.name:
            return entry.path
    return None


def _fit(task: str, data: Path, out: Path, **kw) -> Path:
    from training.config import FitConfig
    from training.fitting import fit

    cfg = FitConfig(task=task, data=str(data), out=str(out), name=f"shot-{task}", device="cpu",
                    **kw)
    res = fit(cfg)
    if res.checkpoint_path is None:
        raise RuntimeError(f"training {task} produced no checkpoint")
    return Path(res.checkpoint_path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    ap.add_argument("--work", type=Path, default=None, help="folder for the models trained here")
    ap.add_argument("--case", default=None, help="case of the synthetic sample to show")
    ap.add_argument("--only", choices=("all", "training"), default="all",
                    help="'training': the training dock's picture alone")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="iaa-shots-"))
    work.mkdir(parents=True, exist_ok=True)

    import napari

    from napari_iaa.data import open_dataset, sample_data_path
    from napari_iaa.widgets._common.model_events import shared_registry
    from napari_iaa.widgets.predictions import LAYER_CAL, PredictionsWidget
    from napari_iaa.widgets.review import ReviewWidget
    from napari_iaa.widgets.training import TrainingWidget

    data = sample_data_path("synthetic")
    ds = open_dataset(data)
    viewer = napari.Viewer(show=True, title="napari-iaa predictions and training")
    viewer.window.resize(1680, 1020)

    # ---- training dock: a real short run on the synthetic sample
    training = TrainingWidget(viewer)
    viewer.window.add_dock_widget(training, name="Training", area="right")
    training.set_values(data=data, task="iaa", backbone="resnet10t", epochs=6, batch_size=8,
                        image_size=64, lr=2e-3, device="cpu", out=work, name="dock-iaa-synth")
    _widen(viewer, training, 480)
    review = ReviewWidget(viewer)
    viewer.window.add_dock_widget(review, name="Review", area="left")
    review.unsaved_policy = "discard"
    review.verdict_box.reviewer_edit.setText("first.reader")  # as in the other screenshots
    review.set_dataset(ds, source=str(data), case_id=args.case or ds.ids[0])
    training.start()
    _wait(lambda: not training.running)
    _wait(lambda: not training.plot.busy)
    run = training.last_run or {}
    if run.get("status") != "done":
        print("training run did not finish:", run, file=sys.stderr)
        return 1
    viewer.reset_view()
    _settle()
    viewer.screenshot(str(args.out / "training.png"), canvas_only=False)
    print("wrote", args.out / "training.png")
    print("warnings shown in the dock:", training.warning_label.isVisible(),
          training.warning_label.text()[:200])
    if args.only == "training":
        viewer.close()
        return 0

    # ---- models for the predictions: shipped ones if they cover the sample, else train
    # the shipped IAA model (the dock's 6-epoch run above is there to show the dock; it
    # is offered in the model list, not chosen for the README's predictions)
    models = {"iaa": _shipped_for("iaa") or Path(run["checkpoint"])}
    for task, kw in (("mhr", {"backbone": "resnet10t", "size": 64, "epochs": 6, "batch_size": 8,
                               "lr": 2e-3, "n_levels": 5}),
                     ("quality", {"backbone": "resnet10t", "size": 64, "epochs": 4,
                                  "batch_size": 16, "lr": 2e-3})):
        shipped = _shipped_for(task)
        models[task] = shipped or _fit(task, data, work, **kw)
    if _shipped_for("mhr") is None:
        models["mhr"] = _fit("calibrate", data, work, models=[str(models["mhr"])])
    reg = shared_registry()
    for p in models.values():
        reg.register(p)

    # ---- predictions dock on the most ambiguous case with several annotators
    viewer.window.remove_dock_widget(training)
    preds = PredictionsWidget(viewer, review=review, auto=False)
    viewer.window.add_dock_widget(preds, name="Predictions", area="right")
    _widen(viewer, preds, 480)
    preds.settings.refresh()
    _wait(lambda: not preds.settings.loading)  # the model list is read in a worker
    for task, p in models.items():
        preds.settings.select(task, str(Path(p).resolve()))
        if preds.settings.selected_path(task) is None or (
                preds.settings.selected_path(task).resolve() != Path(p).resolve()):
            preds.settings.select(task, str(p))
    case_id = args.case
    if case_id is None:
        meta = ds.metadata()
        many = meta[meta["n_annotators"] >= 4]
        case_id = str((many if len(many) else meta)["case_id"].iloc[1])
    review.open_case(case_id)
    _settle()
    preds.predict_current()
    _wait(lambda: not preds.busy and preds.case_tab.last_prediction is not None)
    for layer in viewer.layers:
        if layer.name == LAYER_CAL:
            layer.visible = True
            layer.opacity = 0.6
        elif (layer.metadata.get("napari_iaa") or {}).get("role") == "mhr":
            layer.visible = False  # the empirical MHR: let the predicted one show
    preds.case_tab.auto_check.setChecked(True)
    viewer.reset_view()
    _settle()
    viewer.screenshot(str(args.out / "predictions.png"), canvas_only=False)
    print("wrote", args.out / "predictions.png")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
