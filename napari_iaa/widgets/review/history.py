"""The review dock's edit history: each mask's saved versions, loading any of them.

:class:`EditsPanel` lists the saved edits of one mask of the open case (version, reviewer,
time, current; the original first) from the review store, loads the chosen version into
the mask's layer and makes it the current one (the version a reopened case loads), and
has the "show originals" toggle: reopen the case with the original masks instead of their
current edits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.data import read_mask
from napari_iaa.errors import IAAError
from napari_iaa.widgets._common import notify_error, refill_combo
from napari_iaa.widgets.review.edits import dock_reviewer, dock_store

__all__ = ["HISTORY_COLUMNS", "EditsPanel"]

HISTORY_COLUMNS = ["version", "reviewer", "time", "current"]


class EditsPanel(QWidget):
    """Edit history of the open case's masks, and the originals toggle.

    Parameters
    ----------
    dock : ReviewWidget
        The review dock (its store, reviewer, live masks and layers).
    """

    def __init__(self, dock: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dock = dock
        #: (version id or None for the original, file) per table row
        self._rows: list[tuple[int | None, Path | None]] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.originals_check = QCheckBox("show originals")
        self.originals_check.setToolTip(
            "reopen the case with the annotators' original masks instead of the latest "
            "saved edits (the edits stay saved and current)"
        )
        self.originals_check.toggled.connect(self.set_show_originals)
        top = QHBoxLayout()
        top.addWidget(QLabel("Edit history of"))
        self.mask_combo = QComboBox()
        self.mask_combo.currentIndexChanged.connect(lambda _i: self.refresh())
        top.addWidget(self.mask_combo, 1)
        top.addWidget(self.originals_check)
        lay.addLayout(top)
        self.table = QTableWidget(0, len(HISTORY_COLUMNS))
        self.table.setHorizontalHeaderLabels(HISTORY_COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMaximumHeight(140)
        lay.addWidget(self.table)
        row = QHBoxLayout()
        self.status_label = QLabel("")
        self.status_label.setStyleSheet("color: gray;")
        # a long edited-file name must not widen the dock: clipped, whole in the tooltip
        self.status_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.load_btn = QPushButton("Load version")
        self.load_btn.setToolTip("load the selected version into the mask's layer and make "
                                 "it the current one (the one a reopened case loads)")
        self.load_btn.clicked.connect(self.load_selected)
        row.addWidget(self.status_label, 1)
        row.addWidget(self.load_btn)
        lay.addLayout(row)
        dock.on_edits_changed(self.refresh_masks)
        self.refresh_masks()

    # -- read-outs ----------------------------------------------------------------------
    def mask_id(self) -> str | None:
        """The mask whose history is listed."""
        return self.mask_combo.currentText() or None

    def rows(self) -> list[list[str]]:
        """The table's text, row by row (tests and scripts)."""
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]

    # -- refresh ------------------------------------------------------------------------
    def refresh_masks(self) -> None:
        """Refill the mask choice from the open case, then the table."""
        live = self.dock.live
        ids = list(live.ids) if live is not None else []
        self.mask_combo.blockSignals(True)
        refill_combo(self.mask_combo, ids)
        self.mask_combo.blockSignals(False)
        self.refresh()

    def refresh(self) -> None:
        """List the versions of the chosen mask (the original first)."""
        mid, case_id = self.mask_id(), self.dock.case_id
        store = dock_store(self.dock) if mid and case_id else None
        versions = []
        if store is not None:
            try:
                versions = store.edit_versions(case_id, mid)
            except IAAError as exc:
                notify_error(str(exc))
        shown = self.dock.loaded_edits.get(mid) if mid else None
        any_current = any(v.is_current for v in versions)
        self._rows = [(None, None)] + [(v.id, v.path) for v in versions]
        texts = [["original", "", "", "" if any_current else "yes"]]
        texts += [[str(v.id), v.reviewer or "", _short_time(v.created),
                   "yes" if v.is_current else ""] for v in versions]
        self.table.setRowCount(len(texts))
        for r, cells in enumerate(texts):
            for c, text in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.load_btn.setEnabled(bool(mid) and self.dock.live is not None)
        where = shown.name if shown else "the original"
        self.status_label.setText(f"{mid} shows {where}" if mid else "no case open")
        self.status_label.setToolTip(self.status_label.text())

    # -- actions ------------------------------------------------------------------------
    def set_show_originals(self, on: bool) -> None:
        """Reopen the case showing the original masks (``on``) or their current edits."""
        self.dock.show_originals = bool(on)
        if self.originals_check.isChecked() != bool(on):
            self.originals_check.blockSignals(True)
            self.originals_check.setChecked(bool(on))
            self.originals_check.blockSignals(False)
        case_id = self.dock.case_id
        if case_id and self.dock.dataset is not None and case_id in self.dock.dataset.ids:
            if self.dock.unsaved_mask_ids() and not self.dock._confirm_leave():
                return
            self.dock.open_case(case_id, _confirmed=True)

    def load_selected(self) -> bool:
        """Load the selected row's version (default: the newest)."""
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        r = rows[0].row() if rows else len(self._rows) - 1
        return self.load_version(self._rows[r][0]) if self._rows else False

    def load_version(self, version_id: int | None) -> bool:
        """Load a saved version (None: the original) into the mask's layer; make it current.

        Returns False (notified) when it cannot be read or there is no such version.
        """
        dock, mid = self.dock, self.mask_id()
        layer = dock.annotator_layers().get(mid) if mid else None
        if layer is None or dock.live is None:
            return False
        path = dict(self._rows).get(version_id) if version_id is not None else \
            dock._mask_info.get(mid, {}).get("mask_path")
        if path is None:
            notify_error(f"{mid}: no file for version {version_id}")
            return False
        try:
            mask = np.asarray(read_mask(path, shape=np.shape(layer.data)), dtype=bool)
        except (IAAError, OSError, ValueError) as exc:
            notify_error(f"{path}: cannot load this version of {mid} ({exc})")
            return False
        case_id, who = dock.case_id, dock_reviewer(dock)

        def make_current(store: Any) -> None:
            if store is None or store.read_only or not case_id:
                return  # shown, not recorded (the store says why where it is shown)
            try:
                store.set_current_edit(case_id, mid, version_id, reviewer=who)
            except IAAError as exc:
                notify_error(str(exc))

        dock.verdicts.when_open(make_current)
        layer.data = mask.astype(np.uint8)
        dock._baseline[mid] = mask.copy()
        if version_id is None:
            dock.loaded_edits.pop(mid, None)
        else:
            dock.loaded_edits[mid] = Path(path)
        dock.notify_edits_changed()
        return True


def _short_time(iso: str) -> str:
    """``2026-01-02T03:04:05.123Z`` -> ``2026-01-02 03:04:05`` (UTC)."""
    return iso[:19].replace("T", " ") if iso else ""
