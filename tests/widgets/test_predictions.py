"""Predictions dock: layers, tables, triage, notifications, event-loop stalls."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

pytestmark = pytest.mark.gui



@pytest.fixture
def dock(make_napari_viewer, qtbot, tiny_models, synthetic_root):
    """A viewer with a case as plain layers (no review dock) and the predictions dock."""
    from napari_iaa.data import open_dataset
    from napari_iaa.models import ModelRegistry
    from napari_iaa.widgets.predictions import PredictionsWidget
    from napari_iaa.widgets.predictions.models_tab import ModelSettingsWidget

    viewer = make_napari_viewer()
    ds = open_dataset(synthetic_root)
    case = ds.load(ds.ids[0])
    viewer.add_image(case.image, name=case.case_id, rgb=case.image.ndim == 3)
    for mid in case.mask_ids:
        viewer.add_labels(case.masks[mid].astype(np.uint8), name=mid)
    reg = ModelRegistry(paths=[tiny_models["iaa"].parent], include_shipped=False,
                        include_user=False)
    settings = ModelSettingsWidget(registry=reg)
    widget = PredictionsWidget(viewer, settings=settings, auto=False)
    viewer.window.add_dock_widget(widget, name="Predictions")
    viewer.layers.selection.active = viewer.layers[case.case_id]
    # listed in a worker, then matched to the open case
    qtbot.waitUntil(lambda: not settings.loading and settings.matching.domain is not None,
                    timeout=60_000)
    return viewer, widget, case


def test_settings_list_cards_and_choose_one_per_task(dock, tiny_models):
    _viewer, widget, _case = dock
    s = widget.settings
    assert {m.task for m in s.models} == {"iaa", "mhr", "quality"}
    assert s.table.rowCount() == 3
    assert {t: Path(p).resolve() for t, p in s.selected().items()} == {
        t: p.resolve() for t, p in tiny_models.items()}
    assert "mae=0.1" in s.table.item(0, 4).text()
    assert s.table.item(0, 2).text().startswith("unknown")  # tiny cards record no domain
    assert s.device() == "auto" and s.detected_label.text()
    s.combos["mhr"].setCurrentIndex(0)  # (none)
    assert "mhr" not in s.selected()


def test_case_predictions_appear_as_layers_and_table(dock, qtbot, capsys, stall_meter):
    from napari_iaa.agreement import iaa, leave_one_out_dice
    from napari_iaa.widgets.predictions import LAYER_CAL, LAYER_DIFF, LAYER_RAW
    from napari_iaa.widgets.predictions.events import LAYER_UNCAL

    viewer, widget, case = dock
    tab = widget.case_tab
    with qtbot.waitSignal(widget.case_predicted, timeout=120_000) as sig:
        stall = stall_meter(widget.predict_current, lambda: not tab.job.running)
    pred = sig.args[0]
    for name in (LAYER_RAW, LAYER_UNCAL, LAYER_DIFF):
        assert name in viewer.layers
        assert viewer.layers[name].data.shape == case.shape[:2]
    # the tiny MHR model has no calibrator: never shown as a calibrated MHR
    assert LAYER_CAL not in viewer.layers and viewer.layers[LAYER_UNCAL].visible
    assert viewer.layers[LAYER_UNCAL].metadata["napari_iaa"] == {
        "role": "prediction", "model": "tiny-mhr", "calibrated": False}
    assert "tiny-mhr · uncalibrated" in tab.mhr_model_label.text()
    assert "tiny-iaa" in tab.pred_iaa_label.text() and "uncalibrated" in tab.ece_label.text()
    assert set(pred.reliability) == {"uncalibrated"}
    assert widget.case_tab.quality.table.item(0, 4).text() == "tiny-quality"
    diff = viewer.layers[LAYER_DIFF].data
    assert np.allclose(diff, pred.mhr_calibrated - case.stack().mean(0), atol=1e-5)
    assert float(tab.emp_iaa_label.text().split()[0]) == pytest.approx(iaa(case.stack()), abs=1e-3)
    assert math.isfinite(float(tab.pred_iaa_label.text().split()[0]))
    rows = widget.quality_rows()
    assert set(rows) == set(case.mask_ids)
    loo = np.asarray(leave_one_out_dice(case.stack()), float).ravel()
    for mid, expected in zip(case.mask_ids, loo):
        predicted, actual = rows[mid]
        assert math.isfinite(predicted)
        assert actual == pytest.approx(expected, abs=1e-6)
    assert pred.ece and pred.reliability  # the reliability plot has data
    # again, now that the layers exist (the first run creates them: GL set-up in napari)
    with qtbot.waitSignal(widget.case_predicted, timeout=120_000):
        warm = stall_meter(widget.predict_current, lambda: not widget.busy)
    with capsys.disabled():
        print(f"\n[stall] predictions dock, one case: longest event-loop stall {stall:.1f} ms "
              f"(first run, creates 3 layers), {warm:.1f} ms (second run)")


def test_quality_refreshes_after_edit_and_any_labels_layer(dock, qtbot):
    viewer, widget, case = dock
    with qtbot.waitSignal(widget.case_predicted, timeout=120_000):
        widget.predict_current()
    widget.case_tab.auto_check.setChecked(True)
    layer = viewer.layers[case.mask_ids[0]]
    before = widget.quality_rows()[case.mask_ids[0]][1]
    with qtbot.waitSignal(widget.quality_scored, timeout=60_000):
        data = layer.data.copy()
        data[: data.shape[0] // 2] = 0  # erase the top half: leave-one-out Dice drops
        layer.data = data
    after = widget.quality_rows()[case.mask_ids[0]][1]
    assert after < before
    seg = viewer.add_labels(case.masks[case.mask_ids[1]].astype(np.uint8), name="model seg")
    widget.case_tab.quality.labels_combo.setCurrentText("model seg")
    with qtbot.waitSignal(widget.quality_scored, timeout=60_000,
                          check_params_cb=lambda name, _q: name == seg.name):
        widget.score_selected_layer()
    assert "model seg" in widget.quality_rows()


def test_refresh_when_case_changes(dock, qtbot, synthetic_root):
    from napari_iaa.data import open_dataset

    viewer, widget, _case = dock
    widget.case_tab.auto_check.setChecked(True)
    ds = open_dataset(synthetic_root)
    other = ds.load(ds.ids[1])
    with qtbot.waitSignal(widget.case_predicted, timeout=120_000) as sig:
        for layer in list(viewer.layers):
            viewer.layers.remove(layer)
        viewer.add_image(other.image, name=other.case_id, rgb=other.image.ndim == 3)
        for mid in other.mask_ids:
            viewer.add_labels(other.masks[mid].astype(np.uint8), name=mid)
    assert sig.args[0].case_id == other.case_id


def test_triage_sorted_exported_and_cancel(dock, qtbot, synthetic_root, tmp_path, capsys,
                                           stall_meter):
    import pandas as pd

    from napari_iaa.data import open_dataset

    _viewer, widget, _case = dock
    tab = widget.triage_tab
    n = len(open_dataset(synthetic_root).ids)
    with qtbot.waitSignal(widget.triage_finished, timeout=120_000) as sig:
        stall = stall_meter(lambda: widget.start_triage(synthetic_root, batch_size=3),
                            lambda: not tab.job.running)
    df = sig.args[0]
    assert len(df) == n == tab.triage_table.rowCount()
    vals = [tab.triage_table.item(r, 1).value for r in range(n)]
    assert vals == sorted(vals)  # most ambiguous (lowest predicted IAA) first
    out = widget.export_triage(tmp_path / "triage.csv")
    back = pd.read_csv(out)
    assert list(back["predicted_iaa"]) == pytest.approx(sorted(back["predicted_iaa"]))
    assert set(back["case_id"]) == set(open_dataset(synthetic_root).ids)
    with capsys.disabled():
        print(f"\n[stall] triage of {n} images: longest event-loop stall {stall:.1f} ms")
    # cancel: stop requested before the first batch -> fewer rows, no crash
    with qtbot.waitSignal(widget.triage_finished, timeout=120_000) as sig:
        widget.start_triage(synthetic_root, batch_size=1)
        widget.cancel_triage()
    assert len(sig.args[0]) < n


def test_missing_model_is_a_notification(dock, qtbot, tiny_models, tmp_path, error_log):
    import shutil

    _viewer, widget, _case = dock
    # copy the IAA model to a folder called "gone", choose it, then delete its weights
    gone = tmp_path / "gone"
    gone.mkdir()
    for suffix in (".json", ".safetensors"):
        shutil.copy(tiny_models["iaa"].with_suffix(suffix), gone)
    widget.settings.add_path(gone / "tiny-iaa.json")
    assert widget.settings.selected_path("iaa").parent == gone
    (gone / "tiny-iaa.safetensors").unlink()
    with qtbot.waitSignal(widget.failed, timeout=60_000):
        widget.predict_current()
    assert any("gone" in m for m in error_log)
    qtbot.waitUntil(lambda: not widget.case_tab.job.running)
    assert widget.case_tab.predict_button.isEnabled()


def test_mismatched_model_is_a_notification(dock, qtbot, tiny_models, tmp_path, error_log):
    import shutil

    _viewer, widget, _case = dock
    # a card that names another backbone than its weights were made for
    shutil.copy(tiny_models["quality"].with_suffix(".safetensors"), tmp_path / "bad.safetensors")
    card = json.loads(tiny_models["quality"].with_suffix(".json").read_text())
    card.update(name="bad", backbone="resnet10t", weights_sha256=None, weights="bad.safetensors")
    (tmp_path / "bad.json").write_text(json.dumps(card))
    widget.settings.add_path(tmp_path / "bad.json")
    assert widget.settings.selected_path("quality").name == "bad.json"
    with qtbot.waitSignal(widget.failed, timeout=60_000):
        widget.predict_current()
    assert any("bad" in m for m in error_log)


def test_no_model_chosen_is_a_notification(dock, error_log):
    _viewer, widget, _case = dock
    for cb in widget.settings.combos.values():
        cb.setCurrentIndex(0)
    widget.predict_current()
    assert not widget.case_tab.job.running
    assert any("no model chosen" in m for m in error_log)


def test_uses_the_review_dock_case(review, qtbot, synthetic_root, tiny_models):
    from napari_iaa.models import ModelRegistry
    from napari_iaa.widgets.predictions import LAYER_CAL, PredictionsWidget
    from napari_iaa.widgets.predictions.events import LAYER_UNCAL
    from napari_iaa.widgets.predictions.models_tab import ModelSettingsWidget

    viewer, rw = review
    reg = ModelRegistry(paths=[tiny_models["iaa"].parent], include_shipped=False,
                        include_user=False)
    widget = PredictionsWidget(viewer, settings=ModelSettingsWidget(registry=reg), auto=True)
    viewer.window.add_dock_widget(widget, name="Predictions")
    with qtbot.waitSignal(widget.case_predicted, timeout=120_000) as sig:
        assert rw.open_dataset(synthetic_root)
    assert widget.review is rw
    pred = sig.args[0]
    assert pred.case_id == rw.case_id
    assert set(pred.mask_ids) == set(rw.annotator_layers())
    assert LAYER_UNCAL in viewer.layers and LAYER_CAL not in viewer.layers


def test_shipped_models_on_a_sample_case(make_napari_viewer, qtbot):
    """With the models shipped in sample_data/models (skipped until they are there)."""
    from napari_iaa.data import open_dataset, sample_data_path
    from napari_iaa.models import ModelRegistry
    from napari_iaa.widgets.predictions import LAYER_CAL, PredictionsWidget
    from napari_iaa.widgets.predictions.models_tab import ModelSettingsWidget

    reg = ModelRegistry(include_user=False)
    shipped = {t: [e for e in reg.by_task(t) if e.source == "shipped"]
               for t in ("iaa", "mhr", "quality")}
    if not all(shipped.values()):
        pytest.skip("no shipped models for every task in sample_data/models")
    data = sample_data_path("synthetic")
    ds = open_dataset(data)
    case = ds.load(ds.ids[0])
    viewer = make_napari_viewer()
    viewer.add_image(case.image, name=case.case_id, rgb=case.image.ndim == 3)
    for mid in case.mask_ids:
        viewer.add_labels(case.masks[mid].astype(np.uint8), name=mid)
    settings = ModelSettingsWidget(registry=reg)
    qtbot.waitUntil(lambda: settings.ready, timeout=60_000)
    for task, entries in shipped.items():
        synth = [e for e in entries if "synth" in e.name] or entries
        settings.select(task, str(synth[0].path))
    widget = PredictionsWidget(viewer, settings=settings, auto=False)
    with qtbot.waitSignal(widget.case_predicted, timeout=120_000) as sig:
        widget.predict_current()
    pred = sig.args[0]
    assert LAYER_CAL in viewer.layers
    assert 0.0 <= pred.predicted_iaa <= 1.0
    assert set(widget.quality_rows()) == set(case.mask_ids)


def test_triage_of_a_plain_image_folder(dock, qtbot, synthetic_root, tmp_path):
    """Images without any masks: predicted IAA for each, empirical IAA empty."""
    import shutil

    _viewer, widget, _case = dock
    images = sorted((synthetic_root / "images").iterdir())[:3]
    folder = tmp_path / "unannotated"
    folder.mkdir()
    for p in images:
        shutil.copy(p, folder / p.name)
    with qtbot.waitSignal(widget.triage_finished, timeout=120_000) as sig:
        widget.start_triage(folder, batch_size=2)
    df = sig.args[0]
    assert sorted(df["case_id"]) == sorted(p.stem for p in images)
    assert df["predicted_iaa"].notna().all()
    assert df["empirical_iaa"].isna().all() and (df["n_masks"] == 0).all()


def test_triage_fills_the_review_data_set_table(review, qtbot, synthetic_root, tiny_models):
    from napari_iaa.models import ModelRegistry
    from napari_iaa.widgets.predictions import PredictionsWidget
    from napari_iaa.widgets.predictions.models_tab import ModelSettingsWidget

    viewer, rw = review
    assert rw.open_dataset(synthetic_root)
    qtbot.waitUntil(lambda: not rw.dataset_panel.busy, timeout=120_000)
    reg = ModelRegistry(paths=[tiny_models["iaa"].parent], include_shipped=False,
                        include_user=False)
    widget = PredictionsWidget(viewer, settings=ModelSettingsWidget(registry=reg), auto=False)
    qtbot.waitUntil(lambda: widget.settings.ready, timeout=60_000)
    with qtbot.waitSignal(widget.triage_finished, timeout=120_000) as sig:
        widget.start_triage(synthetic_root)
    frame = rw.dataset_panel.model.frame()
    assert "predicted_IAA" in frame.columns
    expected = dict(zip(sig.args[0]["case_id"], sig.args[0]["predicted_iaa"]))
    for cid, v in zip(frame["case_id"], frame["predicted_IAA"]):
        assert v == pytest.approx(expected[cid])


def test_dock_reliability_step_matches_predict_case(tiny_models):
    """The dock's separate reliability step (bool views) equals predict_case's figures."""
    from napari_iaa.data import Case
    from napari_iaa.predict import fill_reliability, load_models, predict_case

    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)
    masks = {f"A{i}": rng.random((70, 90)) < 0.3 + 0.1 * i for i in range(4)}
    case = Case("c", image, masks)
    models = load_models({t: p for t, p in tiny_models.items()}, device="cpu")
    ref = predict_case(case, models)
    mine = predict_case(case, models, with_ece=False)
    assert not mine.reliability and not mine.ece
    fill_reliability(mine, [masks[k].view(np.uint8) for k in case.mask_ids])
    assert set(mine.reliability) == set(ref.reliability) == {"uncalibrated"}  # tiny MHR: no calibrator
    for label in ref.reliability:
        for a, b in zip(ref.reliability[label], mine.reliability[label]):
            np.testing.assert_allclose(a, b, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(mine.ece["per_annotator"], ref.ece["per_annotator"], rtol=1e-9)
    assert mine.ece["mean"] == pytest.approx(ref.ece["mean"], rel=1e-9)
    assert mine.ece["pooled"] == pytest.approx(ref.ece["pooled"], rel=1e-9)


def test_block_mean_and_display_maps():
    from napari_iaa.agreement import block_mean
    from napari_iaa.predict import CasePrediction
    from napari_iaa.widgets.predictions import LAYER_DIFF, LAYER_RAW
    from napari_iaa.widgets.predictions.map_layers import display_maps

    a = np.arange(7 * 5, dtype=np.float32).reshape(7, 5)
    b = block_mean(a, 3)
    assert b.shape == (3, 2)
    assert b[0, 0] == pytest.approx(a[:3, :3].mean())
    assert b[2, 1] == pytest.approx(a[6:, 3:].mean())  # edge block: its valid pixels only
    pred = CasePrediction("c", mhr_raw=a, mhr_calibrated=a, mhr_empirical=np.zeros_like(a))
    small = {m.name: (m.data, m.k) for m in display_maps(pred, 10_000)}
    assert small[LAYER_RAW][1] == 1 and small[LAYER_RAW][0] is a
    np.testing.assert_array_equal(small[LAYER_DIFF][0], a)
    big = {m.name: (m.data, m.k) for m in display_maps(pred, 5)}
    assert big[LAYER_RAW][1] == 3 and big[LAYER_RAW][0].shape == (3, 2)


def test_large_maps_are_shown_as_block_means_and_updated_in_place(dock, qtbot):
    from napari_iaa.widgets.predictions import LAYER_DIFF, LAYER_RAW
    from napari_iaa.widgets.predictions.events import LAYER_UNCAL

    viewer, widget, case = dock
    h, w = case.shape[:2]
    widget.case_tab.map_display_max_pixels = (h * w) // 16 + 1  # k = 4
    with qtbot.waitSignal(widget.case_predicted, timeout=120_000) as sig:
        widget.predict_current()
    pred = sig.args[0]
    assert pred.mhr_calibrated.shape == (h, w)  # the prediction keeps full resolution
    layers = {name: viewer.layers[name] for name in (LAYER_RAW, LAYER_UNCAL, LAYER_DIFF)}
    for layer in layers.values():
        assert layer.data.shape == (-(-h // 4), -(-w // 4))
        np.testing.assert_allclose(layer.scale, (4.0, 4.0))
        np.testing.assert_allclose(layer.translate, (1.5, 1.5))
    np.testing.assert_allclose(layers[LAYER_UNCAL].data[0, 0], pred.mhr_calibrated[:4, :4].mean(), rtol=1e-5)
    # a second prediction updates the same layer objects (no remove / add)
    n_layers = len(viewer.layers)
    widget.case_tab.map_display_max_pixels = 1 << 30
    with qtbot.waitSignal(widget.case_predicted, timeout=120_000):
        widget.predict_current()
    assert len(viewer.layers) == n_layers
    for name, layer in layers.items():
        assert viewer.layers[name] is layer
        assert layer.data.shape == (h, w)
        np.testing.assert_allclose(layer.scale, (1.0, 1.0))
    assert tuple(layers[LAYER_DIFF].contrast_limits) == (-1.0, 1.0)


def test_first_prediction_adds_each_layer_and_the_legend_on_turns_of_their_own(dock, qtbot):
    """Each napari layer added costs the event loop 50-80 ms on a software-OpenGL display,
    and the difference map's colour bar another 40 ms: the dock takes them one per
    event-loop turn, so that no single turn adds them up, and the legend ends shown. Each
    layer comes with its tag and visibility (a later change repaints the layer list)."""
    from qtpy.QtCore import QTimer

    from napari_iaa.widgets._common.compat import HAS_LAYER_COLORBAR
    from napari_iaa.widgets.predictions import LAYER_DIFF, LAYER_RAW
    from napari_iaa.widgets.predictions.events import LAYER_UNCAL

    if not HAS_LAYER_COLORBAR:
        pytest.skip("napari < 0.9: image layers have no colour bar")
    viewer, widget, _case = dock
    turns = [0]
    ticker = QTimer()
    ticker.setInterval(0)
    ticker.timeout.connect(lambda: turns.__setitem__(0, turns[0] + 1))
    seen: list[tuple[str, int]] = []
    born: dict[str, tuple] = {}

    def inserted(event):
        seen.append((f"added {event.value.name}", turns[0]))
        born[event.value.name] = (event.value.metadata.get("napari_iaa", {}).get("role"),
                                  event.value.visible)
        if event.value.name == LAYER_DIFF:
            event.value.colorbar.events.visible.connect(
                lambda shown: seen.append((f"legend {shown}", turns[0])))

    viewer.layers.events.inserted.connect(inserted)
    ticker.start()
    try:
        with qtbot.waitSignal(widget.case_predicted, timeout=120_000):
            widget.predict_current()
        qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    finally:
        ticker.stop()
    assert [w for w, _t in seen][-2:] == [f"added {LAYER_DIFF}", "legend True"]
    assert len(seen) == 4  # three map layers, then the legend
    at = [t for _w, t in seen]
    assert len(set(at)) == len(at), seen  # no two in one turn of the event loop
    assert viewer.layers[LAYER_DIFF].colorbar.visible
    assert born == {LAYER_RAW: ("prediction", False), LAYER_UNCAL: ("prediction", True),
                    LAYER_DIFF: ("prediction", False)}


def test_a_later_prediction_updates_the_map_layers_in_place(dock, qtbot):
    """A second prediction of the open case changes the maps' data only: the same layer
    objects, none added or removed, no other change of them (each repaints napari's layer
    list), the selection kept; and its reliability diagram comes with it (drawn in the
    prediction's worker: no render thread runs beside the layers' repaints)."""
    from napari_iaa.widgets.predictions import LAYER_DIFF, LAYER_RAW
    from napari_iaa.widgets.predictions.events import LAYER_UNCAL

    viewer, widget, _case = dock
    tab = widget.case_tab
    with qtbot.waitSignal(widget.case_predicted, timeout=120_000):
        widget.predict_current()
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    names = (LAYER_RAW, LAYER_UNCAL, LAYER_DIFF)
    layers = {n: viewer.layers[n] for n in names}
    tags = {n: dict(layer.metadata["napari_iaa"]) for n, layer in layers.items()}
    order = [layer.name for layer in viewer.layers]
    active, selected = viewer.layers.selection.active, set(viewer.layers.selection)
    seen: list[tuple[str, str]] = []
    viewer.layers.events.inserted.connect(lambda e: seen.append(("inserted", e.value.name)))
    viewer.layers.events.removed.connect(lambda e: seen.append(("removed", e.value.name)))
    for n, layer in layers.items():
        layer.events.connect(lambda e, n=n: seen.append((n, e.type)))
    at_signal: dict = {}
    widget.case_predicted.connect(lambda _p: at_signal.update(
        busy=tab.reliability.busy, image=tab.reliability.image))
    with qtbot.waitSignal(widget.case_predicted, timeout=120_000):
        widget.predict_current()
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    assert [layer.name for layer in viewer.layers] == order
    assert all(viewer.layers[n] is layer for n, layer in layers.items())
    changed = {t for _n, t in seen} & {"inserted", "removed", "metadata", "name", "colormap",
                                       "contrast_limits", "visible", "opacity", "blending",
                                       "scale", "translate"}
    assert not changed, seen
    assert any(t == "data" for _n, t in seen)  # the maps were updated
    assert {n: layer.metadata["napari_iaa"] for n, layer in layers.items()} == tags
    assert viewer.layers.selection.active is active and set(viewer.layers.selection) == selected
    # the diagram was shown with the prediction, and no render replaced it afterwards
    assert at_signal["busy"] is False and at_signal["image"] is not None
    assert tab.reliability.image is at_signal["image"]


def test_the_case_progress_is_painted_with_the_window(make_napari_viewer, qtbot):
    """A progress step (the last one comes as the prediction ends, beside the layers'
    updates) is painted by the window's next repaint, never at once: QProgressBar.setValue
    repaints on the spot, on a software-GL display the whole window's composition."""
    from qtpy.QtCore import QEvent, QObject

    from napari_iaa.models import ModelRegistry
    from napari_iaa.widgets._common import Progress
    from napari_iaa.widgets.predictions import PredictionsWidget
    from napari_iaa.widgets.predictions.models_tab import ModelSettingsWidget

    viewer = make_napari_viewer(show=True)
    reg = ModelRegistry(paths=[], include_shipped=False, include_user=False)
    widget = PredictionsWidget(viewer, settings=ModelSettingsWidget(registry=reg), auto=False)
    viewer.window.add_dock_widget(widget, name="Predictions")
    bar = widget.case_tab.case_progress
    paints: list[bool] = []
    inside = [False]

    class Paints(QObject):
        def eventFilter(self, obj, event):  # Qt API name
            if obj is bar and event.type() == QEvent.Type.Paint:
                paints.append(inside[0])
            return False

    spy = Paints()
    bar.installEventFilter(spy)
    bar.update()
    qtbot.waitUntil(lambda: bool(paints), timeout=10_000)  # the window is shown and painted
    paints.clear()
    for step in (1, 2, 3, 4):
        widget.case_tab._progress(Progress(step, 4, "predicting"))
        inside[0] = True
        widget.case_tab._apply_progress()
        inside[0] = False
        assert True not in paints, step  # nothing painted during the call
        qtbot.waitUntil(lambda: bool(paints), timeout=5_000)  # painted with the window
        assert bar.value() == step and bar.text() == f"predicting ({step}/4)"
        paints.clear()


