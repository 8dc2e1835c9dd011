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
    assert form.widgets["backbone"].isEditable()
    assert form.widgets["lr"].toolTip() == config_fields()["lr"].metadata["help"]
    assert form.value("max_cases") is None and form.value("models") == []
    # rows follow the task: the base model only for calibrate, the diagnosis column for
    # iaa+diagnosis
    form.set_value("task", "calibrate")
    assert form.widgets["models"].isEnabled() and not form.widgets["diagnosis"].isEnabled()
    form.set_value("task", "iaa+diagnosis")
    assert form.widgets["diagnosis"].isEnabled() and not form.widgets["models"].isEnabled()
    form.set_value("task", "iaa")
    assert not form.widgets["diagnosis"].isEnabled()


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
    row = widget.form.widgets["max_cases"]
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


def test_the_fit_starts_after_napari_adds_its_bar(dock, qtbot, synthetic_root, tmp_path,
                                                   monkeypatch):
    """The click starts no thread; the fit starts once napari's activity bar exists (its
    adding does not compete with the fit's start), runs with the objects older than it
    frozen, and the bar is never Qt's busy animation; the last numbers still arrive."""
    import gc

    from napari_iaa.widgets.training import dock as dock_module

    _viewer, widget = dock
    started: list[object] = []
    real_start, real_fit = dock_module.start_worker, dock_module.run_fit
    frozen: list[int] = []

    def spy_start(job, **kw):
        started.append(kw["activity"].bar)
        return real_start(job, **kw)

    def spy_fit(*args):
        frozen.append(gc.get_freeze_count())
        return real_fit(*args)

    monkeypatch.setattr(dock_module, "start_worker", spy_start)
    monkeypatch.setattr(dock_module, "run_fit", spy_fit)
    _settings(widget, synthetic_root, tmp_path / "out", epochs=2)
    maxima: list[int] = []
    widget.progress.valueChanged.connect(lambda _v: maxima.append(widget.progress.maximum()))
    with qtbot.waitSignal(widget.run_finished, timeout=300_000) as sig:
        widget.start()
        assert started == [] and widget.running  # nothing started in the click
        assert widget.progress.maximum() != 0  # not the busy bar
    out = sig.args[0]
    assert out["status"] == "done", out
    assert len(started) == 1 and started[0] is not None  # napari's bar was there first
    assert frozen and frozen[0] > 0
    assert gc.get_freeze_count() == 0  # given back after the run
    assert 0 not in maxima
    assert widget.progress.value() == widget.progress.maximum() == 1000
    assert widget.progress.format().startswith("done in")
    assert widget.curves.val_x[-1] == 2  # the last epoch's validation point


def test_the_plot_draws_nothing_until_a_run_has_curves(dock, qtbot):
    """Opening the dock and starting a run draw no matplotlib figure (the plot's first
    render imports matplotlib in a thread, which slowed the dock's first paint 5-10 times):
    the plot says what it will show; curves are drawn once they come, and a new run
    clears them without a draw."""
    from napari_iaa.widgets.training.dock import IDLE_PLOT_TEXT, STARTING_PLOT_TEXT

    _viewer, widget = dock
    assert widget.plot.image is None and not widget.plot.busy
    assert widget.plot.text() == IDLE_PLOT_TEXT
    widget.curves.add_loss(0.5, 1.0)
    widget.curves.add_loss(1.0, 0.5)
    widget.plot.submit(*widget.curves.args())
    qtbot.waitUntil(lambda: widget.plot.image is not None and not widget.plot.busy, timeout=30_000)
    assert widget.plot.pixmap() is not None and not widget.plot.pixmap().isNull()
    widget._reset_run()
    assert widget.plot.image is None and not widget.plot.busy
    assert widget.plot.text() == STARTING_PLOT_TEXT


