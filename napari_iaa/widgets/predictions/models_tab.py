"""The Models tab: every model the registry finds, with its card; one model per task; device.

Lists the models of the shared :class:`~napari_iaa.models.ModelRegistry` (shipped
``sample_data/models``, the user folder, files the user picks, models trained in the
training dock), lets the user choose one model per task (iaa, mhr, quality) and the
device (auto, cuda, mps, cpu), and shows what was detected and what is in use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.errors import CheckpointError, ConfigError, IAAError
from napari_iaa.predict import task_slot
from napari_iaa.widgets._common import metrics_summary, notify_error
from napari_iaa.widgets._common.model_events import MODEL_EVENTS, shared_registry
from napari_iaa.widgets.predictions.jobs import ModelKey

if TYPE_CHECKING:
    from napari_iaa.models import ModelCard, ModelRegistry

__all__ = ["SLOTS", "ModelInfo", "ModelSettingsWidget", "card_summary"]

#: the predictor slots, one model each
SLOTS = ("iaa", "mhr", "quality")
_SLOT_LABELS = {"iaa": "IAA model", "mhr": "MHR model", "quality": "Quality model"}
_CARD_KEYS = ("task", "architecture", "backbone", "input_size", "n_levels", "classes",
              "training_data", "metrics")


@dataclass
class ModelInfo:
    """One row of the model list: name, card file, card and where it was found."""

    name: str
    path: Path
    card: ModelCard
    source: str

    @property
    def task(self) -> str:
        """The card's task."""
        return self.card.task

    @property
    def slot(self) -> str | None:
        """The predictor slot the model fills (None for a task no slot takes)."""
        try:
            return task_slot(self.task)
        except ConfigError:
            return None


def card_summary(card: ModelCard, limit: int = 3) -> str:
    """Held-out metrics of a model card in one short line (see :func:`metrics_summary`)."""
    return metrics_summary(card.metrics, limit)


def _card_html(m: ModelInfo) -> str:
    d = m.card.to_dict()
    lines = [f"<b>{m.name}</b> ({m.source})<br><small>{m.path}</small><br>"]
    for key in _CARD_KEYS:
        if d.get(key) not in (None, "", {}, []):
            val = d[key]
            if isinstance(val, Mapping | list):
                val = json.dumps(val, default=str)[:300]
            lines.append(f"<b>{key}</b>: {val}")
    return "<br>".join(lines)


