"""Cohort tab: an agreement value (IAA by default, or any numeric agreement column of the
table: IAA among those who marked, detection, HD95 ...) by a metadata column (e.g. benign
vs malignant), statistics and plot.

The groups come from the data set's own metadata or from an external labels CSV joined on
the case id (as ``napari-iaa cohort --labels`` joins it, through
:mod:`napari_iaa.agreement.labels`: a row of a nodule or a patient labels its slices too),
e.g. LIDC malignancy ratings. A data set without any grouping column says so, in the tab
and in the plot, rather than showing an empty plot.
"""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.agreement import CohortResult, cohort_statistics
from napari_iaa.agreement.labels import (
    join_labels,
    read_label_columns,
    read_label_table,
    read_table,
)
from napari_iaa.errors import IAAError
from napari_iaa.widgets._common import fmt_value, notify_error, refill_combo
from napari_iaa.widgets.dataset.panel import DatasetPanel
from napari_iaa.widgets.dataset.table_model import (
    AGREEMENT_COLUMNS,
    FLAGGED_BY,
    NUMERIC_AGREEMENT_COLUMNS,
)

__all__ = ["NO_GROUPS", "CohortPanel", "group_columns", "is_grouping", "result_frame"]

#: per-case bookkeeping, never a grouping: ids, counts, annotator lists, review notes, and
#: the parts of a case's identity (``group`` is the data set's split unit, the patient; LIDC's
#: patient, nodule and slice): IAA between patients or slices is no cohort
_SKIP_COLUMNS = {"case_id", "flagged", FLAGGED_BY, "n_annotators", "n_masks", "annotators",
                 "group", "patient", "patient_id", "nodule", "lesion_id", "slice",
                 "reviewer", "comment", "updated", *AGREEMENT_COLUMNS}
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
#: what the tab says when no column splits the cases into groups
NO_GROUPS = ("No grouping column: this data set has no metadata column with 2-12 groups "
             "(such as a diagnosis), so there is nothing to compare. Join a labels CSV "
             "(a case id column and a group column, e.g. LIDC malignancy ratings) with "
             "'Labels CSV…'.")
NOT_SCORED = "score the data set first (Data set tab)"


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


def is_grouping(values: pd.Series) -> bool:
    """2..12 distinct values, and fewer than the cases that have one (a column with a
    value of its own per case, such as an id, groups nothing)."""
    vals = values.dropna().astype(str)
    vals = vals[vals != ""]
    return 2 <= vals.nunique() <= min(12, len(vals) - 1)


def _part_of_id(values: pd.Series, ids: pd.Series) -> bool:
    """Every value is a ``/`` part of its case's id (the patient or nodule of a slice)."""
    vals = values.astype(str)
    known = values.notna() & (vals != "")
    return bool(known.any()) and all(
        v in cid.split("/") for v, cid in zip(vals[known], ids[known], strict=True))


def group_columns(df: pd.DataFrame) -> list[str]:
    """Metadata columns of the case table that split the cases into 2..12 groups
    (diagnosis columns first)."""
    ids = df["case_id"].astype(str) if "case_id" in df.columns else None
    cols = [c for c in df.columns if c not in _SKIP_COLUMNS and is_grouping(df[c])
            and not (ids is not None and _part_of_id(df[c], ids))]
    pref = [c for c in _PREFERRED if c in cols]
    return pref + [c for c in cols if c not in pref]


