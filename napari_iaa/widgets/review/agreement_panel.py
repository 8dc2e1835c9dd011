"""Agreement panel: IAA, lowest pair, heat-map Dice matrix, per-annotator table, MHR legend."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QBrush, QColor, QFont, QIcon, QPainter, QPixmap
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.widgets._common import fmt_number
from napari_iaa.widgets.review.layers import MHR_COLORMAP

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


def heat_color(value: float) -> QColor:
    """Heat-map colour of a Dice value in [0, 1] (red -> yellow -> green); grey for NaN."""
    if value is None or not np.isfinite(value):
        return QColor(90, 90, 90)
    v = float(np.clip(value, 0.0, 1.0))
    # piecewise: 0 -> (165, 0, 38) red, 0.5 -> (254, 224, 139) yellow, 1 -> (26, 152, 80) green
    stops = [(0.0, (165, 0, 38)), (0.5, (254, 224, 139)), (1.0, (26, 152, 80))]
    for (x0, c0), (x1, c1) in zip(stops[:-1], stops[1:], strict=True):
        if v <= x1:
            t = (v - x0) / (x1 - x0)
            return QColor(*[int(round(a + t * (b - a))) for a, b in zip(c0, c1, strict=True)])
    return QColor(*stops[-1][1])


def _text_color(bg: QColor) -> QColor:
    lum = 0.299 * bg.red() + 0.587 * bg.green() + 0.114 * bg.blue()
    return QColor(0, 0, 0) if lum > 140 else QColor(255, 255, 255)


def _swatch(color: str, size: int = 12) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(QColor(color))
    return QIcon(pm)


class MHRLegend(QWidget):
    """Colour legend of the MHR layer: one swatch per agreement level k/N."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._n = 0
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)

    def set_n(self, n: int) -> None:
        """Number of annotators (levels 0..n)."""
        self._n = int(n)
        self.update()

    def paintEvent(self, event) -> None:  # Qt API name
        if self._n <= 0:
            return
        from matplotlib import colormaps

        cmap = colormaps[MHR_COLORMAP]
        p = QPainter(self)
        w = self.width() - 2
        k = self._n + 1
        cell = w / k
        bar_h = 14
        p.setFont(QFont(self.font().family(), max(self.font().pointSize() - 1, 7)))
        for i in range(k):
            r, g, b, _ = cmap(i / self._n)
            x = 1 + i * cell
            p.fillRect(int(x), 2, int(np.ceil(cell)), bar_h, QColor(int(r * 255), int(g * 255), int(b * 255)))
            p.setPen(self.palette().windowText().color())
            p.drawText(int(x), 2 + bar_h, int(cell), 18, Qt.AlignHCenter | Qt.AlignTop, f"{i}/{self._n}")
        p.setPen(QColor(128, 128, 128))
        p.drawRect(1, 2, w - 1, bar_h)
        p.end()


class AgreementPanel(QWidget):
    """Shows the agreement of one case; fed by the review dock.

    Signals
    -------
    empty_rule_changed(str)
    """

    empty_rule_changed = Signal(str)

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

    def _build_tables(self, lay: QVBoxLayout) -> None:
        """The pairwise Dice matrix and the per-annotator table."""
        box = QGroupBox("Pairwise Dice")
        bl = QVBoxLayout(box)
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

    def matrix_values(self) -> np.ndarray:
        """The Dice matrix currently shown."""
        return self._matrix.copy()

    def clear(self) -> None:
        """Show nothing."""
        self._ids = []
        self._matrix = np.zeros((0, 0))
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
        n = len(self._ids)
        for table, ncols in ((self.matrix, n), (self.per_mask, len(PER_MASK_COLUMNS))):
            table.setRowCount(n)
            if table is self.matrix:
                table.setColumnCount(ncols)
        for i, (mid, col) in enumerate(zip(self._ids, self._colors, strict=True)):
            for table, orient in ((self.matrix, "v"), (self.matrix, "h"), (self.per_mask, "v")):
                item = QTableWidgetItem(_swatch(col), mid)
                if orient == "v":
                    table.setVerticalHeaderItem(i, item)
                else:
                    table.setHorizontalHeaderItem(i, item)
        self.legend.set_n(n)

    def set_matrix(self, matrix: np.ndarray, iaa: float, iaa_std: float | None = None) -> None:
        """Show the Dice matrix, the IAA, the lowest pair and the per-mask mean Dice.

        Only the cells whose value changed are redrawn (a paint changes one row and
        column), so a live update costs O(N) cell updates, not O(N^2).
        """
        m = np.asarray(matrix, dtype=float)
        prev = self._matrix
        self._matrix = m.copy()
        n = len(self._ids)
        if m.shape != (n, n):
            return
        if prev.shape == m.shape:
            same = (prev == m) | (np.isnan(prev) & np.isnan(m))
        else:
            same = np.zeros(m.shape, bool)
        for i in range(n):
            for j in range(n):
                if not (same[i, j] and self.matrix.item(i, j) is not None):
                    self._set_matrix_cell(i, j, m[i, j])
        pairs_txt = f"{n * (n - 1) // 2} pairs" if n > 1 else "needs 2 masks"
        self._show_iaa(iaa, iaa_std, pairs_txt)
        self._show_lowest_pair(m, pairs_txt)
        self._show_mean_dice(m)

    def _set_matrix_cell(self, i: int, j: int, v: float) -> None:
        item = self.matrix.item(i, j)
        if item is None:
            item = QTableWidgetItem()
            item.setTextAlignment(Qt.AlignCenter)
            self.matrix.setItem(i, j, item)
        item.setText(fmt_number(v, ".2f"))
        bg = heat_color(v)
        if i == j:
            bg = bg.darker(150)
        item.setBackground(QBrush(bg))
        item.setForeground(QBrush(_text_color(bg)))
        item.setToolTip(f"Dice({self._ids[i]}, {self._ids[j]}) = {fmt_number(v, '.4f')}")

    def _show_iaa(self, iaa: float, iaa_std: float | None, pairs_txt: str) -> None:
        std_txt = f" ± {iaa_std:.3f}" if iaa_std is not None and np.isfinite(iaa_std) else ""
        self.iaa_label.setText(f"IAA {fmt_number(iaa)}{std_txt}")
        self.iaa_label.setToolTip(f"mean pairwise Dice over {pairs_txt}")
        style = f"color: {heat_color(iaa).name()};" if np.isfinite(iaa) else ""
        if self.iaa_label.styleSheet() != style:  # a new style sheet re-polishes the widget
            self.iaa_label.setStyleSheet(style)

    def _show_lowest_pair(self, m: np.ndarray, pairs_txt: str) -> None:
        n = len(self._ids)
        if n <= 1:
            self.min_pair_label.setText("lowest pair — (fewer than 2 masks)")
            return
        iu = np.triu_indices(n, 1)
        vals = m[iu]
        if not np.isfinite(vals).any():
            self.min_pair_label.setText("lowest pair — (no scorable pair)")
            return
        k = int(np.nanargmin(vals))
        a, b = iu[0][k], iu[1][k]
        self.min_pair_label.setText(
            f"lowest pair: {self._ids[a]} – {self._ids[b]}  Dice {fmt_number(vals[k])}"
            f"   ({pairs_txt})"
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
            item.setForeground(QBrush(_text_color(bg)))
