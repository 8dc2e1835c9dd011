"""Training dock: fit a model on a data set without leaving napari.

The fit runs ``training.fit`` in a worker (:func:`~napari_iaa.widgets._common.start_worker`).
Its callback (:class:`~.events.RelayCallback`) sends typed messages through a
:class:`~napari_iaa.widgets._common.Relay` (a queued signal) to the GUI thread, where they
drive the progress bar, the bar in napari's activity dock, the live loss / validation plot
and the log. Cancel sets a flag that ``should_stop`` reads before every step; the trainer
then ends without writing a partial epoch, so the last good checkpoint stays. A finished
model is registered in the shared ``ModelRegistry`` and announced on
``MODEL_EVENTS.registered`` so every predictions dock can use it at once.

What keeps the viewer responsive beside a fit (BENCHMARKS.md, issue 16, eighth pass): the
fit starts on the turn after napari has added its activity bar; it runs with one torch
thread fewer than the cores (``run.gui_threads``) and with the process's older objects
frozen (``older_objects_frozen``: a full garbage collection walks only the run's own);
the progress bar is painted with the window's next repaint and never shows Qt's busy
animation; the plot is drawn in a thread at most four times a second and a new run shows
the empty plot kept from the first draw; napari's activity bar moves once a second (the
dock's own bar shows every step); a run's warnings are shown in the dock (a label and the
log), with a napari notification (an animated pop-up, each frame a repaint of the window)
only when the dock is not on screen to show them (BENCHMARKS.md, issue 16, ninth pass).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.errors import ConfigError
from napari_iaa.models.registry import user_models_dir
from napari_iaa.widgets._common import (
    Activity,
    DeviceInUse,
    Progress,
    Relay,
    fmt_value,
    no_threads,
    notify_error,
    notify_warning,
    start_worker,
)
from napari_iaa.widgets._common.activity import LONG_JOB_INTERVAL_S
from napari_iaa.widgets._common.formatting import metrics_summary
from napari_iaa.widgets._common.memory import older_objects_frozen
from napari_iaa.widgets._common.model_events import MODEL_EVENTS
from napari_iaa.widgets._common.paint import set_bar
from napari_iaa.widgets._common.plots import AsyncPlot, render_training, warm_up_matplotlib
from napari_iaa.widgets.training.events import (
    EpochEnded,
    EpochStarted,
    FitAdvice,
    FitStarted,
    StepDone,
)
from napari_iaa.widgets.training.form import TrainingForm
from napari_iaa.widgets.training.run import (
    TASK_CHOICES,
    Curves,
    backbone_problem,
    check_settings,
    main_metric,
    make_config,
    register,
    run_fit,
    task_of,
)

__all__ = ["TrainingWidget"]

_STARTING = object()  # ``TrainingWidget.worker`` while ``start_worker`` is being called
#: the plot's text before the first run, and from a run's start to its first curves
IDLE_PLOT_TEXT = "no training run yet"
STARTING_PLOT_TEXT = "starting…"


class TrainingWidget(QWidget):
    """Dock that trains a model in a background worker and registers it.

    Signals
    -------
    run_finished(object)
        Emitted on the GUI thread when a run ends: a dict with ``status`` ("done",
        "cancelled" or "error"), ``checkpoint`` (Path or None), ``metrics``, ``result``
        (the ``FitResult``) and ``registered``.
    """

    run_finished = Signal(object)

    def __init__(self, napari_viewer: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.worker: Any = None
        self._stop = threading.Event()
        self._relay = Relay(self)  # deleted with the dock: a late message goes nowhere
        self._relay.message.connect(self._on_message)
        self._activity: Activity | None = None
        self._t0 = 0.0
        self._total_steps = 0
        self._warnings: list[str] = []
        self._job: Any = None  # the fit :meth:`start` set up, until :meth:`_launch` runs it
        self._docked_at_start = False
        self.last_run: dict[str, Any] | None = None
        #: progress-bar state waiting for the next coalesced refresh (see ``_set_progress``)
        self._pending_progress: dict[str, Any] = {}
        self._pending_log: list[str] = []  # a running fit's log lines, shown with the bar
        self._pending_activity: Progress | None = None  # for napari's bar, with ours
        self._build()
        self._task_changed(self.form.value("task"))
        from napari_iaa.widgets._common.memory import freeze_gc_once

        freeze_gc_once()  # a full GC during training would freeze the viewer ~0.25 s

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        box = QGroupBox("Training run")
        self.form = TrainingForm(TASK_CHOICES, task_of, defaults={"out": str(user_models_dir()),
                                                                  "diagnosis": "benign_malignant"})
        self.form.widgets["data"].line_edit.setPlaceholderText(
            "data set folder (any supported layout)")
        self.form.widgets["name"].setPlaceholderText("model name (default: task-backbone-time)")
        self.form.widgets["task"].currentTextChanged.connect(self._task_changed)
        QVBoxLayout(box).addWidget(self.form.container)
        layout.addWidget(box)

        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.defaults_button = QPushButton("Defaults")
        self.defaults_button.clicked.connect(
            lambda: self.form.apply_task_defaults(self.form.value("task")))
        for b in (self.start_button, self.cancel_button, self.defaults_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self._build_progress(layout)

    def _build_progress(self, layout: QVBoxLayout) -> None:
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        layout.addWidget(self.progress)
        # a progress-bar change repaints it at once (QProgressBar.setValue), and on a
        # software-GL display every repaint recomposes the viewer's canvas: coalesce the
        # per-step updates to at most 5 a second, with a running fit's log lines and
        # napari's bar (painted in the same repaint)
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(200)
        self._progress_timer.timeout.connect(self._apply_progress)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        # warnings about the run (too few steps, splits too small to measure, temperature
        # at its bound), with the settings to try; hidden when there are none
        self.warning_label = QLabel("")
        self.warning_label.setWordWrap(True)
        self.warning_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.warning_label.setStyleSheet("color: #e69f00;")
        self.warning_label.setVisible(False)
        layout.addWidget(self.warning_label)

        self.curves = Curves()
        self.plot = AsyncPlot(render_training, width=360, height=220)
        # text until a run has curves: no matplotlib draw when the dock opens (its import in
        # the render thread slowed the dock's first paint 5-10 times: BENCHMARKS.md, issue
        # 16, thirteenth pass); the run's worker imports it before the first step
        self.plot.clear(IDLE_PLOT_TEXT)
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

    def _task_changed(self, choice: str) -> None:
        self.form.apply_task_defaults(choice)
        self.form.enable_for(choice, disabled=TASK_CHOICES[choice][1])

    # ------------------------------------------------------------------ values
    def values(self) -> dict[str, Any]:
        """The form's settings by FitConfig field name (``task``: the dock's choice)."""
        vals = self.form.values()
        vals["out"] = str(Path(vals["out"] or user_models_dir()).expanduser())
        vals["name"] = vals["name"] or (
            f"{vals['task'].replace('+', '-')}-{vals['backbone']}-{time.strftime('%Y%m%d-%H%M%S')}")
        return vals

    def set_values(self, **kw: Any) -> None:
        """Set rows by FitConfig field name (``task``: one of ``TASK_CHOICES``).

        ``image_size`` and ``base_model`` are accepted for ``size`` and ``models`` (the
        names scripts used before the form followed FitConfig).
        """
        if "task" in kw:
            self.form.set_value("task", kw.pop("task"))
        for old, new in (("image_size", "size"), ("base_model", "models")):
            if old in kw:
                kw[new] = kw.pop(old)
        for name, value in kw.items():
            self.form.set_value(name, value)

    # ------------------------------------------------------------------ run
    @property
    def running(self) -> bool:
        """Whether a fit is running."""
        return self.worker is not None

    def start(self) -> None:
        """Validate the settings and start the fit in a worker."""
        if self.running:
            return
        try:
            vals = self.values()
            problem = check_settings(vals)
            config = None if problem else make_config(vals)
        except ConfigError as exc:
            problem = f"training settings: {exc}"
        if problem or config is None:
            notify_error(problem)
            self._log(f"not started: {problem}")
            return
        self._reset_run()
        self._log(f"start {vals['task']} on {vals['data']} ({vals['backbone']}, "
                  f"{vals['epochs']} epochs, batch {vals['batch_size']}, lr {vals['lr']:g}, "
                  f"device {vals['device']})")
        relay, stop = self._relay, self._stop

        def job() -> dict[str, Any]:
            # a full collection would walk all of napari's objects with the viewer stopped
            # (240-400 ms); frozen, it walks the run's own (its imports included)
            with older_objects_frozen():
                problem = backbone_problem(config.backbone)  # loads torch and timm
                if problem:
                    raise ConfigError(problem)
                warm_up_matplotlib()  # here, not in the plot's first render
                return run_fit(config, relay, stop)

        self._job = job
        self._docked_at_start = self.parent() is not None
        self.worker = _STARTING  # a synchronous run (NAPARI_IAA_NO_THREADS) ends in the call
        sync = no_threads()
        # the fit starts on the turn after napari has added the activity bar: napari's
        # adding (a repaint and processEvents) then does not compete with the fit's start
        # for the GIL and the cores (BENCHMARKS.md, issue 16, eighth pass)
        # napari's bar once a second: each of its updates repaints the window (this dock's
        # bar, plot and log show every step); and only once this dock is out of sight, as
        # the data-set table does: its creation repaints the window too
        self._activity = Activity(f"training {vals['task']}", min_interval=LONG_JOB_INTERVAL_S,
                                  then=None if sync else self._launch, out_of_sight=self)
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        if sync:
            self._launch()

    def _launch(self) -> None:
        """Start the fit set up by :meth:`start` in a worker."""
        job, self._job = self._job, None
        if job is None:
            return
        if self._docked_at_start and self.parent() is None:  # the dock closed meanwhile: the
            self._stop.set()  # fit ends at once, as cancelled (closing stops a running one)
        # the dock closed or its viewer closed: the fit stops at its next step
        worker = start_worker(job, on_return=self._on_returned, on_error=self._on_errored,
                              on_finish=self._on_worker_finished, activity=self._activity,
                              owner=self, on_stop=self._stop.set)
        if self.worker is _STARTING:
            self.worker = worker

    def _reset_run(self) -> None:
        self._stop.clear()
        self.last_run = None
        self.curves = Curves()
        self._plot_timer.stop()
        self.plot.clear(STARTING_PLOT_TEXT)  # no draw beside the run's start
        # not Qt's busy bar (range 0..0): its animation repaints, and so composes the
        # whole window again, every few milliseconds until the first progress message
        self._pending_progress, self._pending_activity = {}, None
        set_bar(self.progress, total=1, value=0, fmt="starting…")
        self.result_label.setText("")
        self._warnings = []
        self.warning_label.setText("")
        self.warning_label.setVisible(False)
        self._t0 = time.perf_counter()

    def cancel(self) -> None:
        """Ask the fit to stop before its next step (the last good checkpoint stays)."""
        if self.running:
            self._stop.set()
            set_bar(self.progress, fmt="cancelling…")
            self._log("cancel requested: stopping at the next step")

    # ------------------------------------------------------------------ messages
    def _on_message(self, msg: Any) -> None:
        match msg:
            case DeviceInUse(device=device):
                self.form.device_label.setText(f"in use: {device}")
                self._log(f"device in use: {device}")
            case Progress(done=done, total=total):
                total = max(1, total)
                self._pending_activity = Progress(min(done, total), total, msg.text)
                fmt = None if self.curves.loss_x else "reading data / preparing · %p%"
                self._set_progress(total=total, value=min(done, total), format=fmt)
            case FitAdvice(messages=messages):
                self._advise(messages)
            case FitStarted(total_steps=total):
                self._total_steps = total
            case EpochStarted(epoch=epoch):
                self._log(f"epoch {epoch + 1} started")
            case StepDone():
                self._on_step(msg)
            case EpochEnded(epoch=epoch, metrics=metrics):
                name, value = main_metric(metrics)
                self.curves.add_validation(epoch + 1, value, name=name or "")
                self._schedule_plot()
                text = ", ".join(f"{k}={fmt_value(v)}" for k, v in metrics.items() if k != "epoch")
                self._log(f"epoch {epoch + 1} done: {text}")

    def _on_step(self, msg: StepDone) -> None:
        total = msg.total_steps or self._total_steps
        epochs = int(self.form.value("epochs"))
        spe = msg.steps_per_epoch or (max(1, total // max(1, epochs)) if total else 0)
        self._set_progress(format=f"epoch {msg.epoch + 1}/{epochs} · step {msg.step + 1}/{spe or '?'} "
                                  f"({msg.global_step}/{total or '?'}) · %p%")
        x = msg.epoch + (msg.step + 1) / spe if spe else float(msg.global_step)
        self.curves.add_loss(x, msg.loss)
        self._schedule_plot()

    def _schedule_plot(self) -> None:
        if not self._plot_timer.isActive():
            self._plot_timer.start()

    def _set_progress(self, **state: Any) -> None:
        """Note progress-bar changes (total, value, format); applied by a 200 ms timer."""
        self._pending_progress.update({k: v for k, v in state.items() if v is not None})
        self._schedule_refresh()

    def _schedule_refresh(self) -> None:
        if not self._progress_timer.isActive():
            self._progress_timer.start()

    def _apply_progress(self, *, feed_napari: bool = True) -> None:
        """Show what waits: the bar's state, the log's lines, napari's bar (one repaint).

        napari's bar processes pending events when it is updated: a run's end can be
        delivered in there. Its end's handlers pass ``feed_napari=False`` (napari's bar gets
        the last numbers when it closes), so they never run inside one another.
        """
        st, self._pending_progress = self._pending_progress, {}
        lines, self._pending_log = self._pending_log, []
        activity, self._pending_activity = self._pending_activity, None
        self._progress_timer.stop()
        set_bar(self.progress, total=st.get("total"), value=st.get("value"), fmt=st.get("format"))
        for line in lines:
            self.log.appendPlainText(line)
        if activity is not None and self._activity is not None:
            if feed_napari:  # at most once a second; painted with ours; last (see above)
                self._activity.update(activity)
            else:
                self._activity.note(activity)

    def _advise(self, messages: Any) -> None:
        """Show the run's warnings (each once per run) in the dock: the warning label and
        the log; the run's end counts them on the bar.

        Not as napari notifications while the dock is on screen: each is an animated pop-up
        (sliding in, fading out 4 s later) and every frame of it composes the window again,
        40-55 ms each on a software-GL display, beside the fit (BENCHMARKS.md, issue 16,
        ninth pass); napari has no public way to list a notification without its pop-up.
        A dock that is not on screen (closed, hidden, behind another dock's tab, its
        window minimised) cannot show them: then one notification carries them.
        """
        new = [m for m in messages if m not in self._warnings]
        if not new:
            return
        self._warnings += new
        for m in new:
            self._log(f"warning: {m}")
        self.warning_label.setText("<br>".join(f"&#9888; {m}" for m in self._warnings))
        self.warning_label.setVisible(True)
        if not self.on_screen():
            notify_warning("training: " + "\n".join(new))

    def on_screen(self) -> bool:
        """Whether the dock is shown to the user (visible, its window not minimised)."""
        return self.isVisible() and not self.window().isMinimized()

    # ------------------------------------------------------------------ outcome
    def _on_returned(self, out: dict[str, Any]) -> None:
        self._apply_progress(feed_napari=False)
        result = out.get("result")
        if result is not None:
            self._advise(result.warnings)
        status, ckpt = out["status"], out["checkpoint"]
        secs = time.perf_counter() - self._t0
        out["registered"] = False
        if ckpt is not None:
            out["registered"] = register(Path(ckpt))
            MODEL_EVENTS.registered.emit(str(ckpt))
            summary = metrics_summary(out["metrics"], limit=6) or "no held-out metrics"
            self.result_label.setText(
                f"<b>{'cancelled, kept' if status == 'cancelled' else 'trained'}:</b> "
                f"{Path(ckpt).name}<br>{summary}<br><small>{ckpt}</small>"
            )
            self._log(f"model saved to {ckpt} and registered; held-out: {summary}")
        elif status == "cancelled":
            self.result_label.setText("cancelled before the first checkpoint; nothing saved")
            self._log("cancelled before the first checkpoint")
        # a run that never reported progress (its bar still 0 of 1) shows done as full
        full = self.progress.maximum() == 1 and status == "done"
        n = len(self._warnings)
        warned = f" · {n} warning{'s' if n > 1 else ''} below" if n else ""
        set_bar(self.progress, value=1 if full else None, fmt=f"{status} in {secs:.1f} s{warned}")
        self.last_run = out

    def _on_errored(self, exc: BaseException) -> None:
        self._apply_progress(feed_napari=False)
        notify_error(f"training failed: {exc}")
        self._log(f"error: {exc}")
        set_bar(self.progress, total=1, value=0, fmt="failed")
        self.last_run = {"status": "error", "error": exc, "checkpoint": None, "metrics": {}}

    def _on_worker_finished(self) -> None:
        self._apply_progress(feed_napari=False)
        self.worker = None
        self._activity = None  # closed by start_worker when the job ended
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self.last_run is not None:
            self.run_finished.emit(self.last_run)

    def _log(self, text: str) -> None:
        """Add a line to the log: at once, or while a fit runs with the bar's next refresh."""
        line = f"[{time.strftime('%H:%M:%S')}] {text}"
        if self.worker is None:
            self.log.appendPlainText(line)
        else:
            self._pending_log.append(line)
            self._schedule_refresh()