@functools.cache
def _shown_canvas_class() -> type:
    """matplotlib's Qt canvas, drawn only while it is shown (the class is made on first use:
    matplotlib's Qt backend is imported with the panel).

    Its ``resizeEvent`` asks for a whole-figure draw on the GUI thread, and the Cohort
    tab's canvas is resized while its tab is hidden whenever the dock area changes width
    (a Predictions dock filling in its numbers: 4-10 ms for the empty figure, more with a
    plot). A hidden canvas keeps the request and draws when it is next shown.
    """
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg

    class ShownCanvas(FigureCanvasQTAgg):
        _stale = False

        def draw_idle(self) -> None:
            if self.isVisible():
                super().draw_idle()
            else:
                self._stale = True

        def showEvent(self, event) -> None:
            super().showEvent(event)
            if self._stale:
                self._stale = False
                super().draw_idle()

    return ShownCanvas


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
        from matplotlib.figure import Figure

        self.dataset_panel = dataset_panel
        self.result: CohortResult | None = None
        #: the joined labels CSV (None: the data set's own metadata only)
        self.labels_path: Path | None = None
        #: group column name -> ``case_id, group`` rows of the labels CSV
        self._labels: dict[str, pd.DataFrame] = {}
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(self._build_choice_row())
        lay.addLayout(self._build_labels_row())
        self.note = QLabel(NOT_SCORED)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: gray;")
        lay.addWidget(self.note)
        lay.addWidget(self._build_table(), 1)
        self.figure = Figure(figsize=(4, 3), tight_layout=True)
        self.canvas = _shown_canvas_class()(self.figure)
        self.canvas.setMinimumHeight(160)
        lay.addWidget(self.canvas, 2)
        self._show_message(NOT_SCORED)
        #: the table was scored while this tab was hidden: list the columns when shown
        self._columns_stale = False
        dataset_panel.scoring_finished.connect(self._on_scored)

    def _build_choice_row(self) -> QVBoxLayout:
        rows = QVBoxLayout()
        row = QHBoxLayout()
        self.value_combo = QComboBox()
        for col in NUMERIC_AGREEMENT_COLUMNS:
            self.value_combo.addItem(col)
        self.value_combo.setToolTip("the agreement column to compare between the groups")
        row.addWidget(self.value_combo)
        row.addWidget(QLabel("by"))
        self.column_combo = QComboBox()
        self.column_combo.setToolTip("a metadata column with two or more groups (the data "
                                     "set's own, or a joined labels CSV's)")
        self.column_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.column_combo.setMinimumContentsLength(10)
        row.addWidget(self.column_combo, 1)
        rows.addLayout(row)
        row = QHBoxLayout()
        self.alt_combo = QComboBox()
        for key, text in _ALTERNATIVES:
            self.alt_combo.addItem(text, key)
        self.alt_combo.setToolTip(
            "Mann-Whitney U alternative about the first group (malignant first when present)"
        )
        row.addWidget(QLabel("test"))
        row.addWidget(self.alt_combo, 1)
        self.run_btn = QPushButton("Compare")
        self.run_btn.clicked.connect(lambda: self.run())
        row.addWidget(self.run_btn)
        rows.addLayout(row)
        return rows

    def _build_labels_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.labels_btn = QPushButton("Labels CSV…")
        self.labels_btn.setToolTip(
            "join a table of labels on the case id (e.g. a diagnosis or malignancy rating "
            "per case, nodule or patient; image suffixes such as .JPG are ignored, a "
            "nodule's or patient's row labels its slices), as napari-iaa cohort --labels")
        self.labels_btn.clicked.connect(self._choose_labels)
        self.labels_label = QLabel("no labels CSV")
        self.labels_label.setStyleSheet("color: gray;")
        # a long path is elided, never widens the dock; the tooltip has it whole
        self.labels_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.labels_clear = QPushButton("×")
        self.labels_clear.setFixedWidth(28)
        self.labels_clear.setToolTip("forget the labels CSV")
        self.labels_clear.setEnabled(False)
        self.labels_clear.clicked.connect(self.clear_labels)
        row.addWidget(self.labels_btn)
        row.addWidget(self.labels_label, 1)
        row.addWidget(self.labels_clear)
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

    # ------------------------------------------------------------------ labels CSV
    def _choose_labels(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Labels CSV", "", "CSV (*.csv);;All (*)")
        if path:
            self.load_labels(path)

    def load_labels(self, path: str | Path, id_column: str | None = None) -> int:
        """Join the group columns (2-12 distinct values) of a labels CSV to the cases.

        Returns the number of group columns joined; 0 (with a notification naming the file
        and the problem) when the table cannot be used.
        """
        path = Path(path)
        try:
            rid, columns = read_label_columns(path, id_column)
            frame = read_table(path, "label table")
            labels, skipped = {}, []
            for col in columns:
                if not is_grouping(frame[col]):
                    continue
                try:
                    labels[col] = read_label_table(path, col, rid)
                except IAAError as exc:  # one case with two values: not a grouping
                    skipped.append(str(exc))
        except IAAError as exc:
            notify_error(f"cohort: {exc}")
            return 0
        if not labels:
            why = f" ({skipped[0]})" if skipped else ""
            notify_error(f"cohort: {path}: no column with 2-12 groups besides the case id "
                         f"{rid!r}{why}")
            return 0
        self.labels_path, self._labels = path, labels
        self.labels_label.setToolTip(f"{path}\ncase id column: {rid}\ngroup columns: "
                                     f"{', '.join(labels)}")
        self.labels_clear.setEnabled(True)
        self.refresh_columns()
        return len(labels)

    def clear_labels(self) -> None:
        """Forget the labels CSV (back to the data set's own metadata)."""
        self.labels_path, self._labels = None, {}
        self.labels_label.setText("no labels CSV")
        self.labels_label.setToolTip("")
        self.labels_clear.setEnabled(False)
        self.refresh_columns()

    def frame(self) -> pd.DataFrame:
        """The data set's table with the labels CSV's group columns joined (a name the
        table has already gets `` (labels)``)."""
        df = self.dataset_panel.model.frame()
        if not self._labels or "case_id" not in df.columns:
            return df
        df = df.copy()
        for col, table in self._labels.items():
            name = col if col not in df.columns else f"{col} (labels)"
            df[name] = join_labels(df["case_id"], table).to_numpy()
        return df

    def _label_summary(self, df: pd.DataFrame) -> str:
        if self.labels_path is None or df.empty:
            return ""
        added = [c for c in df.columns if c in self._labels or
                 (c.endswith(" (labels)") and c[:-9] in self._labels)]
        n = int(df[added].notna().any(axis=1).sum()) if added else 0
        return f"{self.labels_path.name}: {n} of {len(df)} cases have a label"

    # ------------------------------------------------------------------ groups
    def _on_scored(self, _ok: bool) -> None:
        # reading the whole table (a frame of 10k rows, distinct values per column) costs
        # 20-100 ms of the GUI thread: done when the tab is looked at, not at every run's end
        if self.isVisible():
            self.refresh_columns()
        else:
            self._columns_stale = True

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._columns_stale:
            self.refresh_columns()

    def refresh_columns(self) -> None:
        """List the columns that split the cases into 2..12 groups; say plainly when none
        does (in the note and the plot)."""
        self._columns_stale = False
        df = self.frame()
        cols = group_columns(df)
        refill_combo(self.column_combo, cols)
        for i, col in enumerate(cols):
            self.column_combo.setItemData(i, col, Qt.ToolTipRole)
        summary = self._label_summary(df)
        if self.labels_path is not None:
            self.labels_label.setText(summary or self.labels_path.name)
        scored = bool(not df.empty and "IAA" in df.columns and df["IAA"].notna().any())
        self.run_btn.setEnabled(bool(cols) and scored)
        if not scored:
            self.note.setText(NOT_SCORED)
            self._show_message(NOT_SCORED)
        elif not cols:
            self.note.setText(NO_GROUPS)
            self._show_message(NO_GROUPS)
        else:
            self.note.setText(summary)

    def _show_message(self, text: str) -> None:
        """The plot area says ``text`` (instead of an empty plot)."""
        self.result = None
        self.table.setRowCount(0)
        self.figure.clear()
        fg = "#d0d4dc" if self.palette().window().color().lightness() < 128 else "#202020"
        self.figure.set_facecolor(self.palette().window().color().name())
        self.figure.text(0.5, 0.5, textwrap.fill(text, 48), ha="center", va="center",
                         color=fg, fontsize=9)
        self.canvas.draw_idle()

    def _scored_values(self, column: str, value: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``value`` values and group labels of the scored cases with a ``column`` value."""
        df = self.frame()
        if not column or column not in df.columns:
            notify_error("cohort: choose a metadata column" if group_columns(df)
                         else f"cohort: {NO_GROUPS}")
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
        ax.set_xticks(range(1, len(labels) + 1),  # long group names wrap, never cut off
                      [f"{textwrap.fill(str(g), 14)}\n(n={len(d)})"
                       for g, d in zip(labels, data, strict=True)])
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
