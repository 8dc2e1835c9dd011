"""The training dock's form: values it cannot show are refused by name; the path choosers."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui


@pytest.fixture
def form(qtbot):
    from napari_iaa.widgets.training.form import TrainingForm
    from napari_iaa.widgets.training.run import TASK_CHOICES, task_of

    f = TrainingForm(TASK_CHOICES, task_of, defaults={"out": "/tmp/models"})
    qtbot.addWidget(f.container)
    return f


@pytest.mark.parametrize("name, value, says", [
    ("epochs", 0, "epochs: 0 is outside 1..10000"),
    ("size", 4096, "image size: 4096 is outside 16..1024"),
    ("batch_size", 2.5, "batch size: 2.5 is not a whole number"),
    ("lr", "fast", "learning rate: 'fast' is not a number"),
    ("task", "segmentation", "task: 'segmentation' is not one of"),
])
def test_a_value_the_row_cannot_show_is_refused_by_name(form, name, value, says):
    """A script's value is never clipped or dropped in silence: the row keeps its value."""
    from napari_iaa.errors import ConfigError

    before = form.value(name)
    with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace(".", r"\.")):
        form.set_value(name, value)
    assert form.value(name) == before


def test_numbers_typed_as_text_and_optional_numbers(form):
    form.set_value("epochs", "7")
    form.set_value("lr", 3e-4)
    form.set_value("max_cases", 0)  # its none_as: every case
    assert (form.value("epochs"), form.value("lr"), form.value("max_cases")) == (7, 3e-4, None)
    form.set_value("max_cases", 25)
    assert form.value("max_cases") == 25


def test_the_choosers_fill_their_row_from_qt_s_dialog(form, monkeypatch, tmp_path):
    """"…" opens a folder dialog for folders and a checkpoint dialog for the base model,
    starting at the path typed; a cancelled dialog leaves the row as it was."""
    from qtpy.QtWidgets import QFileDialog

    asked = []

    def folder(parent, title, start):
        asked.append(("folder", start))
        return str(tmp_path / "data")

    def file(parent, title, start, filter):
        asked.append(("file", filter))
        return (str(tmp_path / "mhr.safetensors"), filter) if len(asked) < 3 else ("", "")

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(folder))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(file))
    form.set_value("data", "/somewhere")
    form.widgets["data"].button.click()
    form.widgets["models"].button.click()
    assert asked[0] == ("folder", "/somewhere")
    assert asked[1][0] == "file" and "*.safetensors" in asked[1][1]
    assert form.value("data") == str(tmp_path / "data")
    assert form.value("models") == [str(tmp_path / "mhr.safetensors")]
    form.widgets["models"].button.click()  # cancelled
    assert form.value("models") == [str(tmp_path / "mhr.safetensors")]
