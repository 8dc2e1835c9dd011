"""The review dock's adjudicated mask: the reviewer's final mask of a case, saved and recorded.

:class:`AdjudicationPanel` offers the majority vote or STAPLE of the case's masks as they
are now, one annotator's mask (``edited`` when its layer shows a saved or unsaved edit), or
any other Labels layer; saving writes it atomically as a new file
``<case>_adjudicated-by-<reviewer>-<time>`` in the case's format (a volume keeps the image's
format and header, 2D is a 0/255 PNG) into the ``adjudicated`` folder beside the review
store (``<dataset>/.napari-iaa/adjudicated``: hidden, so no reader takes it for an
annotator), and records the choice (method and file) in the store. The consensus export's
``reviewed`` method writes these masks.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_iaa.data.writers import save_adjudicated_mask
from napari_iaa.errors import IAAError
from napari_iaa.review import consensus_mask
from napari_iaa.widgets._common import notify_error, notify_info, refill_combo, start_worker
from napari_iaa.widgets.review.edits import dock_reviewer, dock_store

__all__ = ["AdjudicationPanel", "adjudicated_folder", "build_adjudicated"]


def adjudicated_folder(store: Any) -> Path:
    """Where a store's adjudicated masks are written: ``adjudicated`` beside the store file."""
    return Path(store.path).parent / "adjudicated"


def build_adjudicated(kind: str, data: Any, folder: Path, case_id: str, reviewer: str,
                      image_path: Any, like: Any) -> Path:
    """Compute (``majority``/``staple`` of ``data``, a dict of masks; else ``data`` is the
    mask) and write the adjudicated mask; returns its file (a worker's job)."""
    mask = consensus_mask(data, kind) if kind in ("majority", "staple") else np.asarray(data)
    return save_adjudicated_mask(mask != 0, folder, case_id, reviewer, image_path, like=like)


