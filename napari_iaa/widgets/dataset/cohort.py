"""Cohort tab: an agreement value (IAA by default, or any numeric agreement column of the
table: IAA among those who marked, detection, HD95 ...) by a metadata column (e.g. benign
vs malignant), statistics and plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.agreement import CohortResult, cohort_statistics
from napari_iaa.errors import IAAError
from napari_iaa.widgets._common import fmt_value, notify_error, refill_combo
from napari_iaa.widgets.dataset.panel import DatasetPanel
from napari_iaa.widgets.dataset.table_model import (
    AGREEMENT_COLUMNS,
    FLAGGED_BY,
    NUMERIC_AGREEMENT_COLUMNS,
)

__all__ = ["CohortPanel", "result_frame"]

_SKIP_COLUMNS = {"case_id", "flagged", FLAGGED_BY, "n_annotators", *AGREEMENT_COLUMNS}
#: what the plot's y axis says for each value column
_VALUE_LABELS = {
    "IAA": "IAA (mean pairwise Dice)",
    "IAA (marked)": "IAA among those who marked",
    "detection": "detection agreement (n marked / n)",
    "n marked": "annotators who marked",
    "min pair": "lowest pair Dice",
    "HD95": "mean HD95 (physical units)",
    "ASSD": "mean ASSD (physical units)",
}
_PREFERRED = ("benign_malignant", "diagnosis", "diagnosis_1")
_COLORS = ["#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#0072B2", "#D55E00"]
_ALTERNATIVES = (("less", "first < second"), ("greater", "first > second"), ("two-sided", "two-sided"))
_RELATION = {"less": "<", "greater": ">", "two-sided": "≠"}


def result_frame(result: CohortResult) -> pd.DataFrame:
    """A CohortResult as a two-column table (statistic, value)."""
    g = list(result.groups)
    name = result.value_name

    def per_group(values: dict) -> str:
        return " / ".join(fmt_value(values[x]) for x in g)

    rows = [
        ("groups", " / ".join(g)),
        ("n", " / ".join(str(result.n[x]) for x in g)),
        ("mean", per_group(result.mean)),
        ("median", per_group(result.median)),
        ("std", per_group(result.std)),
    ]
    if len(g) >= 2:
        rel = _RELATION.get(result.alternative, "?")
        rows.append((f"Mann-Whitney U: {name}[{g[0]}] {rel} {name}[{g[1]}]",
                     f"U = {fmt_value(result.mw_u)}, p = {fmt_value(result.mw_p)}"))
        rows.append(("Kolmogorov-Smirnov (two-sided)",
                     f"D = {fmt_value(result.ks_d)}, p = {fmt_value(result.ks_p)}"))
    if result.n_dropped:
        rows.append(("left out (no value or group)", str(result.n_dropped)))
    return pd.DataFrame(rows, columns=["statistic", "value"])


def group_columns(df: pd.DataFrame) -> list[str]:
    """Metadata columns of the case table that split the cases into 2..12 groups
    (diagnosis columns first)."""
    cols = []
    for c in df.columns:
        if c in _SKIP_COLUMNS:
            continue
        vals = df[c].dropna()
        vals = vals[vals.astype(str) != ""]
        if 2 <= vals.astype(str).nunique() <= 12:
            cols.append(c)
    pref = [c for c in _PREFERRED if c in cols]
    return pref + [c for c in cols if c not in pref]


class CohortPanel(QWidget):
    """IAA compared between the groups of a metadata column.

    Parameters
    ----------
    dataset_panel : DatasetPanel
        Source of the per-case table (IAA + metadata).

    Signals
    -------
    computed() : statistics and plot are shown.
    """

    computed = Signal()

    def __init__(self, dataset_panel: DatasetPanel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.dataset_panel = dataset_panel
        self.result: CohortResult | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(self._build_choice_row())
        self.note = QLabel("score the data set first (Data set tab)")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: gray;")
        lay.addWidget(self.note)
        lay.addWidget(self._build_table(), 1)
        self.figure = Figure(figsize=(4, 3), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        lay.addWidget(self.canvas, 2)
        dataset_panel.scoring_finished.connect(lambda _ok: self.refresh_columns())

    def _build_choice_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.value_combo = QComboBox()
        for col in NUMERIC_AGREEMENT_COLUMNS:
            self.value_combo.addItem(col)
        self.value_combo.setToolTip("the agreement column to compare between the groups")
        row.addWidget(self.value_combo)
        row.addWidget(QLabel("by"))
        self.column_combo = QComboBox()
        self.column_combo.setToolTip("a metadata column with two or more groups")
        row.addWidget(self.column_combo, 1)
        self.alt_combo = QComboBox()
        for key, text in _ALTERNATIVES:
            self.alt_combo.addItem(text, key)
        self.alt_combo.setToolTip(
            "Mann-Whitney U alternative about the first group (malignant first when present)"
        )
        row.addWidget(self.alt_combo)
        self.run_btn = QPushButton("Compare")
        self.run_btn.clicked.connect(self.run)
        row.addWidget(self.run_btn)
        return row

    def _build_table(self) -> QTableWidget:
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["statistic", "value"])
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(140)
        return self.table

    def refresh_columns(self) -> None:
        """List the metadata columns that split the cases into 2..12 groups."""
        cols = group_columns(self.dataset_panel.model.frame())
        refill_combo(self.column_combo, cols)
        self.note.setText("" if cols else "no metadata column with 2-12 groups in this data set")

    def _scored_values(self, column: str, value: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``value`` values and group labels of the scored cases with a ``column`` value."""
        df = self.dataset_panel.model.frame()
        if not column or column not in df.columns:
            notify_error("cohort: choose a metadata column")
            return None
        if value not in df.columns:
            notify_error(f"cohort: the table has no {value!r} column")
            return None
        sub = df[[value, column]].copy()
        sub.columns = ["value", "group"]
        sub["value"] = pd.to_numeric(sub["value"], errors="coerce")
        sub = sub[np.isfinite(sub["value"]) & sub["group"].notna()
                  & (sub["group"].astype(str) != "")]
        if sub.empty:
            notify_error(f"cohort: no case with a {value} value and a {column} group "
                         "(score the data set first)")
            return None
        return sub["value"].to_numpy(float), sub["group"].astype(str).to_numpy()

    def run(self, column: str | None = None, value: str | None = None) -> CohortResult | None:
        """Compute and show the cohort statistics of ``value`` (an agreement column; default:
        the selected, IAA at first) by ``column`` (default: the selected)."""
        column = column or self.column_combo.currentText()
        value = value or self.value_combo.currentText() or "IAA"
        scored = self._scored_values(column, value)
        if scored is None:
            return None
        values, groups = scored
        try:
            result = cohort_statistics(values, groups, value_name=value,
                                       alternative=str(self.alt_combo.currentData()))
        except IAAError as exc:
            notify_error(f"cohort: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - a button's action: any failure is a notification
            notify_error(f"cohort: cannot compute statistics ({type(exc).__name__}: {exc})")
            return None
        self.result = result
        self._show_table(result_frame(result))
        self._plot(result, values, groups, column)
        self.note.setText(f"{value} by {column}: {len(values)} cases")
        self.computed.emit()
        return result

    def _show_table(self, df: pd.DataFrame) -> None:
        self.table.setColumnCount(len(df.columns))
        self.table.setHorizontalHeaderLabels([str(c) for c in df.columns])
        self.table.setRowCount(len(df))
        for i, rec in enumerate(df.itertuples(index=False)):
            for j, v in enumerate(rec):
                item = QTableWidgetItem(fmt_value(v))
                item.setTextAlignment(Qt.AlignLeft | Qt.AlignVCenter)
                self.table.setItem(i, j, item)

    def _plot(self, result: CohortResult, values: np.ndarray, groups: np.ndarray, column: str) -> None:
        """Box plot with the cases as dots, one box per group, styled like the viewer."""
        self.figure.clear()
        dark = self.palette().window().color().lightness() < 128
        fg = "#d0d4dc" if dark else "#202020"
        bg = self.palette().window().color().name()
        self.figure.set_facecolor(bg)
        ax = self.figure.add_subplot(111)
        ax.set_facecolor(bg)
        per = result.values or {g: values[groups == g] for g in sorted(set(groups))}
        labels = list(result.groups or per)
        data = [np.asarray(per[g], float) for g in labels]
        self._draw_boxes(ax, data, fg)
        ax.set_xticks(range(1, len(labels) + 1),
                      [f"{g}\n(n={len(d)})" for g, d in zip(labels, data, strict=True)])
        ax.set_ylabel(_VALUE_LABELS.get(result.value_name, result.value_name), color=fg)
        ax.set_xlabel(column, color=fg)
        if np.isfinite(result.mw_p):
            ax.set_title(f"Mann-Whitney p = {result.mw_p:.3g}", color=fg, fontsize=10)
        ax.tick_params(colors=fg)
        for sp in ax.spines.values():
            sp.set_color(fg)
        self.canvas.draw_idle()

    @staticmethod
    def _draw_boxes(ax, data: list[np.ndarray], fg: str) -> None:
        """One box per group (no fliers) and the cases as jittered dots."""
        bp = ax.boxplot(data, showfliers=False, widths=0.5, patch_artist=True)
        for k, patch in enumerate(bp["boxes"]):
            patch.set_facecolor(_COLORS[k % len(_COLORS)])
            patch.set_alpha(0.35)
            patch.set_edgecolor(fg)
        for key in ("whiskers", "caps", "medians"):
            for line in bp[key]:
                line.set_color(fg)
        rng = np.random.default_rng(0)
        for k, d in enumerate(data, start=1):
            ax.scatter(k + rng.uniform(-0.12, 0.12, d.size), d, s=12, alpha=0.8,
                       color=_COLORS[(k - 1) % len(_COLORS)], edgecolors="none")
