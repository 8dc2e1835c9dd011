"""The training dock's settings form, built from ``FitConfig``'s fields with plain Qt widgets.

Each row is one :class:`training.config.FitConfig` field with a ``gui`` label in its
metadata: its widget follows the field's type and metadata (choices -> combo box,
suggestions -> editable combo box, paths -> a line and a "…" chooser, numbers -> spin
boxes with the field's ``range``), its tooltip is the field's help text and its value is
the field's default (with :func:`training.config.task_defaults` of the chosen task). The
dock adds its own rows (the task choice, the device in use) and reads
:meth:`TrainingForm.values`.

Plain Qt, not magicgui: the form is built on the click that opens the dock, and magicgui's
widgets (a protocol check and a wrapper per widget, its Qt backend imported on first use)
took 15-26 ms of that click against about 6 ms for the same Qt widgets (BENCHMARKS.md,
issue 16, fourteenth pass).
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from napari_iaa.errors import ConfigError
from napari_iaa.widgets._common.forms import PathEdit, add_row
from training.config import config_fields, field_type, task_defaults, type_hints

__all__ = ["FORM_FIELDS", "RESET_ON_TASK", "TrainingForm"]

#: the form's rows in order ("task" is the dock's choice of task, not a field widget)
FORM_FIELDS = ("data", "task", "models", "backbone", "epochs", "batch_size", "lr", "size",
               "max_cases", "diagnosis", "device", "out", "name")
#: fields set to the task's defaults when the task changes (and by the Defaults button)
RESET_ON_TASK = ("backbone", "epochs", "batch_size", "lr", "size")


def _is_path(name: str) -> bool:
    return Path in typing.get_args(type_hints()[name])


def _combo(items: Sequence[str], editable: bool) -> QComboBox:
    w = QComboBox()
    w.addItems([str(x) for x in items])
    w.setEditable(editable)
    return w


def _field_widget(name: str) -> QWidget:
    """The widget of one FitConfig field (no label: the form adds it); its value unset."""
    meta = config_fields()[name].metadata
    kind = field_type(name)
    if "none_text" in meta:  # an optional number: "all" (None) or a typed value
        w: QWidget = _combo((meta["none_text"], "100", "1000", "10000"), editable=True)
    elif "choices" in meta or "suggestions" in meta:  # suggestions: any value may be typed
        w = _combo(meta.get("choices") or meta["suggestions"], editable="suggestions" in meta)
    elif kind is list:
        w = PathEdit(folder=False, filter="Checkpoints (*.json *.safetensors)",
                     placeholder="MHR checkpoint to calibrate (.safetensors, .json)")
    elif _is_path(name):
        w = PathEdit(folder=True)
    elif kind in (int, float):
        lo, hi, step = meta.get("range", (0, 1_000_000, 1))
        w = QSpinBox() if kind is int else QDoubleSpinBox()
        if kind is float:  # enough decimals for the smallest allowed value
            w.setDecimals(max(2, -math.floor(math.log10(lo))) if lo > 0 else 6)
        w.setRange(lo, hi)
        w.setSingleStep(step)
    else:
        w = QLineEdit()
    w.setToolTip(meta.get("help", ""))
    return w


def _label(name: str) -> str:
    return "task" if name == "task" else config_fields()[name].metadata["gui"]


def _optional_number(name: str, text: str, meta: Mapping[str, Any]) -> int | None:
    """The value of an optional-number row: None for its ``none_text``, else an integer."""
    text = text.strip()
    if not text or text == meta["none_text"] or text == str(meta.get("none_as")):
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{meta.get('gui', name)}: {text!r} is not a whole number "
                          f"(or {meta['none_text']!r})") from None


class TrainingForm:
    """The settings rows of the training dock, bound to ``FitConfig``'s fields.

    Parameters
    ----------
    task_choices : sequence of str
        The entries of the task combo box.
    task_of : callable
        The FitConfig task of a choice (``"iaa+diagnosis"`` -> ``"iaa"``).
    defaults : mapping
        Values shown instead of the field defaults (the dock's output folder).

    Attributes
    ----------
    widgets : dict of str to QWidget
        Each row's widget by field name: ``QComboBox``, ``QSpinBox``, ``QDoubleSpinBox``,
        ``QLineEdit`` or :class:`~napari_iaa.widgets._common.forms.PathEdit`.
    device_label : QLabel
        Beside the device row: the device a run used.
    container : QWidget
        The rows, in a ``QFormLayout``.
    """

    def __init__(self, task_choices: Sequence[str], task_of: Any,
                 defaults: Mapping[str, Any] = ()) -> None:
        self._task_of = task_of
        self.widgets: dict[str, QWidget] = {
            name: _combo(task_choices, editable=False) if name == "task" else _field_widget(name)
            for name in FORM_FIELDS}
        start = {**task_defaults(task_of(self.widgets["task"].currentText())), **dict(defaults)}
        for name in FORM_FIELDS:
            if name != "task":
                self.set_value(name, start.get(name))
        self.device_label = QLabel("")
        # a QFormLayout keeps the labels in one aligned column
        self.container = QWidget()
        form = QFormLayout(self.container)
        form.setContentsMargins(0, 0, 0, 0)
        for name in FORM_FIELDS:
            field = self.widgets[name]
            if name == "device":
                field = QWidget()
                row = QHBoxLayout(field)
                row.setContentsMargins(0, 0, 0, 0)
                row.addWidget(self.widgets[name], 1)
                row.addWidget(self.device_label)
            add_row(form, _label(name), field, self.widgets[name].toolTip())

    # ------------------------------------------------------------------ values
    def value(self, name: str) -> Any:
        """The field's value as FitConfig takes it (None for an empty optional field)."""
        w = self.widgets[name]
        meta = config_fields()[name].metadata if name in config_fields() else {}
        if "none_text" in meta:
            return _optional_number(name, w.currentText(), meta)
        if isinstance(w, QComboBox):
            return w.currentText().strip()
        if isinstance(w, PathEdit):
            return ([w.text()] if w.text() else []) if field_type(name) is list else w.text()
        if isinstance(w, QLineEdit):
            return w.text().strip() or None
        v = w.value()
        if "none_as" in meta and v == meta["none_as"]:
            return None
        return v

    def values(self) -> dict[str, Any]:
        """Every row's value by field name (``task``: the dock's choice)."""
        return {name: self.value(name) for name in FORM_FIELDS}

    def set_value(self, name: str, value: Any) -> None:
        """Show ``value`` in the row of field ``name``.

        Raises ConfigError, naming the row, for a value the row cannot show: not one of
        its choices, not a number, or outside its range (a spin box would clip it).
        """
        w = self.widgets[name]
        meta = config_fields()[name].metadata if name in config_fields() else {}
        if "none_text" in meta and (value is None or value == meta.get("none_as")):
            w.setCurrentText(meta["none_text"])
        elif isinstance(w, QComboBox) and w.isEditable():
            w.setCurrentText(str(value))
        elif isinstance(w, QComboBox):
            index = w.findText(str(value))
            if index < 0:
                choices = ", ".join(w.itemText(i) for i in range(w.count()))
                raise ConfigError(f"{_label(name)}: {value!r} is not one of {choices}")
            w.setCurrentIndex(index)
        elif isinstance(w, PathEdit):
            if isinstance(value, list | tuple):
                value = value[0] if value else ""
            w.setText("" if value is None else str(value))
        elif isinstance(w, QLineEdit):
            w.setText("" if value is None else str(value))
        else:
            self._set_number(name, w, meta["none_as"] if value is None and "none_as" in meta
                             else value)

    def _set_number(self, name: str, w: QSpinBox | QDoubleSpinBox, value: Any) -> None:
        kind = int if isinstance(w, QSpinBox) else float
        what = "a whole number" if kind is int else "a number"
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{_label(name)}: {value!r} is not {what}") from None
        if number != float(value):  # 2.5 for a whole number
            raise ConfigError(f"{_label(name)}: {value!r} is not {what}")
        if not w.minimum() <= number <= w.maximum():
            raise ConfigError(f"{_label(name)}: {value!r} is outside "
                              f"{kind(w.minimum())}..{kind(w.maximum())}")
        w.setValue(number)

    def apply_task_defaults(self, choice: str) -> None:
        """Set the :data:`RESET_ON_TASK` rows to the defaults of the chosen task."""
        defaults = task_defaults(self._task_of(choice))
        for name in RESET_ON_TASK:
            self.set_value(name, defaults[name])

    def enable_for(self, choice: str, disabled: Sequence[str] = ()) -> None:
        """Enable the rows whose field applies to the chosen task (and not in ``disabled``)."""
        task = self._task_of(choice)
        for name, w in self.widgets.items():
            tasks = config_fields()[name].metadata.get("tasks") if name in config_fields() else None
            w.setEnabled((tasks is None or task in tasks) and name not in disabled)
