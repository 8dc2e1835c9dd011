"""The predictions dock: model predictions beside what the annotators did, and triage.

Three tabs (Triage and Models are filled when first shown, :mod:`.lazy_page`): **Case**
(:mod:`.case_tab`: the open case's predicted IAA, MHR maps and mask quality), **Triage** (:mod:`.triage_tab`: predicted IAA for a folder or data set) and
**Models** (:mod:`.models_tab`: the model list with cards, one model per task, the
device; read in a worker, matched to the open data). The dock wires them together; the
case comes from :mod:`.case_source`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from napari_iaa.data import Case
from napari_iaa.widgets.predictions.case_source import CaseSource
from napari_iaa.widgets.predictions.case_tab import CaseTab
from napari_iaa.widgets.predictions.jobs import ModelCache
from napari_iaa.widgets.predictions.lazy_page import LazyPage
from napari_iaa.widgets.predictions.models_tab import ModelSettingsWidget
from napari_iaa.widgets.predictions.triage_tab import TriageTab
from napari_iaa.widgets.review import ReviewWidget

__all__ = ["PredictionsWidget"]


class PredictionsWidget(QWidget):
    """Dock with the case's predictions, triage of a folder and the model settings.

    Parameters
    ----------
    napari_viewer
        The viewer.
    review
        A ``ReviewWidget`` to take the open case from (found among the viewer's docks
        when not given).
    settings
        A ``ModelSettingsWidget`` to share (a new one otherwise).
    auto
        Predict when the case changes and re-score after edits.

    Signals
    -------
    case_predicted(object)
        A ``CasePrediction`` was shown.
    quality_scored(str, float)
        A Labels layer was scored (layer name, predicted quality).
    triage_finished(object)
        The triage table was filled (a pandas DataFrame).
    failed(str)
        A prediction, scoring or triage failed (also shown as a notification).
    """

    case_predicted = Signal(object)
    quality_scored = Signal(str, float)
    triage_finished = Signal(object)
    failed = Signal(str)

    def __init__(self, napari_viewer: Any, review: ReviewWidget | None = None,
                 settings: ModelSettingsWidget | None = None, auto: bool = True) -> None:
        super().__init__()
        self.viewer = napari_viewer
        # no parent: the Models tab takes it in when first shown (:class:`LazyPage`)
        self.settings = settings or ModelSettingsWidget()
        self.models = ModelCache()
        self.source = CaseSource(napari_viewer, review, parent=self)
        self.case_tab = CaseTab(self.source, self.settings, self.models, auto)
        self.triage_tab = TriageTab(self.models, self.settings.model_key,
                                    self.source.dataset_model)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.case_tab, "Case")
        # the hidden tabs are styled and laid out when first shown, not when docked
        self.tabs.addTab(LazyPage(self.triage_tab), "Triage")
        self.tabs.addTab(LazyPage(self.settings), "Models")
        QVBoxLayout(self).addWidget(self.tabs)

        self.settings.selection_changed.connect(self.models.forget)
        # the models are matched to what is open: the data set, else the case
        self._data_timer = QTimer(self)
        self._data_timer.setSingleShot(True)
        self._data_timer.setInterval(300)
        self._data_timer.timeout.connect(self._data_changed)
        self.source.changed.connect(self._data_timer.start)
        self._data_timer.start()
        self.case_tab.case_predicted.connect(self.case_predicted)
        self.case_tab.quality_scored.connect(self.quality_scored)
        self.case_tab.failed.connect(self.failed)
        self.triage_tab.triage_finished.connect(self.triage_finished)
        self.triage_tab.failed.connect(self.failed)
        # the model scan (torch loads in its worker) starts on the turn after the first paint
        self._after_paint = QTimer(self)
        self._after_paint.setSingleShot(True)
        self._after_paint.timeout.connect(self.settings.start_first_scan)
        self._painted = False

    def paintEvent(self, event: Any) -> None:  # Qt API name
        """The first paint starts the model scan on the next event-loop turn."""
        if not self._painted:
            self._painted = True
            self._after_paint.start(0)
        super().paintEvent(event)

    def _data_changed(self) -> None:
        key, data = self.source.open_data()
        if key is not None:  # nothing open: keep matching the last data
            self.settings.set_data(key, data)

    @property
    def review(self) -> ReviewWidget | None:
        """The review dock in use (or None)."""
        return self.source.review

    @property
    def busy(self) -> bool:
        """True while the Case tab predicts, scores, updates layers or draws its plot."""
        return self.case_tab.busy

    # ------------------------------------------------------------------ the Case tab
    def current_case(self) -> Case | None:
        """The open case (the review dock's, else built from the layers); None without one."""
        return self.source.current_case()

    def predict_current(self, explicit: bool = True) -> None:
        """Predict the open case in a worker."""
        self.case_tab.predict_current(explicit)

    def refresh_quality(self) -> None:
        """Re-score every annotator mask of the open case."""
        self.case_tab.quality.refresh()

    def score_layer(self, layer: Any) -> None:
        """Predict the quality of any Labels layer."""
        self.case_tab.quality.score_layer(layer)

    def score_selected_layer(self) -> None:
        """Score the Labels layer chosen in the Case tab."""
        self.case_tab.quality.score_selected_layer()

    def quality_rows(self) -> dict[str, tuple[float, float]]:
        """The quality table as ``name -> (predicted, actual)``."""
        return self.case_tab.quality.rows()

    # ------------------------------------------------------------------ the Triage tab
    def start_triage(self, folder: str | Path | None = None, batch_size: int = 8) -> None:
        """Predict the IAA of every image in a folder, in batches, in a worker."""
        self.triage_tab.start_triage(folder, batch_size)

    def cancel_triage(self) -> None:
        """Stop the triage after the current batch."""
        self.triage_tab.cancel_triage()

    def export_triage(self, path: str | Path) -> Path:
        """Write the triage table to CSV (most ambiguous first)."""
        return self.triage_tab.export_triage(path)

    def closeEvent(self, event: Any) -> None:
        """Stop every worker before the dock goes."""
        self.triage_tab.quit()
        self.case_tab.quit()
        super().closeEvent(event)