def test_no_mask_copies_on_the_gui_thread(review, qtbot, synthetic_root, tiny_models):
    """The dock hands the worker views of the live masks; an edit meanwhile re-runs it."""
    from napari_iaa.models import ModelRegistry
    from napari_iaa.widgets.predictions import PredictionsWidget
    from napari_iaa.widgets.predictions.models_tab import ModelSettingsWidget

    viewer, rw = review
    assert rw.open_dataset(synthetic_root)
    qtbot.waitUntil(lambda: rw.live is not None, timeout=10_000)
    case = rw.current_case(copy=False)  # what the dock reads
    for mid, m in case.masks.items():
        assert np.shares_memory(m, rw.live.mirrors[mid]) and not m.flags.writeable
    copied = rw.current_case()  # the default still copies
    assert not any(np.shares_memory(m, rw.live.mirrors[k]) for k, m in copied.masks.items())
    reg = ModelRegistry(paths=[tiny_models["iaa"].parent], include_shipped=False,
                        include_user=False)
    widget = PredictionsWidget(viewer, settings=ModelSettingsWidget(registry=reg), auto=False)
    qtbot.waitUntil(lambda: widget.settings.ready, timeout=60_000)
    viewer.window.add_dock_widget(widget, name="Predictions")
    with qtbot.waitSignal(widget.case_predicted, timeout=120_000):
        widget.predict_current()
    tab = widget.case_tab
    tab.auto_check.setChecked(True)
    runs = []
    widget.case_predicted.connect(runs.append)
    widget.predict_current()
    assert tab.job.running
    mid, layer = next(iter(rw.annotator_layers().items()))
    layer.paint((5, 5), 1)  # painted while the worker reads the masks
    assert tab._pending_case
    qtbot.waitUntil(lambda: len(runs) >= 2, timeout=120_000)  # the edit got its own run
    assert tab.last_prediction.mask_ids == rw.live.ids


