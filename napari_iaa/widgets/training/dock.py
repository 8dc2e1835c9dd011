"""Training dock: fit a model on a data set without leaving napari.

The fit runs ``training.fit`` in a napari thread worker. Its callbacks emit Qt signals from
the worker thread (queued into the GUI thread), which drive the progress bar, the live
loss / validation plot and the log. Cancel sets a flag that ``should_stop`` reads before
every step; the trainer then ends without writing a partial epoch, so the last good
checkpoint stays. A finished model is registered in the ``ModelRegistry`` and announced on
``MODEL_EVENTS.registered`` so every predictions dock can use it at once.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qtpy.QtCore import QObject, Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.widgets._model_settings import (
    DEVICES,
    MODEL_EVENTS,
    card_summary,
    notify_error,
    shared_registry,
)
from napari_iaa.widgets._prediction_plots import AsyncPlot, render_training

__all__ = ["TrainingWidget", "TASK_CHOICES", "BACKBONES", "TASK_DEFAULTS"]

TASK_CHOICES = ("iaa", "iaa+diagnosis", "mhr", "calibrate", "quality")

#: timm backbones that train in reasonable time on a CPU (all created with pretrained=False)
BACKBONES = (
    "resnet18",
    "resnet10t",
    "mobilenetv3_small_100",
    "mobilenetv3_large_100",
    "efficientnet_b0",
    "convnext_atto",
    "regnetx_002",
    "resnet34",
)

TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "iaa": {"backbone": "resnet18", "epochs": 20, "batch_size": 32, "lr": 3e-4, "image_size": 224},
    "iaa+diagnosis": {"backbone": "resnet18", "epochs": 20, "batch_size": 32, "lr": 3e-4,
                      "image_size": 224},
    "mhr": {"backbone": "resnet18", "epochs": 30, "batch_size": 16, "lr": 1e-3, "image_size": 128},
    "calibrate": {"backbone": "resnet18", "epochs": 1, "batch_size": 32, "lr": 1e-3,
                  "image_size": 128},
    "quality": {"backbone": "resnet18", "epochs": 20, "batch_size": 32, "lr": 3e-4,
                "image_size": 224},
}


class _Bridge(QObject):
    """Carries training events from the worker thread to the GUI thread (queued)."""

    event = Signal(object)


def _default_out() -> Path:
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("napari-iaa")) / "models"
    except ImportError:  # pragma: no cover
        return Path.home() / ".cache" / "napari-iaa" / "models"


class TrainingWidget(QWidget):
    """Dock that trains a model in a background worker and registers it.

    Signals
    -------
    run_finished(object)
        Emitted on the GUI thread when a run ends: a dict with ``status`` ("done",
        "cancelled" or "error"), ``checkpoint`` (Path or None), ``metrics``, ``result``.
    """

    run_finished = Signal(object)

    def __init__(self, napari_viewer: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.worker: Any = None
        self._stop = threading.Event()
        self._bridge = _Bridge()
        self._bridge.event.connect(self._on_event)
        self._t0 = 0.0
        self._total_steps = 0
        self._steps_per_epoch = 0
        self.last_run: dict[str, Any] | None = None
        #: progress-bar state waiting for the next coalesced refresh (see ``_set_progress``)
        self._pending_progress: dict[str, Any] = {}
        self._build()
        self._apply_defaults(self.task_combo.currentText())
        from napari_iaa.widgets._layers import freeze_gc_once

        freeze_gc_once()  # a full GC during training would freeze the viewer ~0.25 s

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        box = QGroupBox("Training run")
        form = QFormLayout(box)

        self.data_edit = QLineEdit()
        self.data_edit.setPlaceholderText("data set folder (any supported layout)")
        data_btn = QPushButton("…")
        data_btn.setMaximumWidth(30)
        data_btn.clicked.connect(lambda: self._browse(self.data_edit))
        form.addRow("data set", _row(self.data_edit, data_btn))

        self.task_combo = QComboBox()
        self.task_combo.addItems(TASK_CHOICES)
        self.task_combo.currentTextChanged.connect(self._apply_defaults)
        form.addRow("task", self.task_combo)

        self.base_edit = QLineEdit()
        self.base_edit.setPlaceholderText("MHR checkpoint to calibrate (.safetensors)")
        base_btn = QPushButton("…")
        base_btn.setMaximumWidth(30)
        base_btn.clicked.connect(self._browse_base)
        self.base_row = _row(self.base_edit, base_btn)
        form.addRow("base model", self.base_row)

        self.backbone_combo = QComboBox()
        self.backbone_combo.setEditable(True)
        self.backbone_combo.addItems(BACKBONES)
        self.backbone_combo.setToolTip("any timm model name (created with pretrained=False)")
        form.addRow("backbone", self.backbone_combo)

        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 10000)
        form.addRow("epochs", self.epochs_spin)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 4096)
        form.addRow("batch size", self.batch_spin)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(0.0, 1.0)
        self.lr_spin.setSingleStep(1e-4)
        form.addRow("learning rate", self.lr_spin)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(16, 2048)
        self.size_spin.setSingleStep(16)
        form.addRow("image size", self.size_spin)
        self.max_cases_spin = QSpinBox()
        self.max_cases_spin.setRange(0, 10_000_000)
        self.max_cases_spin.setSpecialValueText("all")
        self.max_cases_spin.setToolTip("use only the first N cases (quick runs; 0 = all)")
        form.addRow("cases", self.max_cases_spin)
        self.diag_edit = QLineEdit("benign_malignant")
        self.diag_edit.setToolTip("metadata column of the diagnosis head")
        form.addRow("diagnosis column", self.diag_edit)
        self._form = form

        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_label = QLabel("")
        form.addRow("device", _row(self.device_combo, self.device_label))

        self.out_edit = QLineEdit(str(_default_out()))
        out_btn = QPushButton("…")
        out_btn.setMaximumWidth(30)
        out_btn.clicked.connect(lambda: self._browse(self.out_edit))
        form.addRow("output folder", _row(self.out_edit, out_btn))
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("model name (default: task-backbone-time)")
        form.addRow("name", self.name_edit)
        layout.addWidget(box)

        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.defaults_button = QPushButton("Defaults")
        self.defaults_button.clicked.connect(lambda: self._apply_defaults(self.task_combo.currentText()))
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.defaults_button)
        layout.addLayout(buttons)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        layout.addWidget(self.progress)
        # a progress-bar change repaints it at once (QProgressBar.setValue), and on a
        # software-GL display every repaint recomposes the viewer's canvas: coalesce the
        # per-step updates to at most 5 a second
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(200)
        self._progress_timer.timeout.connect(self._apply_progress)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)

        self.curves = _Curves()
        self.plot = AsyncPlot(render_training, width=360, height=220)
        self.plot.submit(*self.curves.args())
        self._plot_timer = QTimer(self)
        self._plot_timer.setSingleShot(True)
        self._plot_timer.setInterval(250)  # at most 4 redraws a second, off the GUI thread
        self._plot_timer.timeout.connect(lambda: self.plot.submit(*self.curves.args()))
        layout.addWidget(self.plot)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setMinimumHeight(80)
        layout.addWidget(self.log)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.result_label)

    def _browse(self, edit: QLineEdit) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a folder", edit.text())
        if path:
            edit.setText(path)

    def _browse_base(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "MHR checkpoint", "", "Checkpoints (*.safetensors)")
        if path:
            self.base_edit.setText(path)

    def _apply_defaults(self, task: str) -> None:
        d = TASK_DEFAULTS.get(task, TASK_DEFAULTS["iaa"])
        self.backbone_combo.setCurrentText(d["backbone"])
        self.epochs_spin.setValue(int(d["epochs"]))
        self.batch_spin.setValue(int(d["batch_size"]))
        self.lr_spin.setValue(float(d["lr"]))
        self.size_spin.setValue(int(d["image_size"]))
        self._form.setRowVisible(self.base_row, task == "calibrate") if hasattr(
            self._form, "setRowVisible") else self.base_row.setEnabled(task == "calibrate")
        self.base_row.setEnabled(task == "calibrate")
        self.diag_edit.setEnabled(task == "iaa+diagnosis")

    # ------------------------------------------------------------------ values
    def values(self) -> dict[str, Any]:
        """The run settings as a plain dict (what ``_make_config`` turns into a config)."""
        task = self.task_combo.currentText()
        out = Path(self.out_edit.text()).expanduser()
        name = self.name_edit.text().strip() or (
            f"{task.replace('+', '-')}-{self.backbone_combo.currentText()}-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        return {
            "task": task,
            "data": self.data_edit.text().strip(),
            "backbone": self.backbone_combo.currentText().strip(),
            "epochs": self.epochs_spin.value(),
            "batch_size": self.batch_spin.value(),
            "lr": self.lr_spin.value(),
            "image_size": self.size_spin.value(),
            "max_cases": self.max_cases_spin.value() or None,
            "diagnosis": self.diag_edit.text().strip() or None,
            "device": self.device_combo.currentText(),
            "out": out,
            "name": name,
            "base_model": self.base_edit.text().strip() or None,
        }

    def set_values(self, **kw: Any) -> None:
        """Set fields by name (tests and scripts): data, task, backbone, epochs, ..."""
        if "task" in kw:
            self.task_combo.setCurrentText(kw["task"])
        setters = {
            "data": lambda v: self.data_edit.setText(str(v)),
            "backbone": self.backbone_combo.setCurrentText,
            "epochs": self.epochs_spin.setValue,
            "batch_size": self.batch_spin.setValue,
            "lr": self.lr_spin.setValue,
            "image_size": self.size_spin.setValue,
            "max_cases": lambda v: self.max_cases_spin.setValue(int(v or 0)),
            "diagnosis": self.diag_edit.setText,
            "device": self.device_combo.setCurrentText,
            "out": lambda v: self.out_edit.setText(str(v)),
            "name": self.name_edit.setText,
            "base_model": lambda v: self.base_edit.setText(str(v or "")),
        }
        for k, v in kw.items():
            if k in setters:
                setters[k](v)

    # ------------------------------------------------------------------ run
    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self) -> None:
        """Validate the settings and start the fit in a thread worker."""
        if self.running:
            return
        vals = self.values()
        problem = self._check(vals)
        if problem:
            notify_error(problem)
            self._log(f"not started: {problem}")
            return
        try:
            config = _make_config(vals)
        except Exception as exc:  # noqa: BLE001 - a bad setting is a notification
            notify_error(f"training settings: {exc}")
            self._log(f"not started: {exc}")
            return
        from napari.qt.threading import create_worker

        self._stop.clear()
        self.last_run = None
        self.curves = _Curves()
        self.plot.submit(*self.curves.args())
        self.progress.setRange(0, 0)  # busy until the first step reports a total
        self.progress.setFormat("starting…")
        self.result_label.setText("")
        self._t0 = time.perf_counter()
        self._log(f"start {vals['task']} on {vals['data']} ({vals['backbone']}, "
                  f"{vals['epochs']} epochs, batch {vals['batch_size']}, lr {vals['lr']:g}, "
                  f"device {vals['device']})")
        bridge = self._bridge
        stop = self._stop

        def job() -> dict[str, Any]:
            problem = _backbone_problem(vals["backbone"])
            if problem:
                from napari_iaa.errors import ConfigError

                raise ConfigError(problem)
            return _run_fit(config, vals, bridge, stop)

        self.worker = create_worker(job, _start_thread=False, _ignore_errors=True)
        self.worker.returned.connect(self._on_returned)
        self.worker.errored.connect(self._on_errored)
        self.worker.finished.connect(self._on_worker_finished)
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.worker.start()

    def cancel(self) -> None:
        """Ask the fit to stop before its next step (the last good checkpoint stays)."""
        if self.running:
            self._stop.set()
            self.progress.setFormat("cancelling…")
            self._log("cancel requested: stopping at the next step")

    def _check(self, vals: Mapping[str, Any]) -> str | None:
        if not vals["data"]:
            return "choose a data set folder first"
        if not Path(vals["data"]).exists():
            return f"{vals['data']}: data set folder not found"
        if not vals["backbone"]:
            return "choose a backbone"
        if vals["task"] == "calibrate" and not vals["base_model"]:
            return "calibrate needs a base MHR model (.safetensors)"
        if vals["task"] == "calibrate" and not Path(vals["base_model"]).is_file():
            return f"{vals['base_model']}: base model not found"
        if "timm" in sys.modules:  # else the worker checks (importing timm takes seconds)
            return _backbone_problem(vals["backbone"])
        return None

    # ------------------------------------------------------------------ events
    def _on_event(self, ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        if kind == "device":
            self.device_label.setText(f"in use: {ev['device']}")
            self._log(f"device in use: {ev['device']}")
        elif kind == "epoch_start":
            self._log(f"epoch {ev['epoch'] + 1} started")
        elif kind == "progress":
            total = max(1, int(ev["total"]))
            fmt = None if self.curves.loss_x else "reading data / preparing · %p%"
            self._set_progress(total=total, value=min(int(ev["done"]), total), format=fmt)
        elif kind == "fit_start":
            self._total_steps = int(ev.get("total_steps") or 0)
        elif kind == "step":
            total = int(ev.get("total_steps") or self._total_steps or 0)
            done = int(ev.get("global_step") or 0)
            epochs = self.epochs_spin.value()
            spe = int(ev.get("steps_per_epoch") or 0) or (max(1, total // max(1, epochs)) if total else 0)
            self._steps_per_epoch = spe
            epoch = int(ev.get("epoch", 0))
            step = int(ev.get("step", 0))
            self._set_progress(format=f"epoch {epoch + 1}/{epochs} · step {step + 1}/{spe or '?'} "
                                      f"({done}/{total or '?'}) · %p%")
            x = epoch + (step + 1) / spe if spe else float(done)
            self.curves.add_loss(x, float(ev.get("loss", math.nan)))
            if not self._plot_timer.isActive():
                self._plot_timer.start()
        elif kind == "epoch_end":
            metrics = ev.get("metrics") or {}
            name, value = _main_metric(metrics)
            self.curves.add_validation(ev["epoch"] + 1, value, name=name or "")
            if not self._plot_timer.isActive():
                self._plot_timer.start()
            text = ", ".join(f"{k}={_fmt(v)}" for k, v in metrics.items() if k != "epoch")
            self._log(f"epoch {ev['epoch'] + 1} done: {text}")
        elif kind == "log":
            self._log(str(ev.get("message", "")))

    def _set_progress(self, **state: Any) -> None:
        """Note progress-bar changes (total, value, format); applied by a 200 ms timer."""
        self._pending_progress.update({k: v for k, v in state.items() if v is not None})
        if not self._progress_timer.isActive():
            self._progress_timer.start()

    def _apply_progress(self) -> None:
        st, self._pending_progress = self._pending_progress, {}
        self._progress_timer.stop()
        if "total" in st and self.progress.maximum() != st["total"]:
            self.progress.setRange(0, st["total"])
        if "value" in st and self.progress.value() != st["value"]:
            self.progress.setValue(st["value"])
        if "format" in st and self.progress.format() != st["format"]:
            self.progress.setFormat(st["format"])

    def _on_returned(self, out: dict[str, Any]) -> None:
        self._apply_progress()
        status = out.get("status", "done")
        ckpt = out.get("checkpoint")
        metrics = out.get("metrics") or {}
        secs = time.perf_counter() - self._t0
        if ckpt is not None:
            registered = _register(Path(ckpt))
            out["registered"] = registered
            MODEL_EVENTS.registered.emit(str(ckpt))
            summary = card_summary({"metrics": metrics}, limit=6) or "no held-out metrics"
            self.result_label.setText(
                f"<b>{'cancelled, kept' if status == 'cancelled' else 'trained'}:</b> "
                f"{Path(ckpt).name}<br>{summary}<br><small>{ckpt}</small>"
            )
            self._log(f"model saved to {ckpt} and registered; held-out: {summary}")
        elif status == "cancelled":
            self.result_label.setText("cancelled before the first checkpoint; nothing saved")
            self._log("cancelled before the first checkpoint")
        self.progress.setFormat(f"{status} in {secs:.1f} s")
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if status == "done" else 0)
        self.last_run = out

    def _on_errored(self, exc: BaseException) -> None:
        self._apply_progress()
        notify_error(f"training failed: {exc}")
        self._log(f"error: {exc}")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("failed")
        self.last_run = {"status": "error", "error": exc, "checkpoint": None, "metrics": {}}

    def _on_worker_finished(self) -> None:
        self.worker = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self.last_run is not None:
            self.run_finished.emit(self.last_run)

    def _log(self, text: str) -> None:
        self.log.appendPlainText(f"[{time.strftime('%H:%M:%S')}] {text}")


# ---------------------------------------------------------------------- helpers
class _Curves:
    """The points of the live plot (GUI thread only)."""

    def __init__(self) -> None:
        self.loss_x: list[float] = []
        self.loss_y: list[float] = []
        self.val_x: list[float] = []
        self.val_y: list[float] = []
        self.metric_name = "validation metric"

    def add_loss(self, x: float, y: float) -> None:
        if math.isfinite(y):
            self.loss_x.append(x)
            self.loss_y.append(y)

    def add_validation(self, x: float, y: float | None, name: str = "") -> None:
        if name:
            self.metric_name = name
        if y is not None and math.isfinite(y):
            self.val_x.append(x)
            self.val_y.append(y)

    def args(self) -> tuple[Any, ...]:
        return (list(self.loss_x), list(self.loss_y), list(self.val_x), list(self.val_y),
                self.metric_name)


def _backbone_problem(name: str) -> str | None:
    """``None`` if timm knows the backbone, else the message to show."""
    try:
        import timm

        if not timm.is_model(name) and name not in timm.list_models():
            return f"unknown timm backbone {name!r}"
    except Exception:  # noqa: BLE001 - no timm: the fit will say so
        pass
    return None


def _row(*widgets: QWidget) -> QWidget:
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    for x in widgets:
        lay.addWidget(x)
    return w


def _fmt(v: Any) -> str:
    try:
        return f"{float(v):.4g}"
    except (TypeError, ValueError):
        return str(v)


def _float_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


_PREFERRED = ("val_mae", "mae", "val_dice", "dice", "val_rps", "rps", "ece", "val_ece",
              "pearson", "spearman", "val_metric", "metric")


def _main_metric(metrics: Mapping[str, Any]) -> tuple[str | None, float | None]:
    """The validation metric to plot: a well-known name first, else the first non-loss."""
    for key in _PREFERRED:
        if key in metrics and _float_or_none(metrics[key]) is not None:
            return key, _float_or_none(metrics[key])
    for key, v in metrics.items():
        if "loss" not in key and _float_or_none(v) is not None:
            return key, _float_or_none(v)
    return None, None


def _make_config(vals: Mapping[str, Any]) -> Any:
    """Turn the dock's values into a ``training.FitConfig`` (raises ConfigError)."""
    from training.config import FitConfig

    task = vals["task"]
    kw: dict[str, Any] = {
        "task": "iaa" if task == "iaa+diagnosis" else task,
        "data": str(vals["data"]),
        "backbone": vals["backbone"],
        "epochs": int(vals["epochs"]),
        "batch_size": int(vals["batch_size"]),
        "lr": float(vals["lr"]),
        "size": int(vals["image_size"]),
        "device": vals["device"],
        "out": str(vals["out"]),
        "name": vals["name"],
    }
    if task == "iaa+diagnosis":
        kw["diagnosis"] = vals.get("diagnosis") or "benign_malignant"
    if vals.get("max_cases"):
        kw["max_cases"] = int(vals["max_cases"])
    if task == "calibrate":
        kw["models"] = [str(vals["base_model"])]
    if vals.get("threads"):
        kw["threads"] = int(vals["threads"])
    return FitConfig(**kw)


