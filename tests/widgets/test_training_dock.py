"""Training dock: a short run completes and registers a model; cancel; errors; stalls."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

pytestmark = pytest.mark.gui


@pytest.fixture
def dock(make_napari_viewer, qtbot, monkeypatch, tmp_path):
    from napari_iaa.widgets._common import model_events
    from napari_iaa.widgets.training import TrainingWidget

    # a private registry and user folder: nothing leaks into the real cache
    monkeypatch.setenv("NAPARI_IAA_MODELS", str(tmp_path / "user-models"))
    monkeypatch.setattr(model_events, "_SHARED_REGISTRY", None)
    viewer = make_napari_viewer()
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Training")
    return viewer, widget


def _settings(widget, data: Path, out: Path, **kw) -> None:
    values = dict(data=data, task="iaa", backbone="test_resnet", epochs=1, batch_size=4,
                  size=32, device="cpu", out=out, name="dock-iaa", lr=1e-3)
    values.update(kw)
    widget.set_values(**values)


def test_form_shows_the_config_defaults(dock):
    """The form is FitConfig's fields: its defaults, per task, with the help as tooltips."""
    from training.config import config_fields, task_defaults

    _viewer, widget = dock
    form = widget.form
    for choice in ("mhr", "quality", "iaa"):
        form.set_value("size", 48)
        form.set_value("task", choice)
        d = task_defaults(form.value("task").split("+")[0])
        assert {k: form.value(k) for k in ("backbone", "size", "epochs", "batch_size", "lr")} == {
            k: d[k] for k in ("backbone", "size", "epochs", "batch_size", "lr")}
    assert form.widgets["backbone"].native.isEditable()
    assert form.widgets["lr"].tooltip == config_fields()["lr"].metadata["help"]
    assert form.value("max_cases") is None and form.value("models") == []
    # rows follow the task: the base model only for calibrate, the diagnosis column for
    # iaa+diagnosis
    form.set_value("task", "calibrate")
    assert form.widgets["models"].enabled and not form.widgets["diagnosis"].enabled
    form.set_value("task", "iaa+diagnosis")
    assert form.widgets["diagnosis"].enabled and not form.widgets["models"].enabled
    form.set_value("task", "iaa")
    assert not form.widgets["diagnosis"].enabled


def test_settings_become_a_fit_config(dock, tmp_path):
    from napari_iaa.widgets.training.run import make_config

    _viewer, widget = dock
    _settings(widget, tmp_path, tmp_path / "out", task="iaa+diagnosis", max_cases=12)
    cfg = make_config(widget.values())
    assert (cfg.task, cfg.diagnosis, cfg.size, cfg.max_cases, cfg.backbone) == (
        "iaa", "benign_malignant", 32, 12, "test_resnet")
    _settings(widget, tmp_path, tmp_path / "out", task="calibrate", models=[str(tmp_path / "m.json")])
    cfg = make_config(widget.values())
    assert cfg.task == "calibrate" and cfg.models == [str(tmp_path / "m.json")]
    assert cfg.diagnosis is None


def test_short_run_completes_and_registers(dock, qtbot, synthetic_root, tmp_path, capsys,
                                           stall_meter):
    from napari_iaa.widgets._common.model_events import shared_registry
    from napari_iaa.widgets.predictions.models_tab import ModelSettingsWidget

    _viewer, widget = dock
    settings = ModelSettingsWidget()  # e.g. the predictions dock's settings
    qtbot.addWidget(settings)  # deleted after the test: no scans in later tests
    _settings(widget, synthetic_root, tmp_path / "out")
    with qtbot.waitSignal(widget.run_finished, timeout=300_000) as sig:
        stall = stall_meter(widget.start, lambda: not widget.running, interval_ms=5,
                            timeout_ms=300_000)
    out = sig.args[0]
    assert out["status"] == "done", out
    ckpt = Path(out["checkpoint"])
    assert ckpt.is_file() and ckpt.with_suffix(".safetensors").is_file()
    assert out["registered"] is True
    assert ckpt.resolve() in {e.path.resolve() for e in shared_registry().list()}
    # usable for predictions at once: the settings list it and OFFER it (never chosen
    # silently: a short run must not replace a better model without the user's yes)
    qtbot.waitUntil(lambda: not settings.loading
                    and any(m.path.resolve() == ckpt.resolve() for m in settings.models),
                    timeout=60_000)
    chosen = settings.selected_path("iaa")
    assert chosen is None or chosen.resolve() != ckpt.resolve()
    assert settings.offer_banner.path is not None
    assert settings.offer_banner.path.resolve() == ckpt.resolve()
    assert out["metrics"] and "trained" in widget.result_label.text()
    assert widget.curves.loss_x, "the live plot got the step losses"
    assert all(math.isfinite(v) for v in widget.curves.loss_y)
    assert widget.progress.value() == widget.progress.maximum()
    with capsys.disabled():
        print(f"\n[stall] training dock, 1 epoch: longest event-loop stall {stall:.1f} ms")