# ---------------------------------------------------------------------------- volumes
SPACING = (2.5, 0.7, 0.7)


def _volume(seed: int = 0):
    """A (7, 40, 36) uint8 volume and three annotators' masks on slices 2..4 (5)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (7, 40, 36), dtype=np.uint8)
    masks = {}
    for k in range(3):
        m = np.zeros(img.shape, bool)
        m[2:5, 10 + k:22, 8:20 - k] = True
        if k == 0:
            m[5, 12:16, 10:14] = True
        masks[f"R{k}"] = m
    return img, masks


@pytest.fixture
def volume_dock(make_napari_viewer, qtbot, tiny_models):
    """A viewer with a volume as plain 3D layers (scale = its spacing) and the dock."""
    from napari_iaa.models import ModelRegistry
    from napari_iaa.widgets.predictions import PredictionsWidget
    from napari_iaa.widgets.predictions.models_tab import ModelSettingsWidget

    viewer = make_napari_viewer()
    img, masks = _volume()
    viewer.add_image(img, name="nodule", scale=SPACING)
    for mid, m in masks.items():
        viewer.add_labels(m.astype(np.uint8), name=mid, scale=SPACING)
    reg = ModelRegistry(paths=[tiny_models["iaa"].parent], include_shipped=False,
                        include_user=False)
    widget = PredictionsWidget(viewer, settings=ModelSettingsWidget(registry=reg), auto=False)
    qtbot.waitUntil(lambda: widget.settings.ready, timeout=60_000)
    viewer.window.add_dock_widget(widget, name="Predictions")
    viewer.layers.selection.active = viewer.layers["nodule"]
    return viewer, widget, img, masks


def test_volume_gives_3d_layers_with_spacing_and_quality_per_3d_mask(volume_dock, qtbot):
    from napari_iaa.agreement import leave_one_out_dice
    from napari_iaa.data import Case
    from napari_iaa.predict import predict_case
    from napari_iaa.widgets.predictions import LAYER_DIFF, LAYER_RAW
    from napari_iaa.widgets.predictions.events import LAYER_UNCAL

    viewer, widget, img, masks = volume_dock
    tab = widget.case_tab
    tab.batch_size = 3
    case = widget.current_case()
    assert case.is_volume and case.spacing == SPACING and set(case.mask_ids) == set(masks)
    seen = []
    show = tab._progress
    tab._progress = lambda msg: (seen.append((msg.done, msg.total, msg.text)), show(msg))
    with qtbot.waitSignal(widget.case_predicted, timeout=120_000) as sig:
        widget.predict_current()
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    pred = sig.args[0]
    for name in (LAYER_RAW, LAYER_UNCAL, LAYER_DIFF):
        layer = viewer.layers[name]
        assert layer.ndim == 3 and layer.data.shape == img.shape
        np.testing.assert_allclose(layer.scale, SPACING)
    # the slice loop reported slices done / total after every batch of 3
    slices = [(d, t) for d, t, text in seen if "slices" in text]
    assert slices and slices[0][0] == 3 and slices[-1][0] == slices[-1][1]
    assert "MHR" in next(text for _d, _t, text in seen if "slices" in text)
    # the table: one row per 3D mask, predicted = the documented aggregation
    models = widget.models.get(widget.settings.model_key())
    ref = predict_case(Case("nodule", img, masks, spacing=SPACING), models, batch_size=3)
    rows = widget.quality_rows()
    loo = np.asarray(leave_one_out_dice(np.stack(list(masks.values()))), float).ravel()
    assert set(rows) == set(masks)
    for (mid, (predicted, actual)), expected in zip(sorted(rows.items()), loo):
        assert predicted == pytest.approx(ref.quality[mid], abs=1e-5)
        assert actual == pytest.approx(expected, abs=1e-6)
    assert pred.predicted_iaa == pytest.approx(ref.predicted_iaa, abs=1e-5)
    assert float(tab.pred_iaa_label.text().split()[0]) == pytest.approx(ref.predicted_iaa, abs=1e-3)
    qtbot.waitUntil(lambda: "volume" in tab.case_label.text(), timeout=10_000)


def test_volume_cancel_stops_between_batches(volume_dock, qtbot):
    import threading

    _viewer, widget, img, _masks = volume_dock
    tab = widget.case_tab
    tab.batch_size = 1
    # the models are matched to the open volume first (a later match may choose others and
    # drop the loaded ones; napari's activity bar processes pending events when it opens)
    qtbot.waitUntil(lambda: widget.settings.matching is not None
                    and widget.settings.matching.domain is not None
                    and not widget.settings.loading, timeout=60_000)
    models = widget.models.get(widget.settings.model_key())
    runs, released = [], threading.Event()
    run = models.mhr._run

    def counted(prepared):
        runs.append(len(prepared[0]))
        if len(runs) == 2:  # hold the second batch until the cancel was asked for
            released.wait(30)
        return run(prepared)

    models.mhr._run = counted
    show = tab._progress

    def progress(msg):
        show(msg)
        if "slices" in msg.text and not released.is_set():
            tab.cancel()
            released.set()

    tab._progress = progress
    results = []
    widget.case_predicted.connect(results.append)
    try:
        with qtbot.waitSignal(tab.cancelled, timeout=120_000):
            widget.predict_current()
    finally:
        del models.mhr._run
    # stopped at the batch under way (the first or the held second), far from the last slice
    assert runs in ([1], [1, 1]) and len(runs) < img.shape[0]
    assert not results and tab.case_progress.format() == "cancelled"
    assert tab.predict_button.isEnabled() and not tab.cancel_button.isEnabled()
