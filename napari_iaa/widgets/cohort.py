"""Cohort tab: IAA by a metadata column (e.g. benign vs malignant), statistics and plot."""

from __future__ import annotations

from typing import Any

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

from napari_iaa.errors import IAAError

__all__ = ["CohortPanel", "result_frame"]

_SKIP_COLUMNS = {"case_id", "IAA", "min pair", "lowest pair", "flagged", "n_annotators"}


def result_frame(result: Any) -> pd.DataFrame:
    """A CohortResult as a two-column table (statistic, value)."""
    if all(hasattr(result, a) for a in ("groups", "n", "mean", "median", "std", "mw_p")):
        g = list(result.groups)
        both = " / ".join(g)
        rel = {"less": "<", "greater": ">", "two-sided": "≠"}.get(result.alternative, "?")
        name = getattr(result, "value_name", "IAA")
        rows = [
            ("groups", both),
            ("n", " / ".join(str(result.n[x]) for x in g)),
            ("mean", " / ".join(_fmt(result.mean[x]) for x in g)),
            ("median", " / ".join(_fmt(result.median[x]) for x in g)),
            ("std", " / ".join(_fmt(result.std[x]) for x in g)),
        ]
        if len(g) >= 2:
            rows.append(
                (
                    f"Mann-Whitney U: {name}[{g[0]}] {rel} {name}[{g[1]}]",
                    f"U = {_fmt(result.mw_u)}, p = {_fmt(result.mw_p)}",
                )
            )
            rows.append(
                ("Kolmogorov-Smirnov (two-sided)", f"D = {_fmt(result.ks_d)}, p = {_fmt(result.ks_p)}")
            )
        if getattr(result, "n_dropped", 0):
            rows.append(("left out (no value or group)", str(result.n_dropped)))
        return pd.DataFrame(rows, columns=["statistic", "value"])
    for name in ("to_frame", "table", "to_dataframe"):
        fn = getattr(result, name, None)
        if callable(fn):
            try:
                df = fn()
                if isinstance(df, pd.DataFrame):
                    return df
            except TypeError:
                pass
    if hasattr(result, "to_dict"):
        d = result.to_dict()
    elif hasattr(result, "__dataclass_fields__"):
        d = {k: getattr(result, k) for k in result.__dataclass_fields__}
    else:
        d = dict(vars(result))
    rows = []

    def _add(prefix: str, v: Any) -> None:
        if isinstance(v, dict):
            for k, vv in v.items():
                _add(f"{prefix}{k} ", vv)
        elif isinstance(v, list | tuple | np.ndarray) and np.ndim(v) == 1 and len(v) <= 8:
            rows.append((prefix.strip(), ", ".join(_fmt(x) for x in v)))
        elif np.ndim(v) == 0:
            rows.append((prefix.strip(), _fmt(v)))

    for k, v in d.items():
        _add(f"{k} ", v)
    return pd.DataFrame(rows, columns=["statistic", "value"])


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        if not np.isfinite(v):
            return "—"
        return f"{v:.4g}"
    return str(v)


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

    def __init__(self, dataset_panel: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.dataset_panel = dataset_panel
        self.result: Any = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        row = QHBoxLayout()
        row.addWidget(QLabel("IAA by"))
        self.column_combo = QComboBox()
        self.column_combo.setToolTip("a metadata column with two or more groups")
        row.addWidget(self.column_combo, 1)
        self.alt_combo = QComboBox()
        for key, text in (("less", "first < second"), ("greater", "first > second"), ("two-sided", "two-sided")):
            self.alt_combo.addItem(text, key)
        self.alt_combo.setToolTip(
            "Mann-Whitney U alternative about the first group (malignant first when present)"
        )
        row.addWidget(self.alt_combo)
        self.run_btn = QPushButton("Compare")
        self.run_btn.clicked.connect(self.run)
        row.addWidget(self.run_btn)
        lay.addLayout(row)
        self.note = QLabel("score the data set first (Data set tab)")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: gray;")
        lay.addWidget(self.note)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["statistic", "value"])
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(140)
        lay.addWidget(self.table, 1)
        self.figure = Figure(figsize=(4, 3), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        lay.addWidget(self.canvas, 2)
        dataset_panel.scoring_finished.connect(lambda _ok: self.refresh_columns())

    def refresh_columns(self) -> None:
        """List the metadata columns that split the cases into 2..12 groups."""
        current = self.column_combo.currentText()
        df = self.dataset_panel.model.frame()
        cols = []
        for c in df.columns:
            if c in _SKIP_COLUMNS:
                continue
            vals = df[c].dropna()
            vals = vals[vals.astype(str) != ""]
            k = vals.astype(str).nunique()
            if 2 <= k <= 12:
                cols.append(c)
        pref = [c for c in ("benign_malignant", "diagnosis", "diagnosis_1") if c in cols]
        cols = pref + [c for c in cols if c not in pref]
        self.column_combo.blockSignals(True)
        self.column_combo.clear()
        self.column_combo.addItems(cols)
        if current in cols:
            self.column_combo.setCurrentText(current)
        self.column_combo.blockSignals(False)
        self.note.setText(
            "" if cols else "no metadata column with 2-12 groups in this data set"
        )

    def run(self, column: str | None = None) -> Any:
        """Compute and show the cohort statistics of ``column`` (default: the selected)."""
        from napari_iaa.agreement import cohort_statistics
        from napari_iaa.widgets.review import notify_error

        column = column or self.column_combo.currentText()
        df = self.dataset_panel.model.frame()
        if not column or column not in df.columns:
            notify_error("cohort: choose a metadata column")
            return None
        sub = df[["IAA", column]].copy()
        sub["IAA"] = pd.to_numeric(sub["IAA"], errors="coerce")
        sub = sub[np.isfinite(sub["IAA"]) & sub[column].notna() & (sub[column].astype(str) != "")]
        if sub.empty:
            notify_error("cohort: no scored case with this column (score the data set first)")
            return None
        values = sub["IAA"].to_numpy(float)
        groups = sub[column].astype(str).to_numpy()
        try:
            result = cohort_statistics(
                values, groups, alternative=str(self.alt_combo.currentData())
            )
        except IAAError as exc:
            notify_error(f"cohort: {exc}")
            return None
        except Exception as exc:
            notify_error(f"cohort: cannot compute statistics ({type(exc).__name__}: {exc})")
            return None
        self.result = result
        self._show_table(result_frame(result))
        self._plot(result, values, groups, column)
        self.note.setText(f"IAA by {column}: {len(values)} cases")
        self.computed.emit()
        return result

    def _show_table(self, df: pd.DataFrame) -> None:
        self.table.setColumnCount(len(df.columns))
        self.table.setHorizontalHeaderLabels([str(c) for c in df.columns])
        self.table.setRowCount(len(df))
        for i, rec in enumerate(df.itertuples(index=False)):
            for j, v in enumerate(rec):
                item = QTableWidgetItem(_fmt(v))
                item.setTextAlignment(Qt.AlignLeft | Qt.AlignVCenter)
                self.table.setItem(i, j, item)

    def _plot(self, result: Any, values: np.ndarray, groups: np.ndarray, column: str) -> None:
        """Box plot with the cases as dots, one box per group, styled like the viewer."""
        self.figure.clear()
        dark = self.palette().window().color().lightness() < 128
        fg = "#d0d4dc" if dark else "#202020"
        bg = self.palette().window().color().name()
        self.figure.set_facecolor(bg)
        ax = self.figure.add_subplot(111)
        ax.set_facecolor(bg)
        per = getattr(result, "values", None) or {g: values[groups == g] for g in sorted(set(groups))}
        labels = list(getattr(result, "groups", None) or per.keys())
        data = [np.asarray(per[g], float) for g in labels]
        colors = ["#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#0072B2", "#D55E00"]
        bp = ax.boxplot(data, showfliers=False, widths=0.5, patch_artist=True)
        for k, patch in enumerate(bp["boxes"]):
            patch.set_facecolor(colors[k % len(colors)])
            patch.set_alpha(0.35)
            patch.set_edgecolor(fg)
        for key in ("whiskers", "caps", "medians"):
            for line in bp[key]:
                line.set_color(fg)
        rng = np.random.default_rng(0)
        for k, d in enumerate(data, start=1):
            ax.scatter(k + rng.uniform(-0.12, 0.12, d.size), d, s=12, alpha=0.8,
                       color=colors[(k - 1) % len(colors)], edgecolors="none")
        ax.set_xticks(range(1, len(labels) + 1), [f"{g}\n(n={len(d)})" for g, d in zip(labels, data)])
        ax.set_ylabel(f"{getattr(result, 'value_name', 'IAA')} (mean pairwise Dice)", color=fg)
        ax.set_xlabel(column, color=fg)
        p = getattr(result, "mw_p", np.nan)
        if np.isfinite(p):
            ax.set_title(f"Mann-Whitney p = {p:.3g}", color=fg, fontsize=10)
        ax.tick_params(colors=fg)
        for sp in ax.spines.values():
            sp.set_color(fg)
        self.canvas.draw_idle()
