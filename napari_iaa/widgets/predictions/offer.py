"""The Models tab's banners: a newly trained model offered (never switched to), and the
warning that the open data do not match the chosen models' training data."""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_iaa.widgets.predictions.models_load import ModelInfo

__all__ = ["OfferBanner", "mismatch_lines", "offer_text"]


def offer_text(new: ModelInfo, current: ModelInfo | None) -> str:
    """What the banner says about a new model, beside the one in use for its task.

    Parameters
    ----------
    new
        The model offered.
    current
        The model in use for the same task (None: none chosen).

    Returns
    -------
    str
        Rich text: the name, its held-out figure, calibration and match, and whether the
        model in use has the better held-out figure.
    """
    parts = [f"New model <b>{new.name}</b> ({new.task}) available"]
    if new.held is not None:
        parts.append(f"held-out {new.held}")
    if not new.calibrated:
        parts.append("<b>uncalibrated</b> (no calibrator)")
    if new.match is not None and not new.match.ok:
        parts.append(f"does not match the open data ({new.match.explain()})")
    text = "; ".join(parts) + "."
    if current is not None:
        text += f"<br>In use: {current.name}"
        if current.held is not None:
            text += f" (held-out {current.held})"
        worse = (current.held is not None and new.held is not None
                 and current.held.better_than(new.held))
        if worse or (current.calibrated and not new.calibrated):
            text += ": <b>the model in use is better</b>"
        text += "."
    return text + " Use the new one?"


def mismatch_lines(chosen: list[ModelInfo]) -> list[str]:
    """One line per chosen model the open data do not match, or that is uncalibrated."""
    lines = []
    for m in chosen:
        if m.match is not None and not m.match.ok:
            lines.append(f"{m.name} (match {m.match.score:.2f}): {m.match.explain()}")
        if not m.calibrated:
            lines.append(f"{m.name} has no calibrator: its MHR maps are uncalibrated")
    return lines


class OfferBanner(QFrame):
    """"New model X available: use it?" with Use it / Dismiss; hidden when idle.

    Signals
    -------
    accepted(str)
        "Use it" was pressed (the card path).
    """

    accepted = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.StyledPanel)
        self.setStyleSheet("OfferBanner { border: 1px solid #5a8dee; }")
        self.path: Path | None = None
        lay = QVBoxLayout(self)
        self.label = QLabel()
        self.label.setWordWrap(True)
        lay.addWidget(self.label)
        row = QHBoxLayout()
        self.use_button = QPushButton("Use it")
        self.use_button.clicked.connect(self._use)
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.clicked.connect(self.dismiss)
        row.addWidget(self.use_button)
        row.addWidget(self.dismiss_button)
        row.addStretch(1)
        lay.addLayout(row)
        self.hide()

    def offer(self, new: ModelInfo, current: ModelInfo | None) -> None:
        """Show the offer of ``new`` (replacing an earlier one)."""
        self.path = new.path
        self.label.setText(offer_text(new, current))
        self.show()

    def dismiss(self) -> None:
        """Hide the banner; nothing changes."""
        self.path = None
        self.hide()

    def _use(self) -> None:
        path, self.path = self.path, None
        self.hide()
        if path is not None:
            self.accepted.emit(str(path))
