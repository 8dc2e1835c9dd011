"""Settings area shared by the predictions and training docks: models and device.

Lists every model the ``ModelRegistry`` finds (shipped ``sample_data/models``, the user
folder, paths the user picks) with its model card, lets the user choose one model per task
(iaa, mhr, quality) and the device (auto, cuda, mps, cpu), and shows what was detected and
what is in use.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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

from napari_iaa.predict import entry_card, entry_name, entry_path, task_slot

__all__ = [
    "ModelSettingsWidget",
    "ModelInfo",
    "card_summary",
    "DEVICES",
    "notify_error",
    "MODEL_EVENTS",
    "shared_registry",
]

DEVICES = ("auto", "cuda", "mps", "cpu")


SLOTS = ("iaa", "mhr", "quality")


# shim: removed at integration (the shared registry and MODEL_EVENTS live in _common)
from napari_iaa.widgets._common.model_events import (  # noqa: E402
    MODEL_EVENTS,
    _ModelEvents,  # noqa: F401
    shared_registry,
)

_SHARED_REGISTRY = None  # shim: tests patch it here; the real one is in _common.model_events


def notify_error(message: str) -> None:
    """Show an error as a napari notification (never raise, never a dialog that blocks)."""
    try:
        from napari.utils.notifications import show_error

        show_error(str(message))
    except Exception:  # noqa: BLE001 - last resort: stderr
        import sys

        print(f"napari-iaa: {message}", file=sys.stderr)


def _card_get(card: Any, name: str, default: Any = None) -> Any:
    if card is None:
        return default
    if isinstance(card, Mapping):
        return card.get(name, default)
    return getattr(card, name, default)


class ModelInfo:
    """One row of the model list: name, weights path, card (dict-like), source."""

    def __init__(self, name: str, path: Path, card: Any, source: str) -> None:
        self.name = name
        self.path = Path(path)
        self.card = card
        self.source = source

    @property
    def task(self) -> str:
        return str(_card_get(self.card, "task", "?"))

    @property
    def slot(self) -> str | None:
        try:
            return task_slot(self.task)
        except Exception:  # noqa: BLE001
            return None


def _fmt_metric(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "nan" if math.isnan(f) else f"{f:.3g}"


_SKIP_METRICS = {"training", "n_cases", "n", "split", "reliability", "per_annotator", "epoch",
                 "baseline_constant", "seconds", "images_per_second"}


def card_summary(card: Any, limit: int = 3) -> str:
    """Held-out metrics of a card (the test split first, else validation) in one short line."""
    metrics = _card_get(card, "metrics", {}) or {}
    if not isinstance(metrics, Mapping):
        return str(metrics)
    for split in ("test", "val"):
        if isinstance(metrics.get(split), Mapping):
            metrics = metrics[split]
            break
    flat: list[tuple[str, Any]] = []
    for k, v in metrics.items():
        if k in _SKIP_METRICS:
            continue
        if isinstance(v, Mapping):
            flat += [(f"{k}.{kk}", vv) for kk, vv in v.items() if kk not in _SKIP_METRICS
                     and isinstance(vv, int | float) and not isinstance(vv, bool)]
        elif isinstance(v, int | float) and not isinstance(v, bool):
            flat.append((k, v))
    return ", ".join(f"{k}={_fmt_metric(v)}" for k, v in flat[:limit])


def _card_dict(card: Any) -> dict[str, Any]:
    if card is None:
        return {}
    if isinstance(card, Mapping):
        return dict(card)
    for name in ("to_dict", "asdict"):
        f = getattr(card, name, None)
        if callable(f):
            try:
                return dict(f())
            except Exception:  # noqa: BLE001
                pass
    try:
        import dataclasses

        return dataclasses.asdict(card)
    except TypeError:
        return dict(vars(card))


def _source_of(path: Path, entry: Any) -> str:
    src = getattr(entry, "source", None)
    if src:
        return str(src)
    parts = {p.lower() for p in Path(path).parts}
    if "sample_data" in parts:
        return "shipped"
    return "user"


class ModelSettingsWidget(QWidget):
    """Model list with cards, one choice per task, and the device selector.

    Signals
    -------
    selection_changed()
        The model chosen for a task or the device changed.
    """

    selection_changed = Signal()

    def __init__(self, parent: QWidget | None = None, registry: Any = None) -> None:
        super().__init__(parent)
        self._registry = registry
        self._extra: list[Path] = []
        self.models: list[ModelInfo] = []
        self.in_use_device: str | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

        box = QGroupBox("Models")
        bl = QVBoxLayout(box)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["name", "task", "backbone", "source", "held-out metrics"])
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
        for slot, label in (("iaa", "IAA model"), ("mhr", "MHR model"), ("quality", "Quality model")):
            cb = QComboBox()
            cb.currentIndexChanged.connect(lambda *_: self.selection_changed.emit())
            self.combos[slot] = cb
            form.addRow(label, cb)
        bl.addLayout(form)
        layout.addWidget(box)

        dev_box = QGroupBox("Device")
        dl = QFormLayout(dev_box)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.currentIndexChanged.connect(self._device_changed)
        self.detected_label = QLabel()
        self.detected_label.setWordWrap(True)
        self.in_use_label = QLabel("—")
        dl.addRow("device", self.device_combo)
        dl.addRow("detected", self.detected_label)
        dl.addRow("in use", self.in_use_label)
        layout.addWidget(dev_box)

        self._update_detected()
        self.refresh()
        MODEL_EVENTS.registered.connect(self._on_registered)

    def _on_registered(self, path: str) -> None:
        """A model was trained or registered elsewhere: list it and choose it."""
        self.add_path(path, select=True)

    # ---------------------------------------------------------------- registry
    @property
    def registry(self) -> Any:
        if self._registry is None:
            self._registry = shared_registry()
        return self._registry

    def _entries(self) -> list[Any]:
        reg = self.registry
        for name in ("list", "entries", "models", "available"):
            attr = getattr(reg, name, None)
            if attr is None:
                continue
            out = attr() if callable(attr) else attr
            return list(out.values()) if isinstance(out, Mapping) else list(out)
        return list(reg)

    def refresh(self) -> None:
        """Rescan the registry (and the picked files) and rebuild the list and choices."""
        keep = {slot: self.selected_path(slot) for slot in SLOTS}
        models: list[ModelInfo] = []
        seen: set[Path] = set()
        try:
            refresh = getattr(self.registry, "refresh", None)
            if callable(refresh):
                refresh()
            entries = self._entries()
        except Exception as exc:  # noqa: BLE001 - a broken folder must not break the dock
            notify_error(f"model registry: {exc}")
            entries = []
        for e in entries:
            try:
                p = entry_path(e)
                card = entry_card(e)
                models.append(ModelInfo(entry_name(e), p, card, _source_of(p, e)))
                seen.add(p.resolve())
            except Exception as exc:  # noqa: BLE001
                notify_error(f"model registry entry {e}: {exc}")
        for p in self._extra:
            if p.resolve() in seen:
                continue
            try:
                from napari_iaa.models import read_checkpoint_card

                models.append(ModelInfo(p.stem, p, read_checkpoint_card(p)[0], "picked"))
            except Exception as exc:  # noqa: BLE001
                notify_error(str(exc))
        self.models = models
        self._fill_table()
        self._fill_combos(keep)

    def add_path(self, path: str | Path, select: bool = True) -> ModelInfo | None:
        """Add a checkpoint the user picked (or a freshly trained one) and select it."""
        p = Path(path)
        try:
            from napari_iaa.models import read_checkpoint_card

            card, p, weights = read_checkpoint_card(p)
            if not weights.is_file():
                raise FileNotFoundError(f"{weights}: weights file missing")
        except Exception as exc:  # noqa: BLE001
            notify_error(f"cannot add model: {exc}")
            return None
        registered = False
        try:
            self.registry.register(p)
            registered = True
        except Exception:  # noqa: BLE001 - keep it as a picked path instead
            registered = False
        if not registered and p not in self._extra:
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
            vals = [m.name, m.task, str(_card_get(m.card, "backbone", "?")), m.source,
                    card_summary(m.card)]
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
        if not rows:
            return
        m = self.models[rows[0].row()]
        d = _card_dict(m.card)
        lines = [f"<b>{m.name}</b> ({m.source})<br><small>{m.path}</small><br>"]
        for key in ("task", "architecture", "backbone", "input_size", "n_levels", "classes",
                    "training_data", "data", "metrics"):
            if key in d and d[key] not in (None, "", {}, []):
                val = d[key]
                if isinstance(val, Mapping | list):
                    val = json.dumps(val, default=str)[:300]
                lines.append(f"<b>{key}</b>: {val}")
        self.card_view.setHtml("<br>".join(lines))

    # ---------------------------------------------------------------- choices
    def select(self, slot: str, path: str | Path) -> None:
        """Choose the model at ``path`` for ``slot``."""
        cb = self.combos[slot]
        idx = cb.findData(str(path))
        if idx >= 0:
            cb.setCurrentIndex(idx)

    def selected_path(self, slot: str) -> Path | None:
        """The checkpoint chosen for a slot (None for none)."""
        cb = self.combos.get(slot) if hasattr(self, "combos") else None
        if cb is None:
            return None
        data = cb.currentData()
        return Path(data) if data else None

    def selected(self) -> dict[str, Path]:
        """``slot -> checkpoint`` for every slot with a model chosen."""
        return {s: p for s in SLOTS if (p := self.selected_path(s)) is not None}

    def device(self) -> str:
        """The device asked for (auto, cuda, mps or cpu)."""
        return self.device_combo.currentText()

    def set_in_use(self, device: str | None) -> None:
        """Show the device a worker actually used."""
        self.in_use_device = device
        self.in_use_label.setText(device or "—")

    def _device_changed(self) -> None:
        try:
            from napari_iaa.models import pick_device

            self.in_use_label.setText(f"{pick_device(self.device())} (on next run)")
        except Exception as exc:  # noqa: BLE001
            self.in_use_label.setText(f"unavailable: {exc}")
        self.selection_changed.emit()

    def _update_detected(self) -> None:
        try:
            from napari_iaa.models import describe_devices

            desc = describe_devices()
            if isinstance(desc, Mapping) and "names" in desc:
                desc = "; ".join(f"{k}: {v}" for k, v in desc["names"].items()) + (
                    f" (auto -> {desc.get('auto', '?')})")
            elif isinstance(desc, Mapping):
                desc = ", ".join(f"{k}: {v}" for k, v in desc.items())
            elif isinstance(desc, list | tuple):
                desc = ", ".join(map(str, desc))
            self.detected_label.setText(str(desc))
        except Exception:  # noqa: BLE001 - fall back on torch directly
            import torch

            found = ["cpu"]
            if torch.cuda.is_available():
                found.insert(0, f"cuda ({torch.cuda.get_device_name(0)})")
            if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
                found.insert(0, "mps")
            self.detected_label.setText(", ".join(found))
        self._device_changed()

