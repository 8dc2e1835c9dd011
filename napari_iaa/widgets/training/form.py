"""The training dock's settings form, generated with magicgui from ``FitConfig``'s fields.

Each row is one :class:`training.config.FitConfig` field with a ``gui`` label in its
metadata: its widget follows the field's type and metadata (choices -> combo box,
suggestions -> editable combo box, paths -> file chooser, numbers -> spin boxes with the
field's ``range``), its tooltip is the field's help text and its value is the field's
default (with :func:`training.config.task_defaults` of the chosen task). The dock adds
its own rows (the task choice, the device in use) and reads :meth:`TrainingForm.values`.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from magicgui.widgets import ComboBox, FileEdit, FloatSpinBox, Label, LineEdit, SpinBox
from magicgui.widgets.bases import ValueWidget
from qtpy.QtWidgets import QFormLayout, QHBoxLayout, QWidget

from napari_iaa.errors import ConfigError
from napari_iaa.widgets._common.forms import add_row
from training.config import config_fields, field_type, task_defaults, type_hints

__all__ = ["FORM_FIELDS", "RESET_ON_TASK", "TrainingForm"]

#: the form's rows in order ("task" is the dock's choice of task, not a field widget)
FORM_FIELDS = ("data", "task", "models", "backbone", "epochs", "batch_size", "lr", "size",
               "max_cases", "diagnosis", "device", "out", "name")
#: fields set to the task's defaults when the task changes (and by the Defaults button)
RESET_ON_TASK = ("backbone", "epochs", "batch_size", "lr", "size")


def _is_path(name: str) -> bool:
    hint = type_hints()[name]
    return Path in typing.get_args(hint)


def _field_widget(name: str, value: Any) -> ValueWidget:
    """The magicgui widget of one FitConfig field (no label: the container adds it)."""
    meta = config_fields()[name].metadata
    kind = field_type(name)
    if "none_text" in meta:  # an optional number: "all" (None) or a typed value
        # (magicgui's spin box, superqt's QLargeIntSpinBox, shows no special-value text)
        none_text = meta["none_text"]
        w = ComboBox(choices=(none_text, "100", "1000", "10000"))
        w.native.setEditable(True)
        w.native.setCurrentText(none_text if value is None else str(value))
    elif "choices" in meta or "suggestions" in meta:
        w: ValueWidget = ComboBox(choices=tuple(meta.get("choices") or meta["suggestions"]))
        if "suggestions" in meta:  # any value may be typed; read back as the text
            w.native.setEditable(True)
            w.native.setCurrentText(str(value))
        else:
            w.value = value
    elif kind is list:
        w = FileEdit(mode="r", filter="Checkpoints (*.json *.safetensors)")
        w.line_edit.native.setPlaceholderText("MHR checkpoint to calibrate (.safetensors, .json)")
    elif _is_path(name):
        w = FileEdit(mode="d", value=str(value) if value else "")
    elif kind in (int, float):
        lo, hi, step = meta.get("range", (0, 1_000_000, 1))
        w = SpinBox(min=lo, max=hi, step=step) if kind is int else FloatSpinBox(min=lo, max=hi, step=step)
        if kind is float:  # enough decimals for the smallest allowed value
            w.native.setDecimals(max(2, -math.floor(math.log10(lo))) if lo > 0 else 6)
        w.value = meta.get("none_as", lo) if value is None else value
    else:
        w = LineEdit(value="" if value is None else str(value))
    if isinstance(w, FileEdit):  # the look of the dock's other folder rows: "…"
        w.choose_btn.text = "…"
        w.choose_btn.native.setMaximumWidth(30)
    w.tooltip = meta.get("help", "")
    return w


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
    """

    def __init__(self, task_choices: Sequence[str], task_of: Any,
                 defaults: Mapping[str, Any] = ()) -> None:
        self._task_of = task_of
        task_choices = tuple(task_choices)
        start = {**task_defaults(task_of(task_choices[0])), **dict(defaults)}
        self.widgets: dict[str, ValueWidget] = {}
        for name in FORM_FIELDS:
            if name == "task":
                w: ValueWidget = ComboBox(choices=task_choices, value=task_choices[0])
            else:
                w = _field_widget(name, start.get(name))
            self.widgets[name] = w
        self.device_label = Label(value="")
        # a QFormLayout keeps the labels in one aligned column (magicgui's labelled
        # container sizes its labels before napari's style sheet applies)
        self.container = QWidget()
        form = QFormLayout(self.container)
        form.setContentsMargins(0, 0, 0, 0)
        for name in FORM_FIELDS:
            meta = config_fields()[name].metadata
            label = "task" if name == "task" else meta["gui"]
            field = self.widgets[name].native
            if name == "device":
                field = QWidget()
                row = QHBoxLayout(field)
                row.setContentsMargins(0, 0, 0, 0)
                row.addWidget(self.widgets[name].native, 1)
                row.addWidget(self.device_label.native)
            add_row(form, label, field, meta.get("help", ""))

    # ------------------------------------------------------------------ values
    def value(self, name: str) -> Any:
        """The field's value as FitConfig takes it (None for an empty optional field)."""
        w = self.widgets[name]
        meta = config_fields()[name].metadata if name in config_fields() else {}
        if "none_text" in meta:
            return _optional_number(name, w.native.currentText(), meta)
        if isinstance(w, ComboBox) and w.native.isEditable():
            return w.native.currentText().strip()
        v = w.value
        if isinstance(w, FileEdit):
            text = w.line_edit.value.strip()
            if field_type(name) is list:
                return [text] if text else []
            return text
        if isinstance(w, LineEdit):
            return v.strip() or None
        if "none_as" in meta and v == meta["none_as"]:
            return None
        return v

    def values(self) -> dict[str, Any]:
        """Every row's value by field name (``task``: the dock's choice)."""
        return {name: self.value(name) for name in FORM_FIELDS}

    def set_value(self, name: str, value: Any) -> None:
        """Show ``value`` in the row of field ``name``."""
        w = self.widgets[name]
        meta = config_fields()[name].metadata if name in config_fields() else {}
        if "none_text" in meta and (value is None or value == meta.get("none_as")):
            w.native.setCurrentText(meta["none_text"])
        elif isinstance(w, ComboBox) and w.native.isEditable():
            w.native.setCurrentText(str(value))
        elif isinstance(w, FileEdit):
            if isinstance(value, list | tuple):
                value = value[0] if value else ""
            w.line_edit.value = "" if value is None else str(value)
        elif isinstance(w, LineEdit):
            w.value = "" if value is None else str(value)
        elif value is None and "none_as" in meta:
            w.value = meta["none_as"]
        else:
            w.value = value

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
            w.enabled = (tasks is None or task in tasks) and name not in disabled
