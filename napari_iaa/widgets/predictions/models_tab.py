"""The Models tab: every model the registry finds, its match to the open data, one model
per task, the device.

Lists the models of the shared :class:`~napari_iaa.models.ModelRegistry` (shipped
``sample_data/models``, the user folder, files the user picks, models trained in the
training dock). The list is read in a worker (:mod:`.models_load`: torch and timm load
there, the tab says it is loading); the tab owns its workers, so a scan that ends after the
dock closed calls nothing of it. Per task the model whose card best matches the open
data is chosen, until the user chooses one; a warning says when the open data do not
match a chosen model. A model trained in the training dock is offered, never switched to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qtpy.QtCore import QTimer, Signal
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
from napari_iaa.widgets._common import metrics_summary, notify_error, notify_warning
from napari_iaa.widgets._common.model_events import MODEL_EVENTS, shared_registry
from napari_iaa.widgets.predictions.jobs import ModelKey
from napari_iaa.widgets.predictions.models_load import (
    Listing,
    Matching,
    ModelInfo,
    info_of,
    match_models,
    scan_models,
)
from napari_iaa.widgets.predictions.offer import OfferBanner, mismatch_lines
from napari_iaa.widgets.predictions.worker_slot import WorkerSlot

__all__ = ["SLOTS", "ModelInfo", "ModelSettingsWidget", "card_summary"]

#: the predictor slots, one model each
SLOTS = ("iaa", "mhr", "quality")
_SLOT_LABELS = {"iaa": "IAA model", "mhr": "MHR model", "quality": "Quality model"}
_CARD_KEYS = ("task", "architecture", "backbone", "input_size", "n_levels", "classes",
              "calibrator", "training_data", "domain", "metrics")
_COLUMNS = ["name", "task", "match to data", "source", "held-out metrics", "calibrated"]
#: the first scan starts when the dock has been painted (``start_first_scan``), at the
#: latest this long after the tab is built (loading torch in the worker holds the GIL for
#: up to ~70 ms at a time: it should not compete with the dock's first paint)
FIRST_SCAN_DELAY_MS = 1000


def card_summary(card: Any, limit: int = 3) -> str:
    """Held-out metrics of a model card in one short line (see :func:`metrics_summary`)."""
    return metrics_summary(card.metrics, limit)


def _card_html(m: ModelInfo) -> str:
    d = m.card.to_dict()
    lines = [f"<b>{m.name}</b> ({m.source})<br><small>{m.path}</small>"]
    if m.why:
        lines.append(f"<i>{m.why}</i>")
    for key in _CARD_KEYS:
        if d.get(key) not in (None, "", {}, []):
            val = d[key]
            if isinstance(val, Mapping | list):
                val = json.dumps(val, default=str)[:300]
            lines.append(f"<b>{key}</b>: {val}")
    return "<br>".join(lines)


def _scan_job(get_registry: Any, extra: list[Path]) -> tuple[Any, Listing]:
    registry = get_registry()
    return registry, scan_models(registry, extra)


def _match_job(models: list[ModelInfo], data: Any, key: Any) -> tuple[Any, Matching]:
    return key, match_models(models, data)


class ModelSettingsWidget(QWidget):
    """Model list with cards and matches, one choice per task, offers, the device.

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
    loaded()
        The model list was (re)read and matched to the open data.
    mismatch(str)
        The warning about the open data and the chosen models ("" when none).
    """

    selection_changed = Signal()
    loaded = Signal()
    mismatch = Signal(str)

    def __init__(self, parent: QWidget | None = None, registry: Any = None) -> None:
        super().__init__(parent)
        self._registry = registry
        self._extra: list[Path] = []
        self.models: list[ModelInfo] = []
        self.in_use_device: str | None = None
        #: True once the model list has been read (in a worker)
        self.ready = False
        self.matching: Matching | None = None
        self._pinned: set[str] = set()  # slots the user chose a model for
        self._repick = True  # choose the best match at the next matching
        self._data: Any = None
        self._data_key: Any = None
        self._offer_paths: list[Path] = []
        self._warned: set[tuple[str, Any]] = set()
        self._scan = WorkerSlot(self)
        self._match = WorkerSlot(self)
        self._again = {"scan": False, "match": False}

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.status_label = QLabel("loading models (torch, timm)…")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        self.offer_banner = OfferBanner(self)
        self.offer_banner.accepted.connect(self._accept_offer)
        layout.addWidget(self.offer_banner)
        self.warning_label = QLabel()
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("color: #e8a33d;")
        self.warning_label.hide()
        layout.addWidget(self.warning_label)
        layout.addWidget(self._build_models_box())
        layout.addWidget(self._build_device_box())
        MODEL_EVENTS.registered.connect(self._on_registered)
        self._scan_asked = False
        first = QTimer(self)  # a child: it dies with the tab
        first.setSingleShot(True)
        first.timeout.connect(self.start_first_scan)
        first.start(FIRST_SCAN_DELAY_MS)

    def start_first_scan(self) -> None:
        """Read the model list now unless a scan was already asked for."""
        if not self._scan_asked:
            self.refresh()

    # ---------------------------------------------------------------- layout
    def _build_models_box(self) -> QGroupBox:
        box = QGroupBox("Models")
        bl = QVBoxLayout(box)
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(_COLUMNS)
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
            cb.addItem("(loading…)", None)
            cb.currentIndexChanged.connect(self._choice_changed)
            cb.activated.connect(lambda _i, s=slot: self._pinned.add(s))  # the user's pick
            self.combos[slot] = cb
            form.addRow(_SLOT_LABELS[slot], cb)
        bl.addLayout(form)
        return box

    def _build_device_box(self) -> QGroupBox:
        box = QGroupBox("Device")
        dl = QFormLayout(box)
        self.device_combo = QComboBox()
        self.device_combo.addItem("auto")  # the others once torch has loaded
        self.device_combo.currentIndexChanged.connect(self._device_changed)
        self.detected_label = QLabel("…")
        self.detected_label.setWordWrap(True)
        self.in_use_label = QLabel("—")
        dl.addRow("device", self.device_combo)
        dl.addRow("detected", self.detected_label)
        dl.addRow("in use", self.in_use_label)
        return box

    @property
    def loading(self) -> bool:
        """True while the model list is read or matched to the open data (in workers)."""
        return self._scan.running or self._match.running or not self.ready

    # ---------------------------------------------------------------- registry
    @property
    def registry(self) -> Any:
        """The registry listed here."""
        if self._registry is None:
            self._registry = shared_registry()
        return self._registry

    def _get_registry(self) -> Any:  # in the worker: creating it imports torch
        return self._registry if self._registry is not None else shared_registry()

    def refresh(self) -> None:
        """Re-read the registry and the picked files in a worker, then match them."""
        self._scan_asked = True
        if self._scan.running:
            self._again["scan"] = True
            return
        self.status_label.setText("loading models (torch, timm)…" if not self.ready
                                  else "rescanning models…")
        self._scan.start(_scan_job, self._get_registry, list(self._extra),
                         on_return=self._scanned, on_error=self._failed,
                         on_finish=lambda: self._finished("scan"), owner=self)

    def _finished(self, kind: str) -> None:
        """A scan or match ended: run the one asked for meanwhile; a scan is followed by
        a match (the slot is idle only now, after ``on_return``)."""
        again, self._again[kind] = self._again[kind], False
        if kind == "scan" and again:
            self.refresh()
        elif kind == "scan" or again:
            self._start_match()

    def _failed(self, exc: BaseException) -> None:
        self.status_label.setText(f"models could not be read: {exc}")
        notify_error(f"model registry: {exc}")

    def _scanned(self, result: tuple[Any, Listing]) -> None:
        self._registry, listing = result
        self.models = listing.models
        for err in listing.errors:
            notify_error(err)
        self.status_label.setToolTip("\n".join(listing.problems))
        if self.device_combo.count() != len(listing.device_choices):
            self.device_combo.blockSignals(True)
            self.device_combo.clear()
            self.device_combo.addItems(list(listing.device_choices))
            self.device_combo.blockSignals(False)
        desc = listing.devices
        if desc:
            self.detected_label.setText(
                "; ".join(f"{k}: {v}" for k, v in desc["names"].items())
                + f" (auto -> {desc['auto']})")
        self._device_changed()

    # ---------------------------------------------------------------- matching
    def set_data(self, key: Any, data: Any) -> None:
        """The open data changed: a data set or case list (``key`` says which); the best
        matching models are chosen for the tasks the user has not chosen a model for."""
        if key == self._data_key:
            return
        self._data_key, self._data = key, data
        self._repick = True
        if self.models or self.ready:
            self._start_match()

    def _start_match(self) -> None:
        if self._scan.running:
            return  # the scan's end starts it
        if self._match.running:
            self._again["match"] = True
            return
        self._match.start(_match_job, list(self.models), self._data, self._data_key,
                          on_return=self._matched, on_error=self._failed,
                          on_finish=lambda: self._finished("match"), owner=self)

    def _matched(self, result: tuple[Any, Matching]) -> None:
        key, matching = result
        if key != self._data_key:  # the data changed meanwhile: its own match follows
            return
        self.matching = matching
        for m in self.models:
            m.match, m.why = matching.matches.get(m.path, (None, ""))
        keep = {s: self.selected_path(s) for s in SLOTS}
        if self._repick:
            self._repick = False
            for slot, path in matching.best.items():
                if slot not in self._pinned or keep.get(slot) is None:
                    keep[slot] = path
        self._fill_table()
        self._fill_combos(keep)
        dom = matching.domain
        self.status_label.setText(
            f"{len(self.models)} models" + (f"; open data: {dom.describe()}" if dom else
                                            "; no data open to match them to"))
        self.ready = True
        self._show_offers()
        self._update_warning()
        self.loaded.emit()

    # ---------------------------------------------------------------- offers
    def _on_registered(self, path: str) -> None:
        """A model was trained or registered elsewhere: list it and offer it (never chosen)."""
        self._offer_paths.append(Path(path).resolve())
        self.refresh()

    def _show_offers(self) -> None:
        while self._offer_paths:
            path = self._offer_paths.pop(0)
            new = next((m for m in self.models if m.path.resolve() == path), None)
            if new is None or new.slot is None or self.selected_path(new.slot) == new.path:
                continue
            self.offer_banner.offer(new, self.chosen_info(new.slot))

    def _accept_offer(self, path: str) -> None:
        info = next((m for m in self.models if str(m.path) == path), None)
        if info is not None and info.slot:
            self.select(info.slot, info.path)

    # ---------------------------------------------------------------- user files
    def add_path(self, path: str | Path, select: bool = True) -> ModelInfo | None:
        """Add a checkpoint the user picked and (``select``) choose it for its task."""
        from napari_iaa.models import ModelEntry, read_checkpoint_card

        try:
            card, p, weights = read_checkpoint_card(Path(path))
            if not weights.is_file():
                raise CheckpointError(f"{weights}: weights file missing")
        except (IAAError, OSError) as exc:
            notify_error(f"cannot add model: {exc}")
            return None
        try:
            entry = self.registry.register(p)
        except CheckpointError:  # keep it as a picked path instead
            entry = ModelEntry(p, card, weights, "picked")
            if p not in self._extra:
                self._extra.append(p)
        info = next((m for m in self.models if m.path.resolve() == entry.path.resolve()), None)
        if info is None:
            info = info_of(entry)
            if self.matching is not None and self.matching.domain is not None:
                info.match = entry.match(self.matching.domain)
            self.models.append(info)
            self._fill_table()
            self._fill_combos({s: self.selected_path(s) for s in SLOTS})
        if select and info.slot:
            self.select(info.slot, info.path)
        return info

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Model checkpoint", "", "Checkpoints (*.safetensors *.json)")
        if path:
            self.add_path(path)

    # ---------------------------------------------------------------- views
    def _fill_table(self) -> None:
        self.table.setRowCount(len(self.models))
        for r, m in enumerate(self.models):
            match = "—" if m.match is None else (
                "unknown (no domain on its card)" if not m.match.known else
                f"{m.match.score:.2f}" + ("" if m.match.ok else " (does not match)"))
            vals = [m.name, m.task, match, m.source, card_summary(m.card),
                    "yes" if m.card.calibrator is not None else
                    ("uncalibrated" if m.task == "mhr" else "—")]
            for c, v in enumerate(vals):
                it = QTableWidgetItem(v)
                it.setToolTip(m.why or str(m.path))
                self.table.setItem(r, c, it)

    def _fill_combos(self, keep: Mapping[str, Path | None]) -> None:
        for slot, cb in self.combos.items():
            cb.blockSignals(True)
            cb.clear()
            cb.addItem("(none)", None)
            for m in self.models:
                if m.slot == slot:
                    cb.addItem(m.label(), str(m.path))
                    cb.setItemData(cb.count() - 1, m.why or str(m.path), 3)  # tooltip
            want = keep.get(slot)
            idx = cb.findData(str(want)) if want else -1
            if idx < 0 and cb.count() > 1 and want is None and slot not in self._pinned:
                idx = 1
            cb.setCurrentIndex(max(idx, 0))
            cb.blockSignals(False)
        self.selection_changed.emit()

    def _show_card(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.card_view.setHtml(_card_html(self.models[rows[0].row()]))

    def _choice_changed(self) -> None:
        self._update_warning()
        self.selection_changed.emit()

    def _update_warning(self) -> None:
        chosen = [m for s in SLOTS if (m := self.chosen_info(s)) is not None]
        lines = mismatch_lines(chosen)
        text = "" if not lines else "⚠ " + "<br>⚠ ".join(lines)
        self.warning_label.setText(text)
        self.warning_label.setVisible(bool(text))
        for m in chosen:
            key = (str(m.path), self._data_key)
            if m.match is not None and not m.match.ok and key not in self._warned:
                self._warned.add(key)
                notify_warning(f"the open data do not match the training data of {m.name}: "
                               f"{m.match.explain()}")
        self.mismatch.emit(text)

    # ---------------------------------------------------------------- choices
    def select(self, slot: str, path: str | Path) -> None:
        """Choose the model at ``path`` for ``slot`` (as the user would: it stays chosen)."""
        cb = self.combos[slot]
        idx = cb.findData(str(path))
        if idx >= 0:
            self._pinned.add(slot)
            cb.setCurrentIndex(idx)

    def selected_path(self, slot: str) -> Path | None:
        """The checkpoint chosen for a slot (None for none)."""
        data = self.combos[slot].currentData()
        return Path(data) if data else None

    def chosen_info(self, slot: str) -> ModelInfo | None:
        """The listed model chosen for a slot (None for none)."""
        path = self.selected_path(slot)
        return next((m for m in self.models if m.path == path), None) if path else None

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
        from napari_iaa.models import pick_device  # the combo offers more once torch loaded

        try:
            self.in_use_label.setText(f"{pick_device(self.device())} (on next run)")
        except ConfigError as exc:
            self.in_use_label.setText(f"unavailable: {exc}")
        self.selection_changed.emit()