def test_a_run_s_warnings_stay_in_the_dock_while_it_is_on_screen(make_napari_viewer, qtbot,
                                                                  monkeypatch, tmp_path):
    """Each napari notification is an animated pop-up (every frame composes the window
    again): while the dock is on screen, a run's warnings are shown in it (the warning
    label, the log, counted on the bar at the end), with no pop-up; a dock the user
    cannot see gets one notification for them."""
    from napari_iaa.widgets._common import model_events
    from napari_iaa.widgets.training import TrainingWidget
    from napari_iaa.widgets.training import dock as dock_module
    from napari_iaa.widgets.training.events import FitAdvice

    monkeypatch.setenv("NAPARI_IAA_MODELS", str(tmp_path / "user-models"))
    monkeypatch.setattr(model_events, "_SHARED_REGISTRY", None)
    viewer = make_napari_viewer(show=True)
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Training")
    qtbot.waitUntil(widget.on_screen, timeout=10_000)
    shown: list[str] = []
    monkeypatch.setattr(dock_module, "notify_warning", shown.append)
    advice = ("too few steps", "val split too small", "test split too small")
    widget._on_message(FitAdvice(advice))
    widget._on_message(FitAdvice(advice[:1]))  # shown once per run
    assert shown == []  # no pop-up
    assert widget.warning_label.isVisible()
    assert all(m in widget.warning_label.text() for m in advice)
    log = widget.log.toPlainText()
    assert all(log.count(f"warning: {m}") == 1 for m in advice)
    widget._on_returned({"status": "done", "checkpoint": None, "metrics": {}, "result": None})
    assert "3 warnings" in widget.progress.format()
    # the dock out of sight (closed, or behind another dock's tab): one notification
    widget._reset_run()
    widget.parent().hide()
    assert not widget.on_screen()
    widget._on_message(FitAdvice(advice))
    assert len(shown) == 1 and all(m in shown[0] for m in advice)
    assert all(m in widget.warning_label.text() for m in advice)  # there when it is shown


def test_napari_s_bar_reaches_the_end_and_moves_at_most_once_a_second(
        dock, qtbot, synthetic_root, tmp_path, monkeypatch):
    """The dock shows every step itself; napari's activity bar follows the fit at most
    once a second (each of its updates repaints the window) and shows the last value
    before it closes; a step moves napari's bar without painting it at once."""
    from napari_iaa.widgets._common import workers
    from napari_iaa.widgets._common.paint import napari_bar_widget

    _viewer, widget = dock
    made: list = []
    real_init = workers.Activity.__init__

    def spy_init(self, *a, **kw):
        real_init(self, *a, **kw)
        made.append(self)

    monkeypatch.setattr(workers.Activity, "__init__", spy_init)
    ends: list[tuple] = []
    held: list[bool] = []
    real_apply, real_close = workers.Activity._apply, workers.Activity.close

    def spy_apply(self):
        qbar = napari_bar_widget(self.bar) if self.bar is not None else None
        slot = None
        if qbar is not None:
            def slot(_v, q=qbar):
                held.append(q.updatesEnabled())
            qbar.valueChanged.connect(slot)
        real_apply(self)  # napari's update runs processEvents: an update may nest in here
        if slot is not None:
            qbar.valueChanged.disconnect(slot)  # this call's own slot only

    def spy_close(self):
        bar = self.bar
        real_close(self)
        if bar is not None:
            ends.append((bar.n, bar.total))

    monkeypatch.setattr(workers.Activity, "_apply", spy_apply)
    monkeypatch.setattr(workers.Activity, "close", spy_close)
    _settings(widget, synthetic_root, tmp_path / "out", epochs=2)
    with qtbot.waitSignal(widget.run_finished, timeout=300_000) as sig:
        widget.start()
    assert sig.args[0]["status"] == "done"
    (activity,) = made
    assert activity._min == workers.LONG_JOB_INTERVAL_S >= 1.0
    assert ends and ends[-1][0] == ends[-1][1] > 0  # napari's bar at its end when it closed
    assert held and not any(held)  # set with its updates off: painted with the next repaint
    assert widget.progress.value() == widget.progress.maximum()


def test_cancel_ends_napari_s_bar_and_says_so(dock, qtbot, synthetic_root, tmp_path):
    """Cancel still works with the coalesced updates: the fit stops, napari's bar is
    removed, the log and the bar say it was cancelled."""
    from napari.utils import progress

    _viewer, widget = dock
    _settings(widget, synthetic_root, tmp_path / "out", epochs=200, batch_size=2,
              name="cancelled-bar")
    with qtbot.waitSignal(widget.run_finished, timeout=300_000) as sig:
        widget.start()
        qtbot.waitUntil(lambda: len(widget.curves.loss_x) >= 1
                        and any("training" in (p.desc or "") for p in progress._all_instances),
                        timeout=300_000)
        widget.cancel()
    assert sig.args[0]["status"] == "cancelled"
    assert not any("training" in (p.desc or "") for p in progress._all_instances)
    assert widget.progress.format().startswith("cancelled in")
    log = widget.log.toPlainText()
    assert "cancel requested" in log
    assert log.index("cancel requested") < log.rindex("cancelled")


