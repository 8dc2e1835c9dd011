"""The review dock's data-set tab (every case with its agreement) and cohort tab."""

from napari_iaa.widgets.dataset.cohort import CohortPanel, result_frame
from napari_iaa.widgets.dataset.flags import FlagRules, flag_reasons
from napari_iaa.widgets.dataset.panel import DatasetPanel
from napari_iaa.widgets.dataset.table_model import CaseTableModel

__all__ = ["CaseTableModel", "CohortPanel", "DatasetPanel", "FlagRules", "flag_reasons",
           "result_frame"]
