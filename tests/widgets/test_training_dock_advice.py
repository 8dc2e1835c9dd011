"""Training dock: a run too small to learn anything says so, with settings to try, in the
dock (not as a napari pop-up while the dock is on screen)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

pytestmark = pytest.mark.gui


def test_too_few_steps_are_a_warning_in_the_dock(make_napari_viewer, qtbot, monkeypatch,
                                                 synthetic_root, tmp_path):
    from napari.utils.notifications import NotificationSeverity, notification_manager

    from napari_iaa.widgets._common import model_events
    from napari_iaa.widgets.training import TrainingWidget

    monkeypatch.setenv("NAPARI_IAA_MODELS", str(tmp_path / "user-models"))
    monkeypatch.setattr(model_events, "_SHARED_REGISTRY", None)
    viewer = make_napari_viewer(show=True)
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Training")
    warned: list[str] = []

    def on_note(event):
        n = event.value if hasattr(event, "value") else event
        if n.severity == NotificationSeverity.WARNING:
            warned.append(str(n.message))

    notification_manager.notification_ready.connect(on_note)
    try:
        widget.set_values(data=synthetic_root, task="iaa", backbone="test_resnet", epochs=1,
                          batch_size=4, size=32, device="cpu", out=tmp_path / "out",
                          name="few-steps", lr=1e-3)
        assert widget.warning_label.isHidden()
        with qtbot.waitSignal(widget.run_finished, timeout=300_000) as sig:
            widget.start()
    finally:
        notification_manager.notification_ready.disconnect(on_note)
    out = sig.args[0]
    assert out["status"] == "done", out
    # in the dock the user is looking at, not as a pop-up (BENCHMARKS.md, issue 16, ninth pass)
    assert warned == []
    assert widget.warning_label.isVisible()
    assert "optimizer steps" in widget.warning_label.text() and "--epochs" in widget.warning_label.text()
    assert "warning below" in widget.progress.format() or "warnings below" in widget.progress.format()
    assert "warning: only" in widget.log.toPlainText()
    # shown once, not again when the result (which carries the same warnings) arrives
    assert widget.log.toPlainText().count("optimizer steps") == 1