def test_napari_s_bar_only_once_the_dock_is_out_of_sight(make_napari_viewer, qtbot,
                                                        synthetic_root, tmp_path, monkeypatch):
    """On screen the dock's own bar, plot and log show the fit, and napari's activity bar
    (whose creation and updates repaint the window) is not made; hiding the dock (another
    tab, closed into the menu) makes it, showing the fit's progress; cancel ends both."""
    from napari.utils import progress

    from napari_iaa.widgets._common import model_events
    from napari_iaa.widgets.training import TrainingWidget

    monkeypatch.setenv("NAPARI_IAA_MODELS", str(tmp_path / "user-models"))
    monkeypatch.setattr(model_events, "_SHARED_REGISTRY", None)
    viewer = make_napari_viewer(show=True)
    widget = TrainingWidget(viewer)
    dock = viewer.window.add_dock_widget(widget, name="Training")
    qtbot.waitUntil(widget.isVisible, timeout=10_000)

    def training_bars():
        return [p for p in progress._all_instances if "training" in (p.desc or "")]

    _settings(widget, synthetic_root, tmp_path / "out", epochs=200, batch_size=2,
              name="on-screen")
    with qtbot.waitSignal(widget.run_finished, timeout=300_000) as sig:
        widget.start()
        qtbot.waitUntil(lambda: len(widget.curves.loss_x) >= 1, timeout=300_000)
        assert training_bars() == []  # the fit runs; napari's bar was not made
        dock.hide()
        qtbot.waitUntil(lambda: len(training_bars()) == 1 and training_bars()[0].n > 0,
                        timeout=60_000)
        widget.cancel()
    assert sig.args[0]["status"] == "cancelled"
    assert training_bars() == []


def test_the_fit_leaves_a_core_to_the_viewer(monkeypatch, tmp_path):
    """Without a threads setting the dock's fit uses one torch thread fewer than torch's
    default (at least one); a user's setting is kept."""
    import torch

    from napari_iaa.widgets._common import Relay
    from napari_iaa.widgets.training import run
    from training import fitting
    from training.results import FitResult

    seen: list[int | None] = []

    def fake_fit(config, **_kw):
        seen.append(config.threads)
        return FitResult(None, cancelled=True)

    monkeypatch.setattr(fitting, "fit", fake_fit)
    cfg = run.make_config({"task": "iaa", "data": str(tmp_path), "backbone": "test_resnet",
                           "epochs": 1, "batch_size": 2, "size": 32, "device": "cpu",
                           "out": str(tmp_path), "name": "t", "lr": 1e-3})
    import dataclasses
    import threading

    relay, stop = Relay(), threading.Event()
    assert run.run_fit(cfg, relay, stop)["status"] == "cancelled"
    assert run.run_fit(dataclasses.replace(cfg, threads=3), relay, stop)["status"] == "cancelled"
    assert seen == [max(1, torch.get_num_threads() - 1), 3]


def test_older_objects_are_frozen_only_within_the_block(monkeypatch):
    import gc

    from napari_iaa.widgets._common import memory

    monkeypatch.setattr(memory, "_GC_FROZEN", False)
    assert gc.get_freeze_count() == 0
    with memory.older_objects_frozen():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with memory.older_objects_frozen():  # another job meanwhile
            pass
        assert gc.get_freeze_count() >= frozen  # still frozen until the last block ends
        young = [[]]
        young[0].append(young)  # a cycle made within is collected as usual
        del young
        assert gc.collect() > 0
    assert gc.get_freeze_count() == 0
    monkeypatch.setattr(memory, "_GC_FROZEN", True)  # NAPARI_IAA_GC_FREEZE froze for good
    with memory.older_objects_frozen():
        assert gc.get_freeze_count() == 0
