"""The data-set table's review row: a status filter, the progress line and Refresh.

The progress line reads "reviewed k of n, flagged m, accepted a": cases with any status
but ``unreviewed``, cases the flag rules flag (agreement), cases accepted.
"""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from napari_iaa.widgets.dataset.status_text import StatusText

__all__ = ["STATUS_FILTERS", "ReviewControls", "progress_text"]

#: the status filter's choices: label -> status (None: every case)
STATUS_FILTERS = {
    "all cases": None,
    "unreviewed": "unreviewed",
    "reviewed": "reviewed",
    "accepted": "accepted",
    "re-annotate": "reannotate",
    "excluded": "excluded",
}


def progress_text(counts: dict[str, int], n: int, n_flagged: int) -> str:
    """``"reviewed k of n, flagged m, accepted a"`` from cases per status."""
    reviewed = n - counts.get("unreviewed", 0)
    return f"reviewed {reviewed} of {n}, flagged {n_flagged}, accepted {counts.get('accepted', 0)}"


class ReviewControls(QWidget):
    """Status filter, review progress and a Refresh button.

    Signals
    -------
    status_filter_changed(object) : the status to show (None: all).
    refresh_requested() : read the verdicts from the store again.
    """

    status_filter_changed = Signal(object)
    refresh_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        # its counts change with every scored batch: no relayout of the window for that
        self.progress_label = StatusText("no verdicts yet")
        row.addWidget(self.progress_label, 1)
        row.addWidget(QLabel("status"))
        self.status_combo = QComboBox()
        self.status_combo.addItems(list(STATUS_FILTERS))
        self.status_combo.setToolTip("show only the cases with this review status")
        self.status_combo.currentTextChanged.connect(
            lambda t: self.status_filter_changed.emit(STATUS_FILTERS.get(t)))
        row.addWidget(self.status_combo)
        self.refresh_btn = QPushButton("Refresh")
        self.refresh_btn.setToolTip(
            "read the verdicts again from the review store (another window's or a "
            "script's verdicts appear)")
        self.refresh_btn.clicked.connect(self.refresh_requested)
        row.addWidget(self.refresh_btn)

    def set_status_filter(self, status: str | None) -> None:
        """Choose the filter by status (None: all cases)."""
        for label, value in STATUS_FILTERS.items():
            if value == status:
                self.status_combo.setCurrentText(label)
                return
        raise ValueError(f"no status filter {status!r}: use one of {list(STATUS_FILTERS.values())}")

    def show_progress(self, counts: dict[str, int], n: int, n_flagged: int) -> None:
        """Update the progress line."""
        self.progress_label.setText(progress_text(counts, n, n_flagged))
