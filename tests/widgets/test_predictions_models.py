"""The predictions dock picks the models of the open data, says which model made each
number, warns on a mismatch, offers trained models and never swaps silently."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

pytestmark = pytest.mark.gui


@pytest.fixture
def warnings_log():
    """Messages of napari warning notifications emitted during the test."""
    from napari.utils.notifications import NotificationSeverity, notification_manager

    got: list[str] = []

    def _on(event):
        n = event.value if hasattr(event, "value") else event
        if getattr(n, "severity", None) == NotificationSeverity.WARNING:
            got.append(str(n.message))

    notification_manager.notification_ready.connect(_on)
    yield got
    notification_manager.notification_ready.disconnect(_on)


def _show_case(viewer, sample: str, index: int = 0):
    """Replace the viewer's layers by a sample data set's case (image + annotator labels)."""
    from napari_iaa.data import open_dataset, sample_data_path

    for layer in list(viewer.layers):
        viewer.layers.remove(layer)
    ds = open_dataset(sample_data_path(sample))
    case = ds.load(ds.ids[index])
    viewer.add_image(case.image, name=case.case_id, rgb=case.is_rgb)
    for mid in case.mask_ids:
        viewer.add_labels(case.masks[mid].astype(np.uint8), name=mid)
    return case


@pytest.fixture
def shipped_dock(make_napari_viewer, qtbot, tmp_path):
    """The predictions dock over the shipped models plus a folder for new ones."""
    from napari_iaa.models import ModelRegistry
    from napari_iaa.widgets.predictions import PredictionsWidget
    from napari_iaa.widgets.predictions.models_tab import ModelSettingsWidget

    viewer = make_napari_viewer()
    _show_case(viewer, "lidc")
    reg = ModelRegistry(paths=[tmp_path / "new"], include_user=False)
    settings = ModelSettingsWidget(registry=reg)
    assert "loading models" in settings.status_label.text()  # torch loads in a worker
    widget = PredictionsWidget(viewer, settings=settings, auto=False)
    viewer.window.add_dock_widget(widget, name="Predictions")
    qtbot.waitUntil(lambda: settings.ready and settings.matching.domain is not None,
                    timeout=60_000)
    return viewer, widget, reg


def _names(settings) -> dict[str, str]:
    return {slot: settings.chosen_info(slot).name for slot in ("iaa", "mhr", "quality")}


def test_dock_picks_the_models_of_the_open_data(shipped_dock, qtbot):
    viewer, widget, _reg = shipped_dock
    s = widget.settings
    # MHR: the ordinal model or the TwinTrack ensemble of the same data (better Brier)
    names = _names(s)
    assert names.pop("mhr") in {"mhr-lidc", "twintrack-lidc"}
    assert names == {"iaa": "iaa-lidc", "quality": "quality-lidc"}
    assert not s.warning_label.isVisible() and "grey" in s.status_label.text()
    with qtbot.waitSignal(s.loaded, timeout=60_000):
        _show_case(viewer, "synthetic")
    names = _names(s)
    assert names.pop("mhr") in {"mhr-synth", "twintrack-synth"}
    assert names == {"iaa": "iaa-synth", "quality": "quality-synth"}
    assert "rgb" in s.status_label.text()


def test_mismatch_warns_in_the_dock_and_a_notification(shipped_dock, qtbot, warnings_log):
    viewer, widget, _reg = shipped_dock
    s = widget.settings
    lidc = s.chosen_info("iaa")
    with qtbot.waitSignal(s.loaded, timeout=60_000):
        _show_case(viewer, "synthetic")
    s.select("iaa", lidc.path)  # the user insists on the LIDC model for dermoscopy
    assert s.chosen_info("iaa").name == "iaa-lidc"
    text = s.warning_label.text()
    assert s.warning_label.isVisibleTo(s) and "iaa-lidc" in text and "the data are rgb" in text
    assert widget.case_tab.mismatch_label.text() == text
    assert any("do not match the training data of iaa-lidc" in m for m in warnings_log)
    assert "does not match the data" in s.combos["iaa"].currentText()
    # a pinned choice survives a change of data; the others follow the data
    with qtbot.waitSignal(s.loaded, timeout=60_000):
        _show_case(viewer, "lidc", 1)
    assert _names(s)["iaa"] == "iaa-lidc" and not s.warning_label.isVisibleTo(s)


def _new_model(folder, name: str, source: str, **changes):
    """A copy of a shipped checkpoint under a new name, its card changed."""
    from napari_iaa.data import sample_data_path

    shipped = sample_data_path("lidc").parent / "models"
    folder.mkdir(exist_ok=True)
    shutil.copy(shipped / f"{source}.safetensors", folder / f"{name}.safetensors")
    card = json.loads((shipped / f"{source}.json").read_text())
    card.update(name=name, weights=f"{name}.safetensors", created="2031-01-01T00:00:00Z",
                **changes)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(card, indent=2))
    return path


def test_trained_model_is_offered_never_swapped(shipped_dock, qtbot, tmp_path):
    from napari_iaa.widgets._common.model_events import MODEL_EVENTS

    _viewer, widget, reg = shipped_dock
    s = widget.settings
    before = s.selected()
    # a one-epoch model: same data, a much worse held-out figure, registered by training
    card = json.loads((s.chosen_info("iaa").path).read_text())
    card["metrics"]["test"]["iaa"]["mae_vs_baseline"] = 1.49
    new = _new_model(tmp_path / "new", "iaa-one-epoch", "iaa-lidc", metrics=card["metrics"])
    reg.register(new)
    with qtbot.waitSignal(s.loaded, timeout=60_000):
        MODEL_EVENTS.registered.emit(str(new))
    assert s.selected() == before  # listed, not chosen
    assert any(m.name == "iaa-one-epoch" for m in s.models)
    banner = s.offer_banner
    assert banner.isVisibleTo(s)
    assert "iaa-one-epoch" in banner.label.text()
    assert "the model in use is better" in banner.label.text()
    # a rescan does not swap either
    with qtbot.waitSignal(s.loaded, timeout=60_000):
        s.refresh()
    assert s.selected() == before
    banner.use_button.click()  # the user says yes
    assert s.chosen_info("iaa").name == "iaa-one-epoch"
    assert not banner.isVisibleTo(s)


def test_cancelled_mhr_without_calibrator_is_offered_as_uncalibrated(shipped_dock, qtbot,
                                                                     tmp_path):
    from napari_iaa.widgets._common.model_events import MODEL_EVENTS

    _viewer, widget, reg = shipped_dock
    s = widget.settings
    before = s.chosen_info("mhr").name  # the calibrated LIDC model in use
    new = _new_model(tmp_path / "new", "mhr-cancelled", "mhr-lidc", calibrator=None)
    reg.register(new)
    with qtbot.waitSignal(s.loaded, timeout=60_000):
        MODEL_EVENTS.registered.emit(str(new))
    assert before in {"mhr-lidc", "twintrack-lidc"} and s.chosen_info("mhr").name == before
    text = s.offer_banner.label.text()
    assert "uncalibrated" in text and "the model in use is better" in text
    row = next(r for r in range(s.table.rowCount()) if s.table.item(r, 0).text() == "mhr-cancelled")
    assert s.table.item(row, 5).text() == "uncalibrated"
    from qtpy.QtCore import Qt

    idx = s.combos["mhr"].findText("mhr-cancelled", Qt.MatchContains)
    assert "uncalibrated" in s.combos["mhr"].itemText(idx)
