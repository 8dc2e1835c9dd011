"""The review dock's consensus export: the whole data set (or a part) in one go, in a worker.

:class:`ConsensusExportPanel` runs :func:`napari_iaa.review.export_consensus` (method
``majority``, ``staple`` or ``reviewed``; cases ``all``, ``accepted`` or ``flagged``) into an
output folder, in a worker thread with a progress bar and Cancel (the export stops before
the next case; ``consensus.csv`` lists what was written). The command line's
``napari-iaa consensus`` does the same.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.errors import IAAError
from napari_iaa.review import CONSENSUS_METHODS, EXPORT_SELECTIONS, export_consensus
from napari_iaa.widgets._common import (
    Progress,
    Relay,
    notify_error,
    notify_info,
    start_worker,
)
from napari_iaa.widgets._common.forms import PathEdit

__all__ = ["ConsensusExportPanel", "default_out_dir"]


def default_out_dir(dataset_root: Path, method: str) -> Path:
    """``<dataset>/.napari-iaa/consensus-<method>`` (hidden: readers skip it)."""
    root = Path(dataset_root)
    base = root.parent if root.is_file() else root
    return base / ".napari-iaa" / f"consensus-{method}"


class ConsensusExportPanel(QWidget):
    """Export a consensus mask per case of the dock's data set, and ``consensus.csv``.

    Parameters
    ----------
    dock : ReviewWidget
        The review dock (its data set).

    Attributes
    ----------
    result : ConsensusExport or None
        What the last finished export did.
    """

    def __init__(self, dock: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dock = dock
        self.result: Any = None
        self._worker: Any = None
        self._stop = threading.Event()
        self._relay = Relay()
        self._relay.message.connect(self._on_progress)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Consensus"))
        self.method_combo = QComboBox()
        self.method_combo.addItems(list(CONSENSUS_METHODS))
        self.method_combo.setToolTip(
            "majority: foreground where at least half of the annotators marked it; STAPLE: "
            "probability above 0.5; reviewed: the final mask chosen per case (others missing)"
        )
        self.only_combo = QComboBox()
        self.only_combo.addItems(list(EXPORT_SELECTIONS))
        self.only_combo.setToolTip("all cases, those accepted in the review, or the flagged ones")
        row.addWidget(self.method_combo)
        row.addWidget(QLabel("cases"))
        row.addWidget(self.only_combo)
        lay.addLayout(row)
        self.out_edit = PathEdit(title="Consensus output folder",
                                 placeholder="output folder (default: <data set>/.napari-iaa/…)")
        lay.addWidget(self.out_edit)
        brow = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setVisible(False)
        self.export_btn = QPushButton("Export")
        self.export_btn.clicked.connect(self.start)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        brow.addWidget(self.progress_bar, 1)
        brow.addWidget(self.export_btn)
        brow.addWidget(self.cancel_btn)
        lay.addLayout(brow)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setStyleSheet("color: gray;")
        lay.addWidget(self.status_label)

    def running(self) -> bool:
        """Whether an export is under way."""
        return self.cancel_btn.isEnabled()

    def out_dir(self) -> Path | None:
        """The chosen output folder (the default one when the field is empty)."""
        text = self.out_edit.text()
        if text:
            return Path(text).expanduser()
        ds = self.dock.dataset
        return default_out_dir(ds.root, self.method_combo.currentText()) if ds else None

    def start(self) -> bool:
        """Start the export in a worker; False when there is nothing to export or one runs."""
        ds = self.dock.dataset
        if ds is None:
            notify_error("open a data set first")
            return False
        if self.running():
            return False
        method, only, out = self.method_combo.currentText(), self.only_combo.currentText(), \
            self.out_dir()
        self._stop.clear()
        self.result = None
        self.export_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.progress_bar.setRange(0, max(len(ds.ids), 1))
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(True)
        self.status_label.setText(f"exporting the {method} consensus ({only}) to {out}…")
        relay = self._relay

        def report(done: int, total: int) -> None:
            relay.send(Progress(done, total, f"{done} of {total} cases"))

        self._worker = start_worker(
            export_consensus, ds, method=method, only=only, out_dir=out, progress=report,
            should_stop=self._stop.is_set, on_return=self._on_done, on_error=self._on_error,
            on_finish=self._on_finish,
        )
        return True

    def cancel(self) -> None:
        """Stop the export before its next case."""
        self._stop.set()
        self.status_label.setText("cancelling…")

    def _on_progress(self, p: Progress) -> None:
        self.progress_bar.setRange(0, max(p.total, 1))
        self.progress_bar.setValue(p.done)
        self.status_label.setText(p.text)

    def _on_done(self, result: Any) -> None:
        self.result = result
        parts = [f"{result.n_written} of {result.n_selected} cases written to {result.out_dir}"]
        if result.stopped:
            parts.append("cancelled")
        if result.missing:
            parts.append(f"{len(result.missing)} without a final mask")
        if result.problems:
            parts.append(f"{len(result.problems)} problems: {result.problems[0]}")
        text = "; ".join(parts)
        self.status_label.setText(text)
        notify_info(f"consensus: {text}")

    def _on_error(self, exc: BaseException) -> None:
        msg = str(exc) if isinstance(exc, IAAError | OSError) else \
            f"{type(exc).__name__}: {exc}"
        self.status_label.setText(f"export failed: {msg}")
        notify_error(f"consensus export failed: {msg}")

    def _on_finish(self) -> None:
        self.export_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)
        self.progress_bar.setVisible(False)
