"""Agreement panel: IAA, lowest pair, heat-map pairwise matrix (Dice, HD95 or ASSD),
per-annotator table, MHR legend."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QBrush
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.widgets._common import fmt_number
from napari_iaa.widgets._common.formatting import elide_middle
from napari_iaa.widgets.review.colors import MHRLegend, heat_color, swatch, text_color
from napari_iaa.widgets.review.matrix_metric import METRICS, metric_cell, worst_pair

__all__ = ["EMPTY_RULE_LABELS", "PER_MASK_COLUMNS", "AgreementPanel", "MHRLegend", "heat_color"]

#: the empty-pair rules (:data:`napari_iaa.agreement.EMPTY_RULES`) as the combo shows them
EMPTY_RULE_LABELS = {
    "zero": "empty → 0",
    "one": "both empty → 1",
    "ignore": "skip both empty",
}

PER_MASK_COLUMNS = ["mean Dice", "LOO Dice", "STAPLE sens", "STAPLE spec"]
_PER_MASK_HEADERS = ["mean Dice", "LOO Dice", "sens.", "spec."]
_PER_MASK_TIPS = [
    "mean Dice to the other annotators",
    "Dice to the majority vote of the other annotators (leave-one-out)",
    "STAPLE sensitivity estimate",
    "STAPLE specificity estimate",
]


class AgreementPanel(QWidget):
    """Shows the agreement of one case; fed by the review dock.

    Signals
    -------
    empty_rule_changed(str)
    metric_changed(str) : the matrix now shows ``"dice"``, ``"hd95"`` or ``"assd"``.
    """

    empty_rule_changed = Signal(str)
    metric_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)

        self.iaa_label = QLabel("IAA —")
        f = self.iaa_label.font()
        f.setPointSize(f.pointSize() + 4)
        f.setBold(True)
        self.iaa_label.setFont(f)
        self.iaa_label.setToolTip("Inter-annotator agreement: mean pairwise Dice")
        self.min_pair_label = QLabel("lowest pair —")
        self.min_pair_label.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.iaa_label, 1)
        top.addWidget(QLabel("empty pairs"))
        self.empty_combo = QComboBox()
        for key, text in EMPTY_RULE_LABELS.items():
            self.empty_combo.addItem(text, key)
        self.empty_combo.setToolTip(
            "How a pair with an empty mask is scored. 'zero' (default, as IMA++): any pair "
            "with an empty mask scores 0; 'one': two empty masks agree perfectly; 'ignore': "
            "pairs of two empty masks are left out."
        )
        self.empty_combo.currentIndexChanged.connect(
            lambda _i: self.empty_rule_changed.emit(self.empty_rule)
        )
        top.addWidget(self.empty_combo)
        lay.addLayout(top)
        lay.addWidget(self.min_pair_label)
        self._build_tables(lay)
        box3 = QGroupBox("MHR map (fraction of annotators)")
        bl3 = QVBoxLayout(box3)
        self.legend = MHRLegend()
        bl3.addWidget(self.legend)
        lay.addWidget(box3)

        self._ids: list[str] = []
        self._colors: list[str] = []
        self._matrix = np.zeros((0, 0))
        #: the surface distances shown for HD95/ASSD ({"hd95": .., "assd": ..}) and unit
        self._surface: dict[str, np.ndarray] | None = None
        self._unit = "voxels"
        self._reference = 2.0
        self._surface_stale = False
        #: (metric, values) the matrix cells show now: only changed cells are redrawn
        self._shown: tuple[str, np.ndarray] = ("dice", np.zeros((0, 0)))

    def _build_tables(self, lay: QVBoxLayout) -> None:
        """The pairwise Dice matrix and the per-annotator table."""
        self.matrix_box = box = QGroupBox("Pairwise Dice")
        bl = QVBoxLayout(box)
        mrow = QHBoxLayout()
        mrow.addWidget(QLabel("show"))
        self.metric_combo = QComboBox()
        for key, spec in METRICS.items():
            self.metric_combo.addItem(spec.label, key)
            self.metric_combo.setItemData(self.metric_combo.count() - 1, spec.tip, Qt.ToolTipRole)
        self.metric_combo.setToolTip("what the matrix shows: Dice (live) or a surface distance "
                                     "(HD95, ASSD: computed in the background after edits)")
        self.metric_combo.currentIndexChanged.connect(self._on_metric)
        mrow.addWidget(self.metric_combo)
        self.surface_label = QLabel("")
        self.surface_label.setStyleSheet("color: gray;")
        mrow.addWidget(self.surface_label, 1)
        bl.addLayout(mrow)
        self.matrix = QTableWidget()
        self.matrix.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.matrix.setSelectionMode(QAbstractItemView.SingleSelection)
        self.matrix.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.matrix.verticalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.matrix.setMinimumHeight(150)
        bl.addWidget(self.matrix)
        lay.addWidget(box, 3)

        box2 = QGroupBox("Per annotator (STAPLE: sensitivity, specificity)")
        bl2 = QVBoxLayout(box2)
        self.per_mask = QTableWidget(0, len(PER_MASK_COLUMNS))
        self.per_mask.setHorizontalHeaderLabels(_PER_MASK_HEADERS)
        for j, tip in enumerate(_PER_MASK_TIPS):
            self.per_mask.horizontalHeaderItem(j).setToolTip(tip)
        self.per_mask.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.per_mask.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.per_mask.setToolTip(
            "mean Dice: to the other annotators; LOO Dice: to the majority vote of the "
            "others; STAPLE sensitivity/specificity against the STAPLE estimate"
        )
        self.per_mask.setMinimumHeight(120)
        bl2.addWidget(self.per_mask)
        lay.addWidget(box2, 2)

    # -- state ---------------------------------------------------------------------------
    @property
    def empty_rule(self) -> str:
        """Current empty-pair rule: ``zero``, ``one`` or ``ignore``."""
        return str(self.empty_combo.currentData())

    def set_empty_rule(self, rule: str) -> None:
        """Select an empty-pair rule."""
        i = self.empty_combo.findData(rule)
        if i >= 0:
            self.empty_combo.setCurrentIndex(i)

    @property
    def metric(self) -> str:
        """What the matrix shows: ``dice``, ``hd95`` or ``assd``."""
        return str(self.metric_combo.currentData())

    def set_metric(self, metric: str) -> None:
        """Show ``dice``, ``hd95`` or ``assd`` in the matrix."""
        i = self.metric_combo.findData(metric)
        if i >= 0:
            self.metric_combo.setCurrentIndex(i)

    def matrix_values(self) -> np.ndarray:
        """The live Dice matrix (whatever metric the cells show)."""
        return self._matrix.copy()

    def shown_values(self) -> np.ndarray:
        """The values the matrix cells show now (Dice, or the distances; NaN: "—")."""
        return self._shown[1].copy()

    def set_surface(self, hd95: np.ndarray | None, assd: np.ndarray | None, unit: str,
                    reference: float = 2.0) -> None:
        """Surface distances of the current masks (``None``: not available) in ``unit``;
        ``reference``: the distance coloured yellow (see ``distance_reference``)."""
        self._surface = None if hd95 is None or assd is None else {
            "hd95": np.asarray(hd95, float), "assd": np.asarray(assd, float)}
        self._unit = unit
        self._reference = float(reference)
        self._surface_stale = False
        self._redraw()

    def mark_surface_stale(self) -> None:
        """The masks were edited: the distances shown are being recomputed."""
        if not self._surface_stale:
            self._surface_stale = True
            self._show_surface_state()

    def has_surface(self) -> bool:
        """Whether up-to-date surface distances are shown (or ready to be)."""
        return self._surface is not None and not self._surface_stale

    def _on_metric(self, _index: int) -> None:
        self._redraw()
        self.metric_changed.emit(self.metric)

    def clear(self) -> None:
        """Show nothing."""
        self._ids = []
        self._matrix = np.zeros((0, 0))
        self._surface = None
        self._shown = ("dice", np.zeros((0, 0)))
        self.matrix.setRowCount(0)
        self.matrix.setColumnCount(0)
        self.per_mask.setRowCount(0)
        self.iaa_label.setText("IAA —")
        self.min_pair_label.setText("lowest pair —")
        self.legend.set_n(0)

    def set_annotators(self, ids: Sequence[str], colors: Sequence[str]) -> None:
        """Set the annotator ids (rows/columns) and their layer colours."""
        self._ids = list(ids)
        self._colors = list(colors)
        self._matrix = np.zeros((0, 0))  # the next set_matrix redraws every cell
        self._surface = None
        self._surface_stale = False
        self._shown = ("dice", np.zeros((0, 0)))
        n = len(self._ids)
        for table, ncols in ((self.matrix, n), (self.per_mask, len(PER_MASK_COLUMNS))):
            table.setRowCount(n)
            if table is self.matrix:
                table.setColumnCount(ncols)
        for i, (mid, col) in enumerate(zip(self._ids, self._colors, strict=True)):
            for table, orient in ((self.matrix, "v"), (self.matrix, "h"), (self.per_mask, "v")):
                # a long mask id is cut in the middle; the tooltip has it whole
                item = QTableWidgetItem(swatch(col), elide_middle(mid))
                item.setToolTip(mid)
                if orient == "v":
                    table.setVerticalHeaderItem(i, item)
                else:
                    table.setHorizontalHeaderItem(i, item)
        self.legend.set_n(n)

    def set_matrix(self, matrix: np.ndarray, iaa: float, iaa_std: float | None = None) -> None:
        """Show the Dice matrix, the IAA, the lowest pair and the per-mask mean Dice.

        Only the cells whose value changed are redrawn (a paint changes one row and
        column), so a live update costs O(N) cell updates, not O(N^2). With a distance
        shown, the cells keep the distances until the new ones arrive (:meth:`set_surface`).
        """
        m = np.asarray(matrix, dtype=float)
        self._matrix = m.copy()
        n = len(self._ids)
        if m.shape != (n, n):
            return
        self._redraw()
        pairs_txt = f"{n * (n - 1) // 2} pairs" if n > 1 else "needs 2 masks"
        self._show_iaa(iaa, iaa_std, pairs_txt)
        self._show_mean_dice(m)

    def _redraw(self) -> None:
        """Draw the selected metric's cells (changed ones only) and the worst pair."""
        key = self.metric
        n = len(self._ids)
        spec = METRICS[key]
        unit = f" ({self._unit})" if key != "dice" else ""
        self.matrix_box.setTitle(spec.title + unit)
        self._show_surface_state()
        if key == "dice":
            values = self._matrix
        elif self._surface is not None and self._surface[key].shape == (n, n):
            values = self._surface[key]
        else:
            values = np.full((n, n), np.nan)
        if values.shape != (n, n):
            return
        prev_key, prev = self._shown
        same = np.zeros(values.shape, bool)
        if prev_key == key and prev.shape == values.shape:
            same = (prev == values) | (np.isnan(prev) & np.isnan(values))
        self._shown = (key, values.copy())
        for i in range(n):
            for j in range(n):
                if not (same[i, j] and self.matrix.item(i, j) is not None):
                    self._set_matrix_cell(key, values, i, j)
        self._show_lowest_pair(key, values, f"{n * (n - 1) // 2} pairs" if n > 1 else "")

    def _show_surface_state(self) -> None:
        if self.metric == "dice":
            text = ""
        elif self._surface is None:
            text = "computing…"
        else:
            text = "updating…" if self._surface_stale else ""
        self.surface_label.setText(text)

    def _set_matrix_cell(self, key: str, values: np.ndarray, i: int, j: int) -> None:
        item = self.matrix.item(i, j)
        if item is None:
            item = QTableWidgetItem()
            item.setTextAlignment(Qt.AlignCenter)
            self.matrix.setItem(i, j, item)
        text, bg, tip = metric_cell(key, values, i, j, self._unit, heat_color, self._reference)
        item.setText(text)
        if i == j:
            bg = bg.darker(150)
        item.setBackground(QBrush(bg))
        item.setForeground(QBrush(text_color(bg)))
        item.setToolTip(f"{METRICS[key].label}({self._ids[i]}, {self._ids[j]}) = {tip}")

    def _show_iaa(self, iaa: float, iaa_std: float | None, pairs_txt: str) -> None:
        std_txt = f" ± {iaa_std:.3f}" if iaa_std is not None and np.isfinite(iaa_std) else ""
        self.iaa_label.setText(f"IAA {fmt_number(iaa)}{std_txt}")
        self.iaa_label.setToolTip(f"mean pairwise Dice over {pairs_txt}")
        style = f"color: {heat_color(iaa).name()};" if np.isfinite(iaa) else ""
        if self.iaa_label.styleSheet() != style:  # a new style sheet re-polishes the widget
            self.iaa_label.setStyleSheet(style)

    def _show_lowest_pair(self, key: str, m: np.ndarray, pairs_txt: str) -> None:
        n = len(self._ids)
        if n <= 1:
            self.min_pair_label.setText("lowest pair — (fewer than 2 masks)")
            return
        got = worst_pair(key, m)
        if got is None:
            self.min_pair_label.setText("lowest pair — (no scorable pair)")
            return
        a, b, v = got
        if key == "dice":
            value = f"Dice {fmt_number(v)}"
        else:
            value = f"{METRICS[key].label} {fmt_number(v, '.2f')} {self._unit}"
        self.min_pair_label.setText(
            f"lowest pair: {self._ids[a]} – {self._ids[b]}  {value}   ({pairs_txt})"
        )

    def _show_mean_dice(self, m: np.ndarray) -> None:
        """Each mask's mean Dice to the others (only the cells that changed)."""
        n = len(self._ids)
        off = m.copy()
        if n:
            np.fill_diagonal(off, np.nan)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a row of NaN: mean of nothing
            means = np.nanmean(off, axis=1) if n > 1 else np.full(n, np.nan)
        for i in range(n):
            it = self.per_mask.item(i, 0)
            old = it.data(Qt.UserRole) if it is not None else None
            if old is not None and (old == means[i] or (np.isnan(old) and np.isnan(means[i]))):
                continue
            self._set_cell(i, 0, means[i], heat=True)

    def set_reliability(
        self,
        loo: Sequence[float] | None,
        sens: Sequence[float] | None,
        spec: Sequence[float] | None,
    ) -> None:
        """Show leave-one-out Dice and STAPLE sensitivity/specificity per mask."""
        n = len(self._ids)
        for col, vals in ((1, loo), (2, sens), (3, spec)):
            for i in range(n):
                v = float(vals[i]) if vals is not None and i < len(vals) else float("nan")
                self._set_cell(i, col, v, heat=col == 1)

    def per_mask_values(self) -> np.ndarray:
        """The per-annotator table as floats (rows: masks, columns: PER_MASK_COLUMNS)."""
        n = len(self._ids)
        out = np.full((n, len(PER_MASK_COLUMNS)), np.nan)
        for i in range(n):
            for j in range(len(PER_MASK_COLUMNS)):
                it = self.per_mask.item(i, j)
                if it is not None and it.data(Qt.UserRole) is not None:
                    out[i, j] = float(it.data(Qt.UserRole))
        return out

    def _set_cell(self, row: int, col: int, v: float, heat: bool = False) -> None:
        item = self.per_mask.item(row, col)
        if item is None:
            item = QTableWidgetItem()
            item.setTextAlignment(Qt.AlignCenter)
            self.per_mask.setItem(row, col, item)
        item.setText(fmt_number(v))
        item.setData(Qt.UserRole, float(v))
        if heat:
            bg = heat_color(v)
            item.setBackground(QBrush(bg))
            item.setForeground(QBrush(text_color(bg)))
