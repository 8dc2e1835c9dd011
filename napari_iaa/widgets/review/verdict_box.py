"""The case tab's verdict box: reviewer name, where the store is, the case's verdict,
the verdict buttons and the comment.

Only the widgets: :mod:`.verdicts` opens the store, writes and reads verdicts.
"""

from __future__ import annotations

from qtpy.QtCore import QSettings, Signal
from qtpy.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.review import Verdict, default_reviewer

__all__ = ["STATUS_LABELS", "VerdictBox", "reviewer_settings", "saved_reviewer"]

#: button text of each status (the store's names are the statuses themselves)
STATUS_LABELS = {
    "accepted": "Accept",
    "reannotate": "Re-annotate",
    "excluded": "Exclude",
    "unreviewed": "Reset",
}
_SETTINGS_KEY = "review/reviewer"


def reviewer_settings() -> QSettings:
    """Where the reviewer's name is kept between sessions (tests replace this)."""
    return QSettings("napari-iaa", "napari-iaa")


def saved_reviewer() -> str:
    """The reviewer's name from the settings, else the OS user name."""
    try:
        name = reviewer_settings().value(_SETTINGS_KEY, "", type=str)
    except (TypeError, ValueError):
        name = ""
    return str(name or "").strip() or default_reviewer()


class VerdictBox(QGroupBox):
    """Verdict buttons, comment and read-outs of the open case.

    Signals
    -------
    verdict_requested(str, str) : a status button was pressed (status, comment).
    comment_requested(str) : Enter in the comment box (keep the status, save the comment).
    new_store_requested() : "Start a new review store" was pressed.
    """

    verdict_requested = Signal(str, str)
    comment_requested = Signal(str)
    new_store_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Verdict", parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        top.addWidget(QLabel("Reviewer"))
        self.reviewer_edit = QLineEdit(saved_reviewer())
        self.reviewer_edit.setToolTip(
            "recorded with every verdict and saved edit (kept for the next session)")
        self.reviewer_edit.editingFinished.connect(self._save_reviewer)
        top.addWidget(self.reviewer_edit, 1)
        lay.addLayout(top)
        self.store_label = QLabel("no review store (open a data set)")
        self.store_label.setWordWrap(True)
        self.store_label.setStyleSheet("color: gray;")
        lay.addWidget(self.store_label)
        self.new_store_btn = QPushButton("Start a new review store…")
        self.new_store_btn.clicked.connect(self.new_store_requested)
        self.new_store_btn.setVisible(False)
        lay.addWidget(self.new_store_btn)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        lay.addWidget(self.status_label)
        grid = QGridLayout()
        self.buttons: dict[str, QPushButton] = {}
        for i, (status, text) in enumerate(STATUS_LABELS.items()):
            btn = QPushButton(text)
            btn.clicked.connect(lambda _=False, s=status: self._request(s))
            grid.addWidget(btn, 0, i)
            self.buttons[status] = btn
        lay.addLayout(grid)
        self.comment_edit = QLineEdit()
        self.comment_edit.setPlaceholderText("comment (Enter saves it with the current status)")
        self.comment_edit.returnPressed.connect(
            lambda: self.comment_requested.emit(self.comment_edit.text()))
        lay.addWidget(self.comment_edit)
        self.set_writable(False, "")

    # -- reviewer ----------------------------------------------------------------------
    @property
    def reviewer(self) -> str:
        """The name recorded with verdicts (never empty)."""
        return self.reviewer_edit.text().strip() or default_reviewer()

    def set_reviewer(self, name: str) -> None:
        """Set (and keep for the next session) the reviewer's name."""
        self.reviewer_edit.setText(name)
        self._save_reviewer()

    def _save_reviewer(self) -> None:
        reviewer_settings().setValue(_SETTINGS_KEY, self.reviewer)

    # -- state -------------------------------------------------------------------------
    def _request(self, status: str) -> None:
        self.verdict_requested.emit(status, self.comment_edit.text())

    def set_writable(self, on: bool, why: str) -> None:
        """Enable the buttons and the comment, or disable them saying ``why``."""
        for btn in self.buttons.values():
            btn.setEnabled(on)
        self.comment_edit.setEnabled(on)
        for w in (*self.buttons.values(), self.comment_edit):
            w.setToolTip("" if on else why)

    def offer_new_store(self, on: bool, kept_name: str = "") -> None:
        """Show (``on``) or hide the button that starts a new store in place of one that
        cannot be used; ``kept_name``: what the old file will be called."""
        self.new_store_btn.setVisible(on)
        self.new_store_btn.setToolTip(
            f"set the unusable store aside (kept as {kept_name}, nothing is deleted) and "
            "start a new, empty one; the review then goes on writable" if on else "")

    def show_store(self, text: str, problem: bool = False) -> None:
        """Say where the store is (or what is wrong with it: ``problem``, in red)."""
        self.store_label.setText(text)
        self.store_label.setStyleSheet("color: #c0392b;" if problem else "color: gray;")

    def show_verdict(self, verdict: Verdict | None, pending: bool = False) -> None:
        """Show a case's verdict (None: no case or no store)."""
        if verdict is None:
            self.status_label.setText("")
            self.comment_edit.setText("")
            return
        text = f"<b>{verdict.status}</b>"
        if verdict.reviewer:
            text += f" by {verdict.reviewer}"
        if verdict.updated:
            text += f", {verdict.updated.replace('T', ' ')[:19]} UTC"
        if pending:
            text += " (saving…)"
        self.status_label.setText(text)
        self.comment_edit.setText(verdict.comment or "")
        for status, btn in self.buttons.items():
            btn.setStyleSheet("font-weight: bold;" if status == verdict.status
                              and status != "unreviewed" else "")