class AdjudicationPanel(QWidget):
    """Pick the final mask of the open case and save it.

    Parameters
    ----------
    dock : ReviewWidget
        The review dock (its store, reviewer, live masks, layers and viewer).

    Attributes
    ----------
    last_saved : Path or None
        The file the last save wrote.
    """

    def __init__(self, dock: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dock = dock
        self.last_saved: Path | None = None
        self._worker: Any = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Final mask"))
        self.source_combo = QComboBox()
        self.source_combo.setToolTip(
            "the case's adjudicated mask: majority vote or STAPLE of the masks as they are "
            "now, one annotator's mask (as shown: an edit counts as 'edited'), or any other "
            "Labels layer"
        )
        row.addWidget(self.source_combo, 1)
        self.refresh_btn = QPushButton("↻")
        self.refresh_btn.setFixedWidth(30)
        self.refresh_btn.setToolTip("list the viewer's Labels layers again")
        self.refresh_btn.clicked.connect(self.refresh)
        self.save_btn = QPushButton("Save final")
        self.save_btn.setToolTip(
            "write the chosen mask as <case>_adjudicated-by-<reviewer>-<time> (the case's "
            "format) beside the review store, and record the choice"
        )
        self.save_btn.clicked.connect(self.save)
        row.addWidget(self.refresh_btn)
        row.addWidget(self.save_btn)
        lay.addLayout(row)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setStyleSheet("color: gray;")
        lay.addWidget(self.status_label)
        dock.on_edits_changed(self.refresh)
        self.refresh()

    # -- choices ------------------------------------------------------------------------
    def choices(self) -> list[tuple[str, str]]:
        """(label, key) of each source: ``majority``, ``staple``, ``mask:<id>``, ``layer:<name>``."""
        dock = self.dock
        if dock.live is None:
            return []
        out = [("majority vote", "majority"), ("STAPLE", "staple")]
        edited = set(dock.loaded_edits)
        for mid in dock.live.ids:
            note = " (edited)" if mid in edited else ""
            out.append((f"annotator {mid}{note}", f"mask:{mid}"))
        ours = {id(lay) for lay in dock.annotator_layers().values()}
        from napari.layers import Labels

        for layer in dock.viewer.layers:
            if isinstance(layer, Labels) and id(layer) not in ours:
                out.append((f"layer {layer.name}", f"layer:{layer.name}"))
        return out

    def refresh(self) -> None:
        """Refill the sources and show the case's recorded choice."""
        refill_combo(self.source_combo, self.choices())
        dock = self.dock
        self.save_btn.setEnabled(dock.live is not None and bool(dock.case_id))
        store = dock_store(dock) if dock.case_id else None
        chosen = None
        if store is not None:
            try:
                chosen = store.adjudicated(dock.case_id)
            except IAAError as exc:
                notify_error(str(exc))
        self.status_label.setText(
            f"final: {chosen.method} by {chosen.reviewer}, {chosen.path.name}" if chosen
            else "no final mask chosen"
        )

    def select(self, key: str) -> None:
        """Choose a source by key (``majority``, ``staple``, ``mask:<id>``, ``layer:<name>``)."""
        self.refresh()
        index = self.source_combo.findData(key)
        if index < 0:
            raise KeyError(key)
        self.source_combo.setCurrentIndex(index)

    # -- saving -------------------------------------------------------------------------
    def _source(self, key: str) -> tuple[str, str, Any]:
        """(kind for :func:`build_adjudicated`, method for the store, masks or mask)."""
        dock = self.dock
        if key in ("majority", "staple"):
            return key, key, {m: a.copy() for m, a in dock.live.masks().items()}
        if key.startswith("mask:"):
            mid = key[5:]
            edited = mid in dock.loaded_edits or mid in dock.unsaved_mask_ids()
            method = "edited" if edited else f"annotator:{mid}"
            return "mask", method, dock.live.masks()[mid].copy()
        name = key[6:]
        layer = dock.viewer.layers[name]
        return "mask", f"layer:{name}", np.asarray(layer.data) != 0

    def save(self) -> bool:
        """Write the chosen mask (in a worker) and record it in the dock's store (at once,
        or as soon as it has opened); False when it cannot start."""
        dock, key = self.dock, self.source_combo.currentData()
        if dock.live is None or not dock.case_id or key is None:
            notify_error("open a case first")
            return False
        store = dock_store(dock)
        if (store is None and not dock.verdicts.opening) or (store is not None
                                                             and store.read_only):
            why = store.problem if store is not None and store.problem else "no writable store"
            notify_error(f"cannot record the final mask: {why}")
            return False
        try:
            kind, method, data = self._source(key)
        except (KeyError, ValueError) as exc:
            notify_error(f"{key}: no such mask or layer ({exc})")
            return False
        if kind == "mask" and np.shape(data) != np.shape(dock.live.mirrors[dock.live.ids[0]]):
            notify_error(f"{key}: its shape {np.shape(data)} is not the case's")
            return False
        case_id, who = dock.case_id, dock_reviewer(dock)
        entry = dock.dataset.entry(case_id) if dock.dataset is not None and \
            case_id in dock.dataset.ids else None
        image_path = entry.image_path if entry is not None else None
        like = SimpleNamespace(**dock.case_header())
        self.save_btn.setEnabled(False)
        self.status_label.setText("saving the final mask…")
        job = (kind, data, case_id, who, image_path, like, method)
        dock.verdicts.when_open(lambda opened: self._write(opened, *job))
        return True

    def _write(self, store: Any, kind: str, data: Any, case_id: str, who: str,
               image_path: Any, like: Any, method: str) -> None:
        """Write the mask in a worker, then record it (``store``: the dock's, now open)."""
        if store is None or store.read_only:
            why = store.problem if store is not None and store.problem else "no writable store"
            notify_error(f"cannot record the final mask: {why}")
            self.refresh()
            return

        def done(path: Path) -> None:
            try:
                store.set_adjudicated(case_id, method, path, reviewer=who)
            except IAAError as exc:
                notify_error(f"{path.name} written, but not recorded: {exc}")
                return
            self.last_saved = path
            notify_info(f"final mask of {case_id} ({method}) saved as {path}")
            self.refresh()

        def failed(exc: BaseException) -> None:
            notify_error(f"case {case_id}: cannot save the final mask ({exc})")
            self.refresh()

        self._worker = start_worker(
            build_adjudicated, kind, data, adjudicated_folder(store), case_id, who,
            image_path, like, on_return=done, on_error=failed,
        )