class ModelSettingsWidget(QWidget):
    """Model list with cards, one choice per task, and the device selector.

    Parameters
    ----------
    parent
        The Qt parent.
    registry
        The registry to list (the process-wide shared one when not given).

    Signals
    -------
    selection_changed()
        The model chosen for a task or the device changed.
    """

    selection_changed = Signal()

    def __init__(self, parent: QWidget | None = None,
                 registry: ModelRegistry | None = None) -> None:
        super().__init__(parent)
        self._registry = registry
        self._extra: list[Path] = []
        self.models: list[ModelInfo] = []
        self.in_use_device: str | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._build_models_box())
        layout.addWidget(self._build_device_box())

        self._update_detected()
        self.refresh()
        MODEL_EVENTS.registered.connect(self._on_registered)

    # ---------------------------------------------------------------- layout
    def _build_models_box(self) -> QGroupBox:
        box = QGroupBox("Models")
        bl = QVBoxLayout(box)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(
            ["name", "task", "backbone", "source", "held-out metrics"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeToContents)
        hh.setStretchLastSection(True)
        self.table.setMinimumHeight(90)
        self.table.itemSelectionChanged.connect(self._show_card)
        bl.addWidget(self.table)

        self.card_view = QTextBrowser()
        self.card_view.setMaximumHeight(110)
        self.card_view.setPlaceholderText("select a model to see its card")
        bl.addWidget(self.card_view)

        row = QHBoxLayout()
        self.add_button = QPushButton("Add model file…")
        self.add_button.clicked.connect(self._pick_file)
        self.refresh_button = QPushButton("Rescan")
        self.refresh_button.clicked.connect(self.refresh)
        row.addWidget(self.add_button)
        row.addWidget(self.refresh_button)
        row.addStretch(1)
        bl.addLayout(row)

        form = QFormLayout()
        self.combos: dict[str, QComboBox] = {}
        for slot in SLOTS:
            cb = QComboBox()
            cb.currentIndexChanged.connect(lambda *_: self.selection_changed.emit())
            self.combos[slot] = cb
            form.addRow(_SLOT_LABELS[slot], cb)
        bl.addLayout(form)
        return box

    def _build_device_box(self) -> QGroupBox:
        from napari_iaa.models import DEVICE_CHOICES  # torch: loaded with the first dock

        box = QGroupBox("Device")
        dl = QFormLayout(box)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICE_CHOICES)
        self.device_combo.currentIndexChanged.connect(self._device_changed)
        self.detected_label = QLabel()
        self.detected_label.setWordWrap(True)
        self.in_use_label = QLabel("—")
        dl.addRow("device", self.device_combo)
        dl.addRow("detected", self.detected_label)
        dl.addRow("in use", self.in_use_label)
        return box

    # ---------------------------------------------------------------- registry
    @property
    def registry(self) -> ModelRegistry:
        """The registry listed here."""
        if self._registry is None:
            self._registry = shared_registry()
        return self._registry

    def _on_registered(self, path: str) -> None:
        """A model was trained or registered elsewhere: list it and choose it."""
        self.add_path(path, select=True)

    def refresh(self) -> None:
        """Rescan the registry (and the picked files) and rebuild the list and choices."""
        from napari_iaa.models import read_checkpoint_card

        keep = {slot: self.selected_path(slot) for slot in SLOTS}
        try:
            entries = self.registry.refresh()
        except (IAAError, OSError) as exc:  # a broken folder must not break the dock
            notify_error(f"model registry: {exc}")
            entries = []
        models = [ModelInfo(e.name, e.path, e.card, e.source) for e in entries]
        seen = {e.path.resolve() for e in entries}
        for p in self._extra:
            if p.resolve() in seen:
                continue
            try:
                models.append(ModelInfo(p.stem, p, read_checkpoint_card(p)[0], "picked"))
            except (IAAError, OSError) as exc:
                notify_error(str(exc))
        self.models = models
        self._fill_table()
        self._fill_combos(keep)

    def add_path(self, path: str | Path, select: bool = True) -> ModelInfo | None:
        """Add a checkpoint the user picked (or a freshly trained one) and select it."""
        from napari_iaa.models import read_checkpoint_card

        try:
            card, p, weights = read_checkpoint_card(Path(path))
            if not weights.is_file():
                raise CheckpointError(f"{weights}: weights file missing")
        except (IAAError, OSError) as exc:
            notify_error(f"cannot add model: {exc}")
            return None
        try:
            self.registry.register(p)
        except CheckpointError:  # keep it as a picked path instead
            if p not in self._extra:
                self._extra.append(p)
        self.refresh()
        info = next((m for m in self.models if m.path.resolve() == p.resolve()), None)
        if info is None:
            info = ModelInfo(p.stem, p, card, "picked")
            self.models.append(info)
            self._fill_table()
            self._fill_combos({s: self.selected_path(s) for s in SLOTS})
        if select and info.slot:
            self.select(info.slot, info.path)
        return info

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Model checkpoint", "", "Checkpoints (*.safetensors *.json)"
        )
        if path:
            self.add_path(path)

    # ---------------------------------------------------------------- views
    def _fill_table(self) -> None:
        self.table.setRowCount(len(self.models))
        for r, m in enumerate(self.models):
            vals = [m.name, m.task, m.card.backbone, m.source, card_summary(m.card)]
            for c, v in enumerate(vals):
                it = QTableWidgetItem(v)
                it.setToolTip(str(m.path))
                self.table.setItem(r, c, it)

    def _fill_combos(self, keep: dict[str, Path | None]) -> None:
        for slot, cb in self.combos.items():
            cb.blockSignals(True)
            cb.clear()
            cb.addItem("(none)", None)
            for m in self.models:
                if m.slot == slot:
                    cb.addItem(f"{m.name} [{m.source}]", str(m.path))
            want = keep.get(slot)
            idx = cb.findData(str(want)) if want else -1
            if idx < 0 and cb.count() > 1:
                idx = 1  # first model of this task
            cb.setCurrentIndex(max(idx, 0))
            cb.blockSignals(False)
        self.selection_changed.emit()

    def _show_card(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.card_view.setHtml(_card_html(self.models[rows[0].row()]))

    # ---------------------------------------------------------------- choices
    def select(self, slot: str, path: str | Path) -> None:
        """Choose the model at ``path`` for ``slot``."""
        cb = self.combos[slot]
        idx = cb.findData(str(path))
        if idx >= 0:
            cb.setCurrentIndex(idx)

    def selected_path(self, slot: str) -> Path | None:
        """The checkpoint chosen for a slot (None for none)."""
        data = self.combos[slot].currentData()
        return Path(data) if data else None

    def selected(self) -> dict[str, Path]:
        """``slot -> checkpoint`` for every slot with a model chosen."""
        return {s: p for s in SLOTS if (p := self.selected_path(s)) is not None}

    def model_key(self) -> ModelKey:
        """The models chosen and the device, as a hashable key (what to load)."""
        chosen = tuple(sorted((k, str(v)) for k, v in self.selected().items()))
        return chosen, self.device()

    def device(self) -> str:
        """The device asked for (auto, cuda, mps or cpu)."""
        return self.device_combo.currentText()

    def set_in_use(self, device: str | None) -> None:
        """Show the device a worker actually used."""
        self.in_use_device = device
        self.in_use_label.setText(device or "—")

    def _device_changed(self) -> None:
        from napari_iaa.models import pick_device

        try:
            self.in_use_label.setText(f"{pick_device(self.device())} (on next run)")
        except ConfigError as exc:
            self.in_use_label.setText(f"unavailable: {exc}")
        self.selection_changed.emit()

    def _update_detected(self) -> None:
        from napari_iaa.models import describe_devices

        desc = describe_devices()
        self.detected_label.setText(
            "; ".join(f"{k}: {v}" for k, v in desc["names"].items())
            + f" (auto -> {desc['auto']})")
        self._device_changed()