def test_cancel_stops_at_next_step(dock, qtbot, synthetic_root, tmp_path):
    _viewer, widget = dock
    _settings(widget, synthetic_root, tmp_path / "out", epochs=200, batch_size=2, name="cancelled")
    with qtbot.waitSignal(widget.run_finished, timeout=300_000) as sig:
        widget.start()
        qtbot.waitUntil(lambda: len(widget.curves.loss_x) >= 1, timeout=300_000)
        widget.cancel()
    out = sig.args[0]
    assert out["status"] == "cancelled"
    assert len(widget.curves.loss_x) < 200 * 2  # far from the whole run
    assert not widget.running and widget.start_button.isEnabled()


def test_bad_settings_are_notifications(dock, error_log, tmp_path):
    _viewer, widget = dock
    _settings(widget, tmp_path / "missing", tmp_path / "out")
    widget.start()
    assert not widget.running
    assert any("not found" in m for m in error_log)
    _settings(widget, tmp_path, tmp_path / "out", backbone="no_such_net_xyz")
    widget.start()
    assert not widget.running
    assert any("no_such_net_xyz" in m for m in error_log)


def test_cases_row_reads_all_or_a_number(dock, error_log, synthetic_root, tmp_path):
    """'cases' shows "all" for every case (max_cases None); a typed number limits them."""
    _viewer, widget = dock
    row = widget.form.widgets["max_cases"].native
    assert row.currentText() == "all" and widget.values()["max_cases"] is None
    widget.set_values(max_cases=12)
    assert row.currentText() == "12" and widget.values()["max_cases"] == 12
    _settings(widget, synthetic_root, tmp_path / "out")
    row.setCurrentText("a dozen")
    widget.start()
    assert not widget.running
    assert any("a dozen" in m for m in error_log)


def test_failing_fit_is_a_notification(dock, qtbot, tmp_path, error_log):
    _viewer, widget = dock
    empty = tmp_path / "empty-dataset"
    empty.mkdir()
    _settings(widget, empty, tmp_path / "out")
    with qtbot.waitSignal(widget.run_finished, timeout=120_000) as sig:
        widget.start()
    assert sig.args[0]["status"] == "error"
    assert any("training failed" in m for m in error_log)


@pytest.mark.slow
def test_every_task_trains_from_the_dock(dock, qtbot, synthetic_root, tmp_path):
    """mhr, calibrate (on that mhr model), quality and iaa+diagnosis all run and register."""
    from napari_iaa.models import read_checkpoint_card

    _viewer, widget = dock
    done = {}
    for task in ("mhr", "calibrate", "quality", "iaa+diagnosis"):
        extra = {"models": [done["mhr"]]} if task == "calibrate" else {}
        _settings(widget, synthetic_root, tmp_path / "out", task=task,
                  name=f"dock-{task.replace('+', '-')}", **extra)
        with qtbot.waitSignal(widget.run_finished, timeout=300_000) as sig:
            widget.start()
        out = sig.args[0]
        assert out["status"] == "done", (task, out)
        done[task] = out["checkpoint"]
        card = read_checkpoint_card(out["checkpoint"])[0]
        assert card.task == {"calibrate": "mhr", "iaa+diagnosis": "iaa"}.get(task, task)
    assert read_checkpoint_card(done["calibrate"])[0].calibrator is not None
    assert read_checkpoint_card(done["iaa+diagnosis"])[0].classes


def test_progress_updates_are_coalesced(dock, qtbot):
    """Per-step events only note the state; one timer tick applies the latest."""
    _viewer, widget = dock
    widget.progress.setRange(0, 1)
    widget.progress.setValue(0)
    from napari_iaa.widgets._common import Progress
    from napari_iaa.widgets.training.events import StepDone

    for done in range(1, 51):
        widget._on_message(Progress(done, 100))
    assert widget.progress.maximum() == 1 and widget.progress.value() == 0  # nothing yet
    qtbot.waitUntil(lambda: widget.progress.value() == 50, timeout=2000)
    assert widget.progress.maximum() == 100
    widget.curves.add_loss(0.1, 1.0)
    widget._on_message(StepDone(epoch=0, step=4, loss=0.5, global_step=5, total_steps=10,
                                steps_per_epoch=10))
    qtbot.waitUntil(lambda: "step 5/10" in widget.progress.format(), timeout=2000)


def test_backbone_check():
    from napari_iaa.widgets.training.run import backbone_problem

    assert backbone_problem("resnet18") is None
    assert "no_such_net_xyz" in backbone_problem("no_such_net_xyz")
