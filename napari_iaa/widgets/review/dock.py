"""The review dock: builds the UI and wires the pieces (one job per module).

- :mod:`.navigation`: data set, case combo, next/previous, the unsaved-edits policy;
- :mod:`.loader`: opening a case (worker + one layer per event-loop turn), adopting the
  layers of a reader or a sample;
- :mod:`.binding`: the live agreement on the annotator layers;
- :mod:`.reliability`: LOO Dice, STAPLE and consensus in a low-priority worker;
- :mod:`.edits`: unsaved edits and saving;
- :mod:`.verdicts` (with :mod:`.verdict_box`): the review store, verdicts and comments;
  :mod:`.shortcuts`: their keyboard shortcuts (napari actions);
- :mod:`.warmup`: napari's once-per-process warm-up.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.agreement import MHR_DISPLAY_MAX_PIXELS
from napari_iaa.data import Case
from napari_iaa.widgets._common.memory import freeze_gc_once
from napari_iaa.widgets.dataset import CohortPanel, DatasetPanel
from napari_iaa.widgets.review.adjudication import AdjudicationPanel
from napari_iaa.widgets.review.agreement_panel import AgreementPanel
from napari_iaa.widgets.review.binding import BindingMixin
from napari_iaa.widgets.review.edits import EditsMixin
from napari_iaa.widgets.review.export_panel import ConsensusExportPanel
from napari_iaa.widgets.review.history import EditsPanel
from napari_iaa.widgets.review.layers import tag_of
from napari_iaa.widgets.review.live import LiveAgreement
from napari_iaa.widgets.review.loader import LoaderMixin
from napari_iaa.widgets.review.mask_notes import MaskNotesPanel
from napari_iaa.widgets.review.navigation import NavigationMixin
from napari_iaa.widgets.review.profile_panel import ProfilePanel
from napari_iaa.widgets.review.reliability import Reliability
from napari_iaa.widgets.review.shortcuts import register_dock
from napari_iaa.widgets.review.verdict_box import VerdictBox
from napari_iaa.widgets.review.verdicts import Verdicts
from napari_iaa.widgets.review.warmup import warm_up_napari
from napari_iaa.widgets.review.zoom import zoom_button

if TYPE_CHECKING:
    import napari.viewer

    from napari_iaa.data import Dataset

__all__ = ["ReviewWidget"]

class ReviewWidget(NavigationMixin, LoaderMixin, BindingMixin, EditsMixin, QWidget):
    """Review dock: open a data set, walk its cases, watch and edit agreement live.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer the dock belongs to (napari passes it when it opens the dock).

    Attributes
    ----------
    unsaved_policy : str
        What to do with unsaved edits when leaving a case: ``"ask"`` (a dialog, default),
        ``"save"``, ``"discard"`` or ``"cancel"`` (stay on the case). Tests set it.
    live : LiveAgreement or None
        The tracker binding of the current case.
    reliability : Reliability
        The debounced LOO Dice / STAPLE / consensus (/ HD95, ASSD) refresh.
    profile : ProfilePanel
        The slice profile of a volume (hidden for 2D cases).
    verdicts : Verdicts
        The data set's review store and the verdicts (``verdicts.store``).

    Signals
    -------
    case_opened(str) : a case's layers are bound and its agreement shown.
    dataset_opened(str) : a data set was opened (its source path).
    agreement_updated() : the Dice matrix / IAA changed (after every edit).
    reliability_updated() : LOO Dice, STAPLE and consensus layers were recomputed.
    """

    case_opened = Signal(str)
    dataset_opened = Signal(str)
    agreement_updated = Signal()
    reliability_updated = Signal()

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        viewer = napari_viewer
        self.viewer = viewer
        self.dataset: Dataset | None = None
        self.source: str | None = None
        #: the unit of review the data set was opened in (None: its layout has no choice)
        self.unit: str | None = None
        self.case_id: str | None = None
        self.load_id: str | None = None
        self.live: LiveAgreement | None = None
        self._case: Case | None = None
        self.unsaved_policy = "ask"
        self._baseline: dict[str, np.ndarray] = {}
        self._mask_info: dict[str, dict] = {}
        self._adding = False
        self._bind_pending = False
        self._switching_combo = False
        #: images with more pixels than this get LOO/STAPLE in a worker thread
        self.slow_sync_max_pixels = 512 * 512
        #: cases with more pixels than this are prepared in a worker (layer data, mirrors,
        #: tracker counts, MHR) and their layers added one per event-loop turn
        self.async_open_min_pixels = 1024 * 1024
        #: hidden consensus layers above this many pixels get new data only when shown
        self.lazy_consensus_min_pixels = 1024 * 1024
        #: MHR maps above this many pixels are shown as block means (a cheap refresh)
        self.mhr_display_max_pixels = MHR_DISPLAY_MAX_PIXELS
        #: above this many pixels masks open filled (napari's contour drawing is slow)
        self.contour_max_pixels = 1024 * 1024
        #: cases whose files hold more bytes than this are decoded in a worker
        self.async_load_min_bytes = 8 << 20
        self._open_gen = 0
        self._load_gen = 0  # the latest case asked of open_case (older reads are dropped)
        self._open_worker: Any = None
        self._load_worker: Any = None
        self._bind_worker: Any = None
        self._prebind_touched: set[str] = set()
        self._prebind_conns: list[tuple[Any, Any]] = []
        self._build_ui()
        self.reliability = Reliability(self)
        self.reliability.updated.connect(self.reliability_updated)
        self.verdicts = Verdicts(self)
        self.verdicts.store_opened.connect(self.on_store_opened)
        self.case_opened.connect(lambda _cid: self.verdicts.show_current())
        register_dock(self)

        viewer.layers.events.inserted.connect(self._on_layer_inserted)
        viewer.layers.events.removed.connect(self._on_layer_removed)
        self.destroyed.connect(_make_cleanup(self, viewer))
        # layers that were added before the dock was opened (sample / reader)
        self._adopt_existing()
        warm_up_napari()
        freeze_gc_once()

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(self._build_open_row())
        lay.addLayout(self._build_case_row())
        self.info_label = QLabel("")
        self.info_label.setWordWrap(True)
        self.info_label.setStyleSheet("color: gray;")
        lay.addWidget(self.info_label)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_case_tab(), "Case")
        self.dataset_panel = DatasetPanel()
        self.dataset_panel.case_requested.connect(self.open_case)
        self.tabs.addTab(self.dataset_panel, "Data set")
        self.cohort_panel = CohortPanel(self.dataset_panel)
        self.tabs.addTab(self.cohort_panel, "Cohort")
        self.tabs.addTab(self._build_outcome_tab(), "Edits")
        self.export_panel = ConsensusExportPanel(self)
        self.tabs.addTab(self.export_panel, "Export")
        lay.addWidget(self.tabs, 1)
        self.setMinimumWidth(380)

    def _build_open_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("data-set folder, case folder or manifest CSV")
        self.path_edit.returnPressed.connect(lambda: self.open_dataset(self.path_edit.text()))
        self.open_btn = QPushButton("Open…")
        self.open_btn.setToolTip("open a data-set folder (or type a path and press Enter)")
        self.open_btn.clicked.connect(self._open_dialog)
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.open_btn)
        return row

    def _build_case_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.unit_label = QLabel("Unit")
        self.unit_combo = QComboBox()
        self.unit_combo.setToolTip(
            "unit of review where the data set offers a choice (LIDC): one slice, or one "
            "nodule with its slices stacked into a volume"
        )
        self.unit_combo.currentIndexChanged.connect(self._on_unit)
        for w in (self.unit_label, self.unit_combo):
            w.setVisible(False)  # shown when the data set's layout offers units
            row.addWidget(w)
        row.addWidget(QLabel("Case"))
        self.prev_case_btn = QPushButton("◀")
        self.prev_case_btn.setFixedWidth(30)
        self.prev_case_btn.setToolTip("previous case")
        self.next_case_btn = QPushButton("▶")
        self.next_case_btn.setFixedWidth(30)
        self.next_case_btn.setToolTip("next case")
        self.case_combo = QComboBox()
        self.case_combo.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.case_combo.setMinimumContentsLength(12)
        self.case_combo.currentIndexChanged.connect(self._on_combo)
        self.case_combo.currentTextChanged.connect(self.case_combo.setToolTip)
        self.prev_case_btn.clicked.connect(lambda: self.step_case(-1))
        self.next_case_btn.clicked.connect(lambda: self.step_case(+1))
        row.addWidget(self.prev_case_btn)
        row.addWidget(self.case_combo, 1)
        row.addWidget(self.next_case_btn)
        return row

    def _build_case_tab(self) -> QWidget:
        case_tab = QWidget()
        cl = QVBoxLayout(case_tab)
        cl.setContentsMargins(2, 2, 2, 2)
        self.panel = AgreementPanel()
        self.panel.empty_rule_changed.connect(self._on_rule_changed)
        self.panel.metric_changed.connect(self._on_metric_changed)
        cl.addWidget(self.panel, 1)
        self.profile = ProfilePanel(self)  # volumes only
        cl.addWidget(self.profile)
        opts = QHBoxLayout()
        self.contour_check = QCheckBox("contours")
        self.contour_check.setChecked(True)
        self.contour_check.setToolTip("draw annotator masks as outlines")
        self.contour_check.toggled.connect(self._on_contour)
        self.mhr_check = QCheckBox("MHR")
        self.mhr_check.setChecked(True)
        self.mv_check = QCheckBox("majority vote")
        self.staple_check = QCheckBox("STAPLE")
        #: layer role -> the checkbox that shows or hides its layer
        self._role_checks = {"mhr": self.mhr_check, "majority": self.mv_check,
                             "staple": self.staple_check}
        for role, box in self._role_checks.items():
            box.toggled.connect(lambda on, role=role: self._set_visible(role, on))
        for w in (self.contour_check, self.mhr_check, self.mv_check, self.staple_check):
            opts.addWidget(w)
        opts.addStretch(1)
        opts.addWidget(zoom_button(self.viewer, lambda: self.load_id))
        cl.addLayout(opts)
        srow = QHBoxLayout()
        self.edit_label = QLabel("no edits")
        self.save_btn = QPushButton("Save edits")
        self.save_btn.setToolTip(
            "write the edited masks as new files beside the originals "
            "(<mask>_edited-<annotator>-by-<reviewer>-<time>.png; a volume keeps its format and "
            "header, e.g. .nii.gz); originals are never changed"
        )
        self.save_btn.setEnabled(False)
        self.save_btn.clicked.connect(self.save_edits)
        srow.addWidget(self.edit_label, 1)
        srow.addWidget(self.save_btn)
        cl.addLayout(srow)
        self.verdict_box = VerdictBox()
        cl.addWidget(self.verdict_box)
        return case_tab

    def _build_outcome_tab(self) -> QWidget:
        """Each mask's edit history (any version loads back), notes on the masks, and the
        case's final mask."""
        tab = QWidget()
        col = QVBoxLayout(tab)
        self.edits_panel = EditsPanel(self)
        self.notes_panel = MaskNotesPanel(self)
        self.adjudication_panel = AdjudicationPanel(self)
        col.addWidget(self.edits_panel)
        col.addWidget(self.notes_panel)
        col.addWidget(self.adjudication_panel)
        col.addStretch(1)  # the rows stay together at the top
        return tab

    @property
    def reviewer(self) -> str:
        """The reviewer's name (set once in the case tab; default the OS user name),
        recorded with every verdict and saved edit."""
        return self.verdict_box.reviewer

    # ------------------------------------------------------------------ read-outs
    def our_layers(self, role: str | None = None) -> list[Any]:
        """Layers of the current case (optionally only one role), bottom to top."""
        if self.load_id is None:
            return []
        return [
            layer for layer in self.viewer.layers
            if (tag := tag_of(layer)) and tag.get("load_id") == self.load_id
            and (role is None or tag.get("role") == role)
        ]

    def annotator_layers(self) -> dict[str, Any]:
        """Mask id -> annotator Labels layer of the current case."""
        return {tag_of(lay)["mask_id"]: lay for lay in self.our_layers("annotator")}

    def current_case(self, copy: bool = True) -> Case | None:
        """The open case as a :class:`~napari_iaa.data.Case`, masks as currently edited.

        ``None`` when no case is open. With ``copy=False`` the masks are read-only views
        of the live boolean mirrors (no copy: 360 MB at 15 x 6000 x 4000): painting keeps
        changing them, so a reader in another thread may see a stale or half-applied
        stroke (never a wrong shape or dtype) and should redo its work after edits.
        """
        images = self.our_layers("image")
        if not images or self.live is None:
            return None
        base: Any = self._case
        if base is None and self.dataset is not None and self.case_id in self.dataset.ids:
            base = self.dataset.entry(self.case_id)  # paths and metadata, no pixels
        masks = {mid: m.copy() if copy else _read_only(m) for mid, m in self.live.masks().items()}
        info = self._mask_info
        header = self.case_header()
        return Case(
            case_id=str(self.case_id or images[0].name),
            image=np.asarray(images[0].data),
            masks=masks,
            raters={mid: info.get(mid, {}).get("annotator") or mid for mid in masks},
            meta=dict(base.meta) if base is not None else {},
            image_path=base.image_path if base is not None else None,
            mask_paths={
                mid: Path(p) for mid in masks if (p := info.get(mid, {}).get("mask_path"))
            },
            group=base.group if base is not None else None,
            spacing=header.get("spacing"),
            origin=header.get("origin"),
            direction=header.get("direction"),
        )

    def case_header(self) -> dict[str, Any]:
        """The open case's grid: ``spacing``, ``origin``, ``direction`` (None: unknown).

        From the case when the dock opened it, else from the image layer's tag (a reader
        or a sample put it there).
        """
        keys = ("spacing", "origin", "direction")
        if self._case is not None:
            return {k: getattr(self._case, k, None) for k in keys}
        images = self.our_layers("image")
        tag = tag_of(images[0]) if images else None
        return {k: (tuple(tag[k]) if tag and tag.get(k) is not None else None) for k in keys}

    def matrix(self) -> np.ndarray:
        """Current pairwise Dice matrix (live, with the selected empty-pair rule)."""
        if self.live is None:
            return np.zeros((0, 0))
        return np.asarray(self.live.tracker.dice_matrix(empty=self.panel.empty_rule), dtype=float)

    def iaa(self) -> float:
        """Current IAA (live)."""
        if self.live is None:
            return float("nan")
        return float(self.live.tracker.iaa(empty=self.panel.empty_rule))

    # ------------------------------------------------------------------ refresh
    def _on_live_changed(self, full: bool) -> None:
        self._refresh_fast()
        self.panel.mark_surface_stale()
        self.reliability.schedule()
        self.profile.schedule()
        self._update_edit_label(exact=full)

    def _on_metric_changed(self, metric: str) -> None:
        """HD95/ASSD asked for: compute them now (off the GUI thread) unless up to date."""
        if metric != "dice" and not self.panel.has_surface() and self.live is not None:
            self.reliability.refresh()

    def _refresh_fast(self) -> None:
        """The Dice matrix and the IAA (O(N^2) from the tracker's counts)."""
        if self.live is None:
            return
        m = self.matrix()
        n = m.shape[0]
        std = None
        if n > 1:
            vals = m[np.triu_indices(n, 1)]
            vals = vals[np.isfinite(vals)]
            std = float(vals.std()) if vals.size else None
        self.panel.set_matrix(m, self.iaa(), std)
        self.agreement_updated.emit()

    def _on_rule_changed(self, rule: str) -> None:
        self._refresh_fast()
        self.profile.refresh()
        if self.dataset is not None:
            self.dataset_panel.compute(empty=rule)

    # ------------------------------------------------------------------ display options
    def _on_contour(self, on: bool) -> None:
        for layer in self.our_layers("annotator"):
            layer.contour = self._contour_width() if on else 0

    def _contour_width(self) -> int:
        """Outline width: 1 px on small images (LIDC crops), 2 px otherwise."""
        if self.live is None or not self.live.ids:
            return 2
        shape = self.live.mirrors[self.live.ids[0]].shape
        return 1 if min(shape[-2:]) < 256 else 2

    def _set_visible(self, role: str, on: bool) -> None:
        for layer in self.our_layers(role):
            layer.visible = on

    def _apply_visibility_checks(self) -> None:
        for role, box in self._role_checks.items():
            layers = self.our_layers(role)
            if layers:
                box.blockSignals(True)
                box.setChecked(bool(layers[0].visible))
                box.blockSignals(False)


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (shares its memory)."""
    v = a.view()
    v.flags.writeable = False
    return v


def _make_cleanup(widget: ReviewWidget, viewer: Any) -> Any:
    """A callback that unhooks a deleted dock from the viewer and its layers."""
    on_ins, on_rem = widget._on_layer_inserted, widget._on_layer_removed

    def _cleanup(*_args: Any) -> None:
        viewer.layers.events.inserted.disconnect(on_ins)
        viewer.layers.events.removed.disconnect(on_rem)
        with contextlib.suppress(RuntimeError, TypeError, ValueError):
            widget.profile.disconnect_viewer()  # it follows the viewer's slider
        verdicts = widget.__dict__.get("verdicts")
        if verdicts is not None:
            verdicts.shutdown()
        live = widget.__dict__.get("live")  # the Python side outlives the Qt object
        if live is not None:
            with contextlib.suppress(RuntimeError):  # its Qt timers may be gone already
                live.disconnect_all()

    return _cleanup
