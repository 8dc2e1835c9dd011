"""The data-set table's flag rules as controls: one check box and one value per rule."""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QCheckBox, QDoubleSpinBox, QGridLayout, QSpinBox, QWidget

from napari_iaa.widgets.dataset.flags import FlagRules

__all__ = ["FlagControls"]

_TIPS = {
    "iaa": "flag cases whose IAA (mean pairwise Dice, the empty-pair rule of the review "
           "dock) is below this value; on data where annotators leave a mask empty (LIDC "
           "slices) this mostly flags cases someone did not mark",
    "detection": "flag cases marked by fewer than this many annotators (n marked): "
                 "disagreement on whether there is a lesion at all",
    "boundary": "flag cases whose IAA among the annotators who marked them (IAA (marked), "
                "two marks or more) is below this value: disagreement on where the border is",
}


def _spin(value: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(0.0, 1.0)
    spin.setSingleStep(0.05)
    spin.setDecimals(2)
    spin.setValue(value)
    return spin


class FlagControls(QWidget):
    """Check boxes and values for :class:`~.flags.FlagRules` (default: IAA < 0.7 only).

    Signals
    -------
    rules_changed(FlagRules) : a box or value changed.
    """

    rules_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)  # two rules a row: one row is too narrow for a dock
        grid.setContentsMargins(0, 0, 0, 0)
        self.iaa_check = QCheckBox("flag IAA <")
        self.iaa_check.setChecked(True)
        self.threshold_spin = _spin(0.7)
        self.marked_check = QCheckBox("marked by <")
        self.marked_spin = QSpinBox()
        self.marked_spin.setRange(1, 99)
        self.marked_spin.setValue(3)
        self.boundary_check = QCheckBox("boundary IAA <")
        self.boundary_spin = _spin(0.7)
        for k, (key, widgets) in enumerate((("iaa", (self.iaa_check, self.threshold_spin)),
                                            ("detection", (self.marked_check, self.marked_spin)),
                                            ("boundary", (self.boundary_check, self.boundary_spin)))):
            for j, w in enumerate(widgets):
                w.setToolTip(_TIPS[key])
                grid.addWidget(w, k // 2, 2 * (k % 2) + j)
                (w.toggled if isinstance(w, QCheckBox) else w.valueChanged).connect(self._changed)
        grid.setColumnStretch(4, 1)
        self._sync_enabled()

    def rules(self) -> FlagRules:
        """The rules the controls show."""
        return FlagRules(
            iaa_below=self.threshold_spin.value() if self.iaa_check.isChecked() else None,
            marked_below=self.marked_spin.value() if self.marked_check.isChecked() else None,
            boundary_below=(self.boundary_spin.value() if self.boundary_check.isChecked()
                            else None),
        )

    def set_rules(self, rules: FlagRules) -> None:
        """Show ``rules`` (one ``rules_changed`` at the end)."""
        pairs = ((self.iaa_check, self.threshold_spin, rules.iaa_below),
                 (self.marked_check, self.marked_spin, rules.marked_below),
                 (self.boundary_check, self.boundary_spin, rules.boundary_below))
        for check, spin, value in pairs:
            for w in (check, spin):
                w.blockSignals(True)
            check.setChecked(value is not None)
            if value is not None:
                spin.setValue(value)
            for w in (check, spin):
                w.blockSignals(False)
        self._changed()

    def _sync_enabled(self) -> None:
        self.threshold_spin.setEnabled(self.iaa_check.isChecked())
        self.marked_spin.setEnabled(self.marked_check.isChecked())
        self.boundary_spin.setEnabled(self.boundary_check.isChecked())

    def _changed(self, *_args: object) -> None:
        self._sync_enabled()
        self.rules_changed.emit(self.rules())