def _callback_base() -> type:
    try:
        from training.engine import Callback

        return Callback
    except ImportError:  # pragma: no cover
        return object


class _BridgeCallback(_callback_base()):  # type: ignore[misc]
    """A training callback that forwards every hook to the GUI as a queued Qt signal."""

    def __init__(self, bridge: _Bridge) -> None:
        self.bridge = bridge

    def on_fit_start(self, trainer: Any) -> None:
        self.bridge.event.emit({"event": "fit_start",
                                "total_steps": getattr(trainer, "total_steps", 0)})

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        self.bridge.event.emit({"event": "epoch_start", "epoch": epoch})

    def on_step(self, trainer: Any, epoch: int, step: int, loss: float) -> None:
        self.bridge.event.emit({
            "event": "step", "epoch": epoch, "step": step, "loss": float(loss),
            "global_step": getattr(trainer, "global_step", step + 1),
            "total_steps": getattr(trainer, "total_steps", 0),
            "steps_per_epoch": getattr(trainer, "steps_per_epoch", 0),
        })

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: Mapping[str, float]) -> None:
        self.bridge.event.emit({"event": "epoch_end", "epoch": epoch, "metrics": dict(metrics)})

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        return None


def _run_fit(config: Any, vals: Mapping[str, Any], bridge: _Bridge, stop: threading.Event) -> dict[str, Any]:
    """Worker body: run ``training.fit`` with our callback; never touches a widget."""
    from napari_iaa.models import pick_device
    from training.fitting import fit

    bridge.event.emit({"event": "device", "device": str(pick_device(vals["device"]))})
    last = [-1]

    def progress(done: int, total: int) -> None:
        if done != last[0]:  # at most one event per permille
            last[0] = done
            bridge.event.emit({"event": "progress", "done": int(done), "total": int(total)})

    result = fit(config, progress=progress, should_stop=stop.is_set,
                 callbacks=[_BridgeCallback(bridge)])
    ckpt = _result_get(result, "checkpoint_path", "checkpoint")
    metrics = _result_get(result, "metrics") or {}
    cancelled = bool(_result_get(result, "cancelled") or stop.is_set())
    if ckpt is not None:
        from napari_iaa.models import read_checkpoint_card

        try:
            _card, card_path, weights = read_checkpoint_card(ckpt)
            ckpt = card_path if weights.is_file() else None
        except Exception:  # noqa: BLE001 - nothing usable was written
            ckpt = None
    return {"status": "cancelled" if cancelled else "done", "checkpoint": ckpt,
            "metrics": dict(metrics) if isinstance(metrics, Mapping) else {}, "result": result}


def _result_get(result: Any, *names: str) -> Any:
    for n in names:
        if isinstance(result, Mapping) and n in result:
            return result[n]
        v = getattr(result, n, None)
        if v is not None:
            return v
    return None


def _register(path: Path) -> bool:
    """Register a checkpoint in the shared model registry; False if it could not be."""
    try:
        shared_registry().register(path)
        return True
    except Exception as exc:  # noqa: BLE001 - the model is still usable from its path
        notify_error(f"trained model saved to {path} but not registered: {exc}")
    return False
