"""The review dock's notes on masks: one line per mask of the open case ("r2 missed the
spiculation"), kept in the review store.

:class:`MaskNotesPanel` lists the open case's masks with their annotator, note and who
wrote it; editing a note cell saves it (in a worker, through the dock's store once it is
open; an empty note removes it). ``napari-iaa review export`` writes the notes in its
``mask_notes`` column.
"""

from __future__ import annotations

import contextlib
from typing import Any

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.errors import IAAError
from napari_iaa.widgets._common import notify_error, start_worker
from napari_iaa.widgets.review.edits import dock_reviewer, dock_store

__all__ = ["NOTE_COLUMNS", "MaskNotesPanel"]

NOTE_COLUMNS = ["mask", "annotator", "note", "by"]
_NOTE = NOTE_COLUMNS.index("note")


class MaskNotesPanel(QWidget):
    """Notes on the masks of the open case.

    Parameters
    ----------
    dock : ReviewWidget
        The review dock (its case, masks, reviewer and store).

    Signals
    -------
    note_saved(object) : a note was written (the :class:`~napari_iaa.review.MaskNote`, or
        None when one was removed).
    """

    note_saved = Signal(object)

    def __init__(self, dock: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dock = dock
        self._filling = False
        self._pending = 0
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Notes on masks (double-click a note to write; Enter saves)"))
        self.table = QTableWidget(0, len(NOTE_COLUMNS))
        self.table.setHorizontalHeaderLabels(NOTE_COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.DoubleClicked
                                   | QAbstractItemView.EditKeyPressed
                                   | QAbstractItemView.AnyKeyPressed)
        self.table.setSelectionBehavior(QAbstractItemView.SelectItems)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(_NOTE, QHeaderView.Stretch)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setMaximumHeight(180)
        self.table.itemChanged.connect(self._on_changed)
        lay.addWidget(self.table)
        self.status_label = QLabel("")
        self.status_label.setStyleSheet("color: gray;")
        self.status_label.setWordWrap(True)
        lay.addWidget(self.status_label)
        dock.on_edits_changed(self.refresh)
        self.refresh()

    # -- read-outs ----------------------------------------------------------------------
    def notes(self) -> dict[str, str]:
        """Mask id -> the note shown (empty: none)."""
        return {self.table.item(r, 0).text(): self.table.item(r, _NOTE).text()
                for r in range(self.table.rowCount())}

    @property
    def busy(self) -> bool:
        """Whether notes are still being written."""
        return self._pending > 0

    # -- refresh ------------------------------------------------------------------------
    def refresh(self) -> None:
        """One row per mask of the open case, with the store's notes."""
        dock, live = self.dock, self.dock.live
        ids = list(live.ids) if live is not None else []
        store = dock_store(dock) if dock.case_id and ids else None
        notes = {}
        if store is not None:
            try:
                notes = store.mask_notes(dock.case_id)
            except IAAError as exc:
                notify_error(str(exc))
        writable = store is not None and not store.read_only
        self._filling = True
        try:
            self.table.setRowCount(len(ids))
            for r, mid in enumerate(ids):
                n = notes.get(mid)
                annotator = dock._mask_info.get(mid, {}).get("annotator") or mid
                cells = [mid, str(annotator), n.note if n else "", (n.reviewer or "") if n else ""]
                for c, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    flags = item.flags() & ~Qt.ItemIsEditable
                    if c == _NOTE and writable:
                        flags |= Qt.ItemIsEditable
                    item.setFlags(flags)
                    if c == _NOTE and n:
                        item.setToolTip(f"{n.note}\n({n.reviewer}, {n.updated[:19]} UTC)")
                    self.table.setItem(r, c, item)
        finally:
            self._filling = False
        if not ids:
            self.status_label.setText("no case open")
        elif store is None:
            self.status_label.setText("the review store is opening…" if dock.verdicts.opening
                                      else "no review store")
        elif not writable:
            self.status_label.setText("the review store is read-only: notes cannot be written")
        else:
            self.status_label.setText(f"{len(notes)} note(s) on {len(ids)} masks")

    # -- writing ------------------------------------------------------------------------
    def set_note(self, mask_id: str, text: str) -> bool:
        """Write the note on ``mask_id`` of the open case (empty: remove it), in a worker."""
        dock, case_id = self.dock, self.dock.case_id
        store = dock_store(dock)
        if not case_id or store is None or store.read_only:
            why = (store.problem or "read-only") if store is not None else "no review store"
            notify_error(f"note on {mask_id} not saved ({why})")
            return False
        self._pending += 1
        text = text.strip()
        start_worker(
            store.set_mask_note, case_id, mask_id, text or None, dock_reviewer(dock),
            on_return=self._on_saved,
            on_error=lambda exc: notify_error(f"case {case_id}: note on {mask_id} not saved "
                                              f"({exc})"),
            on_finish=self._on_finished,
        )
        return True

    def _on_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != _NOTE:
            return
        mid = self.table.item(item.row(), 0).text()
        self.set_note(mid, item.text())

    def _on_saved(self, note: Any) -> None:
        self.note_saved.emit(note)

    def _on_finished(self) -> None:
        self._pending -= 1
        with contextlib.suppress(RuntimeError):  # the dock was closed meanwhile
            self.refresh()
