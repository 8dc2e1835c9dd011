"""Screenshots of the predictions dock's model choice (run under ``xvfb-run -a``).

On a case of the synthetic dermoscopy sample, with the shipped models:
- ``case_models.png``: the Case tab after a prediction with the models picked for the data
  (the model's name beside each number, the MHR map calibrated);
- ``models_mismatch.png``: the Models tab with the LIDC models chosen by hand for the
  dermoscopy case (the match column, the mismatch warning);
- ``case_mismatch.png``: the Case tab predicted with them (the warning above the numbers);
- ``offer.png``: a freshly "trained" model offered, not switched to;
- ``viewer.png``: the whole window.

    xvfb-run -a python scripts/screenshots_model_choice.py [--out /tmp/shots]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from _qt_wait import settle as _settle
from _qt_wait import wait as _wait

ROOT = Path(__file__).resolve().parents[1]


def _grab(widget, path: Path) -> None:
    _settle()
    widget.grab().save(str(path))
    print("wrote", path)


def _offered_copy(folder: Path) -> Path:
    """A copy of the shipped iaa-synth under a new name with a worse held-out figure."""
    shipped = ROOT / "sample_data" / "models"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(shipped / "iaa-synth.safetensors", folder / "iaa-dock-1epoch.safetensors")
    card = json.loads((shipped / "iaa-synth.json").read_text())
    card["metrics"]["test"]["iaa"]["mae_vs_baseline"] = 1.49
    card.update(name="iaa-dock-1epoch", weights="iaa-dock-1epoch.safetensors")
    path = folder / "iaa-dock-1epoch.json"
    path.write_text(json.dumps(card, indent=2))
    return path


def main(argv: list[str] | None = None) -> int:
    """Make the screenshots into ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/shots"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    import napari

    from napari_iaa.data import open_dataset, sample_data_path
    from napari_iaa.models import ModelRegistry
    from napari_iaa.widgets._common.model_events import MODEL_EVENTS
    from napari_iaa.widgets.predictions import PredictionsWidget
    from napari_iaa.widgets.predictions.models_tab import ModelSettingsWidget
    from napari_iaa.widgets.review import ReviewWidget

    data = sample_data_path("synthetic")
    ds = open_dataset(data)
    viewer = napari.Viewer(show=True, title="napari-iaa: which model made each number")
    viewer.window.resize(1600, 1000)
    review = ReviewWidget(viewer)
    viewer.window.add_dock_widget(review, name="Review", area="left")
    review.unsaved_policy = "discard"
    review.set_dataset(ds, source=str(data), case_id=ds.ids[3])
    extra = Path(tempfile.mkdtemp(prefix="iaa-offer-"))
    reg = ModelRegistry(paths=[extra], include_user=False)
    settings = ModelSettingsWidget(registry=reg)
    preds = PredictionsWidget(viewer, review=review, settings=settings, auto=False)
    viewer.window.add_dock_widget(preds, name="Predictions", area="right")
    _wait(lambda: not settings.loading and settings.matching is not None
          and settings.matching.domain is not None)

    preds.predict_current()
    _wait(lambda: not preds.busy and preds.case_tab.last_prediction is not None)
    preds.tabs.setCurrentWidget(preds.case_tab)
    _grab(preds, args.out / "case_models.png")

    lidc = {m.slot: m.path for m in settings.models if m.name.endswith("-lidc")}
    for slot, path in lidc.items():
        settings.select(slot, path)
    preds.tabs.setCurrentWidget(settings)
    _grab(preds, args.out / "models_mismatch.png")
    preds.case_tab.last_prediction = None
    preds.predict_current()
    _wait(lambda: not preds.busy and preds.case_tab.last_prediction is not None)
    preds.tabs.setCurrentWidget(preds.case_tab)
    _grab(preds, args.out / "case_mismatch.png")
    viewer.screenshot(str(args.out / "viewer.png"), canvas_only=False)
    print("wrote", args.out / "viewer.png")

    for slot in ("iaa", "mhr", "quality"):  # back to the matching models
        settings.select(slot, settings.matching.best[slot])
    new = _offered_copy(extra)
    reg.register(new)
    MODEL_EVENTS.registered.emit(str(new))
    _wait(lambda: settings.offer_banner.isVisibleTo(settings))
    preds.tabs.setCurrentWidget(settings)
    _grab(preds, args.out / "offer.png")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
