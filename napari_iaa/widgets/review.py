"""The review dock: a case's masks, live agreement, consensus, saving, data set and cohort."""

from __future__ import annotations

import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QObject, Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from napari_iaa.errors import IAAError
from napari_iaa.widgets._layers import (
    annotator_color,
    apply_contours,
    case_layer_data,
    freeze_gc_once,
    new_load_id,
    tag_of,
)
from napari_iaa.widgets._live import MHR_DISPLAY_MAX_PIXELS, LiveAgreement, prepare_live
from napari_iaa.widgets.agreement_panel import AgreementPanel
from napari_iaa.widgets.cohort import CohortPanel
from napari_iaa.widgets.dataset_panel import DatasetPanel

if TYPE_CHECKING:
    import napari.viewer

__all__ = ["ReviewWidget", "notify_error"]

UNSAVED_POLICIES = ("ask", "save", "discard", "cancel")


def notify_error(message: str) -> None:
    """Show an error as a napari notification (never raises)."""
    try:
        from napari.utils.notifications import show_error

        show_error(message)
    except Exception:  # pragma: no cover - notification machinery unavailable
        print(f"napari-iaa: {message}")


def _notify_warning(message: str) -> None:
    try:
        from napari.utils.notifications import show_warning

        show_warning(message)
    except Exception:  # pragma: no cover
        print(f"napari-iaa: {message}")


def _notify_info(message: str) -> None:
    try:
        from napari.utils.notifications import show_info

        show_info(message)
    except Exception:  # pragma: no cover
        print(f"napari-iaa: {message}")


class ReviewWidget(QWidget):
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
        self.dataset: Any = None
        self.source: str | None = None
        self.case_id: str | None = None
        self.load_id: str | None = None
        self.live: LiveAgreement | None = None
        self._case: Any = None
        self.unsaved_policy = "ask"
        self._baseline: dict[str, np.ndarray] = {}
        self._mask_info: dict[str, dict] = {}
        self._adding = False
        self._bind_pending = False
        self._switching_combo = False
        self._build_ui()

        self._slow_timer = QTimer(self)
        self._slow_timer.setSingleShot(True)
        self._slow_timer.setInterval(300)
        self._slow_timer.timeout.connect(self._refresh_slow)
        self._slow_gen = 0
        self._slow_worker: Any = None
        self._slow_running = False
        self._slow_again = False
        self._slow_relay: _Relay | None = None
        #: images with more pixels than this get LOO/STAPLE in a worker thread
        self.slow_sync_max_pixels = 512 * 512
        #: cases with more pixels than this are prepared in a worker (layer data, mirrors,
        #: tracker counts, MHR) and their layers added one per event-loop turn
        self.async_open_min_pixels = 1024 * 1024
        #: hidden consensus layers above this many pixels get new data only when shown
        self.lazy_consensus_min_pixels = 1024 * 1024
        #: MHR maps above this many pixels are shown as block means (a cheap refresh)
        self.mhr_display_max_pixels = MHR_DISPLAY_MAX_PIXELS
        self._open_gen = 0
        self._open_worker: Any = None
        self._bind_worker: Any = None
        self._pending_consensus: dict[str, np.ndarray] = {}
        self._prebind_touched: set[str] = set()
        self._prebind_conns: list[tuple[Any, Any]] = []
        #: above this many pixels masks open filled (napari's contour drawing is slow)
        self.contour_max_pixels = 1024 * 1024

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

        row = QHBoxLayout()
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("data-set folder, case folder or manifest CSV")
        self.path_edit.returnPressed.connect(lambda: self.open_dataset(self.path_edit.text()))
        self.open_btn = QPushButton("Open…")
        self.open_btn.setToolTip("open a data-set folder (or type a path and press Enter)")
        self.open_btn.clicked.connect(self._open_dialog)
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.open_btn)
        lay.addLayout(row)

        row = QHBoxLayout()
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
        self.prev_case_btn.clicked.connect(lambda: self.step_case(-1))
        self.next_case_btn.clicked.connect(lambda: self.step_case(+1))
        row.addWidget(self.prev_case_btn)
        row.addWidget(self.case_combo, 1)
        row.addWidget(self.next_case_btn)
        lay.addLayout(row)

        self.info_label = QLabel("")
        self.info_label.setWordWrap(True)
        self.info_label.setStyleSheet("color: gray;")
        lay.addWidget(self.info_label)

        self.tabs = QTabWidget()
        # -- case tab
        case_tab = QWidget()
        cl = QVBoxLayout(case_tab)
        cl.setContentsMargins(2, 2, 2, 2)
        self.panel = AgreementPanel()
        self.panel.empty_rule_changed.connect(self._on_rule_changed)
        cl.addWidget(self.panel, 1)
        opts = QHBoxLayout()
        self.contour_check = QCheckBox("contours")
        self.contour_check.setChecked(True)
        self.contour_check.setToolTip("draw annotator masks as outlines")
        self.contour_check.toggled.connect(self._on_contour)
        self.mv_check = QCheckBox("majority vote")
        self.mv_check.toggled.connect(lambda on: self._set_visible("majority", on))
        self.staple_check = QCheckBox("STAPLE")
        self.staple_check.toggled.connect(lambda on: self._set_visible("staple", on))
        self.mhr_check = QCheckBox("MHR")
        self.mhr_check.setChecked(True)
        self.mhr_check.toggled.connect(lambda on: self._set_visible("mhr", on))
        for w in (self.contour_check, self.mhr_check, self.mv_check, self.staple_check):
            opts.addWidget(w)
        opts.addStretch(1)
        cl.addLayout(opts)
        srow = QHBoxLayout()
        self.edit_label = QLabel("no edits")
        self.save_btn = QPushButton("Save edits")
        self.save_btn.setToolTip(
            "write the edited masks as new files beside the originals "
            "(<mask>_edited-<annotator>-<time>.png); originals are never changed"
        )
        self.save_btn.setEnabled(False)
        self.save_btn.clicked.connect(self.save_edits)
        srow.addWidget(self.edit_label, 1)
        srow.addWidget(self.save_btn)
        cl.addLayout(srow)
        self.tabs.addTab(case_tab, "Case")
        # -- data-set tab
        self.dataset_panel = DatasetPanel()
        self.dataset_panel.case_requested.connect(self.open_case)
        self.tabs.addTab(self.dataset_panel, "Data set")
        # -- cohort tab
        self.cohort_panel = CohortPanel(self.dataset_panel)
        self.tabs.addTab(self.cohort_panel, "Cohort")
        lay.addWidget(self.tabs, 1)
        self.setMinimumWidth(380)

    # ------------------------------------------------------------------ data set
    def _open_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open data set")
        if path:
            self.open_dataset(path)

    def open_dataset(self, path: str | Path, case_id: str | None = None) -> bool:
        """Open a data set (folder or manifest CSV) or a case folder and show a case.

        Returns ``False`` (with an error notification) when it cannot be opened.
        """
        path = str(path).strip()
        if not path:
            return False
        try:
            ds = _open_any(path)
        except IAAError as exc:
            notify_error(str(exc))
            return False
        except Exception as exc:  # never crash the viewer on bad data
            notify_error(f"{path}: cannot open ({type(exc).__name__}: {exc})")
            return False
        if len(ds) == 0:
            probs = "; ".join(str(p) for p in list(getattr(ds, "problems", []))[:3])
            notify_error(f"{path}: no readable case" + (f" ({probs})" if probs else ""))
            return False
        return self.set_dataset(ds, source=path, case_id=case_id)

    def set_dataset(
        self, dataset: Any, source: str | None = None, case_id: str | None = None, load: bool = True
    ) -> bool:
        """Use an opened :class:`~napari_iaa.data.Dataset`; open ``case_id`` (or the first)."""
        if load and not self._confirm_leave():
            return False
        self.dataset = dataset
        self.source = str(source) if source is not None else str(getattr(dataset, "root", ""))
        self.path_edit.setText(self.source)
        self._switching_combo = True
        self.case_combo.clear()
        self.case_combo.addItems(list(dataset.ids))
        self._switching_combo = False
        self.dataset_panel.empty_rule = self.panel.empty_rule
        self.dataset_panel.set_dataset(dataset, compute=True)
        self.cohort_panel.refresh_columns()
        self.dataset_opened.emit(self.source)
        if problems := list(getattr(dataset, "problems", [])):
            _notify_warning(
                f"{self.source}: {len(problems)} file(s) skipped, e.g. {problems[0]}"
            )
        if not load:
            if case_id is not None:
                self._select_combo(case_id)
            return True
        target = case_id if case_id is not None else dataset.ids[0]
        return self.open_case(target, _confirmed=True)

    def _select_combo(self, case_id: str) -> None:
        i = self.case_combo.findText(case_id, Qt.MatchExactly)
        if i >= 0:
            self._switching_combo = True
            self.case_combo.setCurrentIndex(i)
            self._switching_combo = False
        self.dataset_panel.select_case(case_id)

    def _on_combo(self, index: int) -> None:
        if self._switching_combo or index < 0:
            return
        cid = self.case_combo.itemText(index)
        if cid and cid != self.case_id and not self.open_case(cid) and self.case_id:
            self._select_combo(self.case_id)

    def step_case(self, step: int) -> bool:
        """Open the next (``+1``) or previous (``-1``) case of the data set."""
        if self.dataset is None or not len(self.dataset.ids):
            return False
        ids = self.dataset.ids
        i = ids.index(self.case_id) if self.case_id in ids else -1
        j = min(max(i + step, 0), len(ids) - 1)
        return j != i and self.open_case(ids[j])

    # ------------------------------------------------------------------ cases
    def open_case(self, case_id: str, _confirmed: bool = False) -> bool:
        """Replace our layers by those of ``case_id``; ``False`` if not opened."""
        if self.dataset is None:
            notify_error("open a data set first")
            return False
        if not _confirmed and case_id != self.case_id and not self._confirm_leave():
            return False
        try:
            case = self.dataset.load(case_id)
        except IAAError as exc:
            notify_error(str(exc))
            return False
        except Exception as exc:
            notify_error(f"case {case_id}: cannot load ({type(exc).__name__}: {exc})")
            return False
        return self.show_case(case, source=self.source)

    def show_case(self, case: Any, source: str | None = None) -> bool:
        """Show an already loaded :class:`~napari_iaa.data.Case` (replacing our layers).

        Small cases are shown at once. Cases with more than ``async_open_min_pixels``
        pixels are prepared in a thread worker (layer data, boolean mirrors, tracker
        counts, MHR, majority vote) and their layers then added or updated one per
        event-loop turn, so the viewer stays responsive; ``case_opened`` is emitted when
        the case is bound. Returns ``False`` if the case cannot be shown (synchronous
        path) and ``True`` once started (asynchronous path; errors are notified).
        """
        load_id = new_load_id()
        contour = self.contour_check.isChecked()
        mhr_max = self.mhr_display_max_pixels
        self._open_gen += 1
        gen = self._open_gen
        try:
            shape = np.shape(case.image)
            n_pix = int(shape[0]) * int(shape[1]) if len(shape) >= 2 else 0
        except Exception:
            n_pix = 0

        def build() -> tuple[list[tuple], dict]:
            prepared = prepare_live(
                [(mid, case.masks[mid]) for mid in case.mask_ids], mhr_max_pixels=mhr_max
            )
            prepared["baseline"] = {
                mid: np.asarray(case.masks[mid]) for mid in case.mask_ids
            }
            tuples = case_layer_data(
                case,
                source=source,
                load_id=load_id,
                contour=contour,
                compute_staple=False,  # _bind -> _refresh_slow computes it
                prepared=prepared,
            )
            return tuples, prepared

        def failed(exc: BaseException) -> None:
            if isinstance(exc, IAAError):
                notify_error(str(exc))
            else:
                notify_error(f"case {case.case_id}: cannot show ({type(exc).__name__}: {exc})")

        if n_pix <= self.async_open_min_pixels or _no_threads():
            try:
                tuples, prepared = build()
            except Exception as exc:
                failed(exc)
                return False
            steps = self._replace_steps(tuples, load_id, case, prepared)
            for _ in steps:
                pass
            return True

        from napari.qt.threading import thread_worker

        if self.live is not None:  # the old case's layers are about to be replaced
            self.live.disconnect_all()
            self.live = None

        def done(res: tuple[list[tuple], dict]) -> None:
            try:
                if gen != self._open_gen:
                    return  # another case was requested meanwhile
                self._run_steps(gen, self._replace_steps(res[0], load_id, case, res[1]))
            except RuntimeError:  # the dock was closed meanwhile
                pass

        worker = thread_worker(build, start_thread=False)()
        worker.returned.connect(done)
        worker.errored.connect(failed)
        self._open_worker = worker
        worker.start()
        return True

    def _run_steps(self, gen: int, steps: Any) -> None:
        """Advance a layer-replacement generator by one step per event-loop turn."""
        try:
            if gen != self._open_gen:
                steps.close()
                return
            next(steps)
        except StopIteration:
            return
        except Exception as exc:  # never crash the viewer (also: dock deleted meanwhile)
            notify_error(f"cannot show the case ({type(exc).__name__}: {exc})")
            return
        # 1 ms, not 0: a zero timer is a posted event that Qt may handle in the same pass
        # as the repaint the previous layer asked for, adding the two stalls up
        QTimer.singleShot(1, lambda: self._run_steps(gen, steps))

    def _replace_steps(self, tuples: list[tuple], load_id: str, case: Any, prepared: dict) -> Any:
        """Generator: replace our layers (one layer per step), then bind the case."""
        if self.live is not None:
            self.live.disconnect_all()
            self.live = None
        self._clear_prebind()
        shape_changed = False
        for changed in self._replace_layers(tuples):
            shape_changed = shape_changed or bool(changed)
            yield
        self.load_id = load_id
        self.case_id = case.case_id
        self._case = case
        if shape_changed:
            self.viewer.reset_view()
        self._bind(prepared)

    def _replace_layers(self, tuples: list[tuple]) -> Any:
        """Put the new case into our layers: reuse matching layers, add/remove the rest.

        A generator with one step per layer (so large cases can be spread over several
        event-loop turns); each step yields whether the spatial shape changed.
        Reusing a layer (new data, name, tag) is much faster than removing and adding one
        (napari garbage-collects on every removal), so walking cases stays snappy.
        """
        from napari.layers import Layer

        old = self.our_layers()
        by_key: dict[tuple, Any] = {}
        old_shape = None
        for layer in old:
            tag = tag_of(layer)
            key = (tag.get("role"), tag.get("index"))
            if tag.get("role") == "image":
                old_shape = np.shape(layer.data)[:2]
            by_key.setdefault(key, layer)
        used: set[int] = set()
        for data, meta, kind in tuples:
            tag = meta["metadata"]["napari_iaa"]
            key = (tag.get("role"), tag.get("index"))
            layer = by_key.get(key)
            changed = False
            if tag.get("role") == "image":
                changed = np.shape(data)[:2] != old_shape
            reusable = (
                layer is not None
                and id(layer) not in used
                and np.ndim(layer.data) == np.ndim(data)
                and (kind != "image" or bool(getattr(layer, "rgb", False)) == bool(meta.get("rgb")))
            )
            self._adding = True
            try:
                if reusable:
                    layer.metadata = dict(meta["metadata"])
                    ndim = np.ndim(data) - (1 if meta.get("rgb") else 0)
                    if tuple(np.asarray(layer.scale)) != tuple(meta.get("scale", (1.0,) * ndim)):
                        layer.scale = meta.get("scale", (1.0,) * ndim)
                    if tuple(np.asarray(layer.translate)) != tuple(meta.get("translate", (0.0,) * ndim)):
                        layer.translate = meta.get("translate", (0.0,) * ndim)
                    layer.data = data
                    layer.name = meta["name"]
                    if kind == "image" and tag.get("role") == "image" and not meta.get("rgb"):
                        layer.reset_contrast_limits()
                    if kind == "labels" and "colormap" in meta:
                        layer.colormap = meta["colormap"]
                    used.add(id(layer))
                else:
                    layer = Layer.create(data, meta, kind)
                    self.viewer.add_layer(layer)
                if tag.get("role") == "annotator":
                    self._watch_prebind(tag.get("mask_id"), layer)
            finally:
                self._adding = False
            yield changed
        for layer in old:
            if id(layer) not in used:
                self._adding = True
                try:
                    self.viewer.layers.remove(layer)
                finally:
                    self._adding = False
                yield False

    def _watch_prebind(self, mid: Any, layer: Any) -> None:
        """Note edits of an annotator layer made before the case is bound."""

        def cb(_event: Any = None, mid: Any = mid) -> None:
            self._prebind_touched.add(str(mid))

        emitter = layer.events.paint
        emitter.connect(cb)
        self._prebind_conns.append((emitter, cb))

    def _clear_prebind(self) -> None:
        for emitter, cb in self._prebind_conns:
            try:
                emitter.disconnect(cb)
            except Exception:
                pass
        self._prebind_conns = []

    def _remove_our_layers(self, keep_load_id: str | None = None) -> None:
        if self.live is not None:
            self.live.disconnect_all()
            self.live = None
        for layer in list(self.viewer.layers):
            tag = tag_of(layer)
            if tag is None or tag.get("load_id") == keep_load_id:
                continue
            if tag.get("load_id") == self.load_id or keep_load_id is not None:
                self.viewer.layers.remove(layer)

    def our_layers(self, role: str | None = None) -> list[Any]:
        """Layers of the current case (optionally only one role), bottom to top."""
        out = []
        for layer in self.viewer.layers:
            tag = tag_of(layer)
            if tag and tag.get("load_id") == self.load_id and self.load_id is not None:
                if role is None or tag.get("role") == role:
                    out.append(layer)
        return out

    def current_case(self, copy: bool = True) -> Any:
        """The open case as a :class:`~napari_iaa.data.Case`, masks as currently edited.

        ``None`` when no case is open. With ``copy=False`` the masks are read-only views
        of the live boolean mirrors (no copy: 360 MB at 15 x 6000 x 4000): painting keeps
        changing them, so a reader in another thread may see a stale or half-applied
        stroke (never a wrong shape or dtype) and should redo its work after edits.
        """
        images = self.our_layers("image")
        if not images or self.live is None:
            return None
        from napari_iaa.data import Case

        base = self._case
        if base is None and self.dataset is not None and self.case_id in self.dataset.ids:
            try:
                base = self.dataset.entry(self.case_id)  # paths and metadata, no pixels
            except Exception:
                base = None
        masks = {mid: m.copy() if copy else _read_only(m) for mid, m in self.live.masks().items()}
        raters = {mid: self._mask_info.get(mid, {}).get("annotator") or mid for mid in masks}
        return Case(
            case_id=str(self.case_id or images[0].name),
            image=np.asarray(images[0].data),
            masks=masks,
            raters=raters,
            meta=dict(base.meta) if base is not None else {},
            image_path=base.image_path if base is not None else None,
            mask_paths={
                mid: Path(p)
                for mid in masks
                if (p := self._mask_info.get(mid, {}).get("mask_path"))
            },
            group=base.group if base is not None else None,
        )

    def annotator_layers(self) -> dict[str, Any]:
        """Mask id -> annotator Labels layer of the current case."""
        return {tag_of(lay)["mask_id"]: lay for lay in self.our_layers("annotator")}

    # -- adoption of layers added by a reader or a sample -------------------------------
    def _adopt_existing(self) -> None:
        load_ids = [t.get("load_id") for lay in self.viewer.layers if (t := tag_of(lay))]
        if load_ids:
            self._adopt(load_ids[-1], next(tag_of(lay) for lay in reversed(list(self.viewer.layers)) if tag_of(lay)))

    def _on_layer_inserted(self, event: Any) -> None:
        if self._adding:
            return
        tag = tag_of(event.value)
        if tag is None or not tag.get("load_id"):
            return
        if tag["load_id"] != self.load_id:
            self._adopt(tag["load_id"], tag)
        self._schedule_bind()

    def _adopt(self, load_id: str, tag: dict) -> None:
        if self.load_id is not None and self.live is not None:
            self._confirm_leave(allow_cancel=False)
        self._remove_our_layers(keep_load_id=load_id)
        self.load_id = load_id
        self.case_id = tag.get("case_id")
        self._case = None
        src = tag.get("source")
        if src and src != self.source:
            try:
                ds = _open_any(src)
                self.set_dataset(ds, source=src, case_id=self.case_id, load=False)
            except Exception:  # the layers are there; the data set is a convenience
                self.source = src
        elif self.case_id:
            self._select_combo(self.case_id)
        self._schedule_bind()

    def _schedule_bind(self) -> None:
        if not self._bind_pending:
            self._bind_pending = True
            QTimer.singleShot(0, self._bind)

    def _on_layer_removed(self, event: Any) -> None:
        tag = tag_of(event.value)
        if self._adding or tag is None or tag.get("load_id") != self.load_id:
            return
        if tag.get("role") == "annotator":
            self._schedule_bind()

    # -- binding -------------------------------------------------------------------------
    def _bind(self, prepared: dict | None = None) -> None:
        """Build the live tracker on the current case's annotator layers.

        ``prepared`` (from :func:`prepare_live` in the opening worker) spares the
        whole-image set-up; without it, large cases are prepared in a thread worker first.
        """
        self._bind_pending = False
        if self.live is not None:
            self.live.disconnect_all()
            self.live = None
        ann = []
        for layer in self.our_layers("annotator"):
            tag = tag_of(layer)
            ann.append((tag.get("index", len(ann)), tag["mask_id"], layer, tag))
        ann.sort(key=lambda t: t[0])
        mhr = self.our_layers("mhr")
        self._mask_info = {mid: tag for _, mid, _, tag in ann}
        if not ann:
            self._clear_prebind()
            self.panel.clear()
            self._update_edit_label()
            return
        ids = [mid for _, mid, _, _ in ann]
        if prepared is None or prepared.get("ids") != ids:
            n_pix = int(np.prod(np.shape(ann[0][2].data)))
            if n_pix > self.async_open_min_pixels and not _no_threads():
                self._bind_async([(mid, layer) for _, mid, layer, _ in ann])
                return
            prepared = None
        try:
            self.live = LiveAgreement(
                [(mid, layer) for _, mid, layer, _ in ann],
                mhr_layer=mhr[0] if mhr else None,
                prepared=prepared,
            )
        except Exception as exc:
            notify_error(f"case {self.case_id}: cannot track agreement ({exc})")
            traceback.print_exc()
            return
        self._clear_prebind()
        if self._prebind_touched & set(ids):  # painted while the case was being opened
            self.live._resync_ids |= self._prebind_touched & set(ids)
            self.live.schedule_resync()
        self._prebind_touched = set()
        self.live.changed.connect(self._on_live_changed)
        base = (prepared or {}).get("baseline")
        if base is not None and set(base) == set(ids):
            # the case's own masks: referenced, never edited (the layers hold copies)
            self._baseline = dict(base)
        else:
            self._baseline = {mid: m.copy() for mid, m in self.live.masks().items()}
        self._pending_consensus = {}
        self.panel.set_annotators(
            self.live.ids, [annotator_color(int(i)) for i, *_ in ann]
        )
        n_pix = next(iter(self.live.mirrors.values())).size
        if self.contour_check.isChecked() and n_pix > self.contour_max_pixels:
            # napari recomputes contours over the whole slice on every dab: too slow here
            self.contour_check.blockSignals(True)
            self.contour_check.setChecked(False)
            self.contour_check.blockSignals(False)
        contour = self._contour_width() if self.contour_check.isChecked() else 0
        for layer in self.our_layers():
            tag = tag_of(layer)
            if tag.get("role") == "annotator":
                tag["contour"] = contour
            if getattr(layer, "contour", None) != tag.get("contour", getattr(layer, "contour", None)):
                apply_contours(layer)
            if tag.get("role") in ("majority", "staple"):
                # napari's emitters ignore a callback that is already connected
                layer.events.visible.connect(self._apply_pending_consensus)
        self._apply_visibility_checks()
        self._refresh_fast()
        self._refresh_slow()
        self._update_info()
        if self.case_id:
            self._select_combo(self.case_id)
        self.case_opened.emit(self.case_id or "")

    def _bind_async(self, layers: list[tuple[str, Any]]) -> None:
        """Prepare the tracker of (large) adopted layers in a worker, then bind."""
        from napari.qt.threading import thread_worker

        gen = self._open_gen = self._open_gen + 1
        for mid, layer in layers:
            self._watch_prebind(mid, layer)

        mhr_max = self.mhr_display_max_pixels

        def build() -> dict:
            prepared = prepare_live([(mid, layer.data) for mid, layer in layers], mhr_max)
            prepared["baseline"] = {mid: m.copy() for mid, m in prepared["mirrors"].items()}
            return prepared

        def done(prepared: dict) -> None:
            try:
                if gen != self._open_gen:
                    return
            except RuntimeError:  # the dock was closed meanwhile
                return
            k = int(prepared.get("mhr_k", 1))
            for lay in self.our_layers("mhr"):
                # a reader's full-resolution MHR: show the cheap down-sampled one instead
                if k > 1 and np.shape(lay.data) != prepared["mhr"].shape:
                    self._adding = True
                    try:
                        lay.scale = (k, k)
                        lay.translate = ((k - 1) / 2, (k - 1) / 2)
                        lay.data = prepared["mhr"]
                    finally:
                        self._adding = False
            self._bind(prepared)

        worker = thread_worker(build, start_thread=False)()
        worker.returned.connect(done)
        worker.errored.connect(
            lambda exc: notify_error(f"case {self.case_id}: cannot track agreement ({exc})")
        )
        self._bind_worker = worker
        worker.start()

    def _apply_pending_consensus(self, _event: Any = None) -> None:
        """Give a consensus layer its deferred data when it is shown."""
        for role in list(self._pending_consensus):
            arr = self._pending_consensus[role]
            for layer in self.our_layers(role):
                if layer.visible and layer.data.shape == arr.shape:
                    layer.data = arr.astype(layer.data.dtype)
                    self._pending_consensus.pop(role, None)

    # -- refresh ---------------------------------------------------------------------------
    def _on_live_changed(self, full: bool) -> None:
        self._refresh_fast()
        self._slow_timer.start()
        self._update_edit_label(exact=full)

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

    def _refresh_fast(self) -> None:
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

    def _refresh_slow(self) -> None:
        """Leave-one-out Dice, STAPLE and the consensus layers (debounced after edits).

        Small images are done at once; large ones (more than ``slow_sync_max_pixels`` per
        mask) in a background thread at a lower OS priority (one at a time: a request
        while one runs is queued), whose result is dropped if the masks changed meanwhile.
        """
        self._slow_timer.stop()
        if self.live is None:
            return
        masks = [self.live.mirrors[mid] for mid in self.live.ids]
        self._slow_gen += 1
        gen = self._slow_gen
        rule = self.panel.empty_rule
        edits = self.live.n_edits
        if masks[0].size <= self.slow_sync_max_pixels or _no_threads():
            res = _reliability(gen, np.stack(masks), rule)
            res["edits"] = edits
            self._on_slow_result(res)
            return
        if self._slow_running:
            self._slow_again = True
            return
        relay = self._slow_relay
        if relay is None:
            relay = self._slow_relay = _Relay(self)
            relay.done.connect(self._on_slow_done)

        def work() -> None:
            _lower_thread_priority()  # the GUI thread comes first on a busy machine
            try:
                res = _reliability(gen, np.stack(masks), rule)
            except Exception as exc:  # pragma: no cover - _reliability catches its own
                res = {"gen": gen, "error": f"{type(exc).__name__}: {exc}", "loo": None,
                       "sens": None, "spec": None, "majority": None, "staple": None}
            res["edits"] = edits
            try:
                relay.done.emit(res)
            except RuntimeError:  # the dock was deleted meanwhile
                pass

        # a daemon thread of our own (not napari's pool): it runs at a lower OS priority
        # and never delays napari's or other docks' workers
        self._slow_worker = threading.Thread(target=work, name="napari-iaa reliability", daemon=True)
        self._slow_running = True
        self._slow_worker.start()

    def _on_slow_done(self, res: dict) -> None:
        self._on_slow_result(res)
        self._on_slow_finished()

    def _on_slow_finished(self) -> None:
        self._slow_running = False
        self._slow_worker = None
        if self._slow_again:
            self._slow_again = False
            self._slow_timer.start()

    def _on_slow_result(self, res: dict) -> None:
        if res["gen"] != self._slow_gen or self.live is None:
            return  # stale: the case was switched or a newer request was made
        if res.get("edits", self.live.n_edits) != self.live.n_edits:
            self._slow_again = True  # the masks changed while it ran: compute again
            return
        if res.get("error"):
            notify_error(f"case {self.case_id}: reliability not computed ({res['error']})")
        self.panel.set_reliability(res["loo"], res["sens"], res["spec"])
        for role in ("majority", "staple"):
            arr = res[role]
            for layer in self.our_layers(role):
                if layer.data.shape != arr.shape:
                    continue
                if not layer.visible and arr.size > self.lazy_consensus_min_pixels:
                    self._pending_consensus[role] = arr  # applied when shown
                    continue
                self._pending_consensus.pop(role, None)
                layer.data = arr.astype(layer.data.dtype)
        self.reliability_updated.emit()

    def _on_rule_changed(self, rule: str) -> None:
        self._refresh_fast()
        if self.dataset is not None:
            self.dataset_panel.compute(empty=rule)

    def _update_info(self) -> None:
        txt = []
        if self.case_id:
            txt.append(f"<b>{self.case_id}</b>")
        if self.live is not None:
            n_ann = len({t.get("annotator") for t in self._mask_info.values()})
            txt.append(f"{len(self.live.ids)} masks by {n_ann} annotators")
        meta = {}
        if self.dataset is not None and self.case_id in getattr(self.dataset, "ids", []):
            try:
                meta = dict(self.dataset.entry(self.case_id).meta)
            except Exception:
                meta = {}
        for key in ("diagnosis", "benign_malignant", "patient", "group"):
            if key in meta and meta[key] not in (None, ""):
                txt.append(f"{key.replace('_', ' ')}: {meta[key]}")
        self.info_label.setText(" · ".join(txt))
        self._update_edit_label()

    # ------------------------------------------------------------------ edits
    def unsaved_mask_ids(self) -> list[str]:
        """Masks that differ from their last opened or saved state."""
        if self.live is None:
            return []
        out = []
        for mid, m in self.live.masks().items():
            base = self._baseline.get(mid)
            # a mask not touched since its baseline was taken equals it: no comparison
            if base is None or mid not in self.live.dirty:
                continue
            if base.dtype != bool:
                base = base != 0
            if not np.array_equal(m, base):
                out.append(mid)
        return out

    def _update_edit_label(self, exact: bool = True) -> None:
        """Show which masks have unsaved edits.

        ``exact=False`` (after each paint) uses the masks touched since the last save,
        which costs nothing; the exact comparison with the saved state (one read per
        mask) runs on case changes, resyncs and saves.
        """
        if exact or self.live is None:
            ids = self.unsaved_mask_ids()
        else:
            ids = [mid for mid in self.live.ids if mid in self.live.dirty]
        self.save_btn.setEnabled(bool(ids))
        self.edit_label.setText(
            f"unsaved edits: {', '.join(ids)}" if ids else "no unsaved edits"
        )

    def save_edits(self) -> list[Path]:
        """Write each edited mask beside its original (new file); returns the paths."""
        if self.live is None:
            return []
        if self.live.resync_pending:
            self.live.resync()
        from napari_iaa.data import save_edited_mask

        written: list[Path] = []
        for mid in self.unsaved_mask_ids():
            info = self._mask_info.get(mid, {})
            original = info.get("mask_path")
            if not original:
                notify_error(f"{mid}: no original file known, cannot save beside it")
                continue
            try:
                path = save_edited_mask(
                    self.live.mirrors[mid], Path(original), info.get("annotator") or mid
                )
            except IAAError as exc:
                notify_error(str(exc))
                continue
            except OSError as exc:
                notify_error(f"{original}: cannot write the edited mask ({exc})")
                continue
            written.append(Path(path))
            self._baseline[mid] = self.live.mirrors[mid].copy()
            self.live.dirty.discard(mid)
        if written:
            _notify_info(
                "saved " + ", ".join(p.name for p in written) + f" in {written[0].parent}"
            )
        self._update_edit_label()
        return written

    def _confirm_leave(self, allow_cancel: bool = True) -> bool:
        """Handle unsaved edits before leaving a case; ``False`` to stay."""
        if self.live is not None and self.live.resync_pending:
            self.live.resync()
        ids = self.unsaved_mask_ids()
        if not ids:
            return True
        policy = self.unsaved_policy
        if policy == "ask":
            buttons = QMessageBox.Save | QMessageBox.Discard
            if allow_cancel:
                buttons |= QMessageBox.Cancel
            answer = QMessageBox.question(
                self,
                "Unsaved edits",
                f"Case {self.case_id}: the masks {', '.join(ids)} were edited.\n"
                "Save them as new files beside the originals?",
                buttons,
                QMessageBox.Save,
            )
            policy = {QMessageBox.Save: "save", QMessageBox.Discard: "discard"}.get(
                answer, "cancel"
            )
        if policy == "save":
            self.save_edits()
            return not self.unsaved_mask_ids() or not allow_cancel
        if policy == "cancel" and allow_cancel:
            return False
        return True

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
        for role, box in (("mhr", self.mhr_check), ("majority", self.mv_check), ("staple", self.staple_check)):
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
        for emitter, cb in ((viewer.layers.events.inserted, on_ins), (viewer.layers.events.removed, on_rem)):
            try:
                emitter.disconnect(cb)
            except Exception:
                pass
        live = widget.__dict__.get("live")
        if live is not None:
            try:
                live.disconnect_all()
            except RuntimeError:
                pass

    return _cleanup


def _reliability(gen: int, stack: np.ndarray, empty: str) -> dict:
    """Leave-one-out Dice, STAPLE and both consensus masks of a mask stack."""
    from napari_iaa.agreement import leave_one_out_dice, majority_vote, staple

    out: dict[str, Any] = {"gen": gen, "loo": None, "sens": None, "spec": None, "error": None}
    mv = np.asarray(majority_vote(stack))
    out["majority"] = mv
    out["staple"] = mv
    try:
        if stack.shape[0] >= 2:
            out["loo"] = np.asarray(leave_one_out_dice(stack, empty=empty), dtype=float)
        if stack.shape[0] >= 2 and stack.any():
            res = staple(stack)
            out["sens"], out["spec"] = res.sensitivity, res.specificity
            out["staple"] = np.asarray(res.consensus)
    except Exception as exc:  # reliability is informative; never break the view
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


class _Relay(QObject):
    """Carries a background thread's result to the GUI thread (queued signal)."""

    done = Signal(object)


def _lower_thread_priority(niceness: int = 10) -> None:
    """Lower the OS scheduling priority of the calling thread (Linux; else a no-op)."""
    try:
        import os

        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):
        pass


_WARM_UP_LOCK = threading.Lock()
_WARM_UP_STARTED = False
#: modules napari imports on its first Image / Labels layer (measured with napari 0.9)
_WARM_UP_MODULES = (
    "napari.components.histogram", "pandas", "scipy.ndimage", "scipy.special", "scipy.linalg",
    "skimage.color", "skimage.exposure", "skimage.util", "OpenGL.arrays",
)


def warm_up_napari() -> threading.Thread | None:
    """Do napari's once-per-process lazy set-up in a background thread (once).

    The first layer a napari process creates pays for pint's unit registry (napari's
    transforms ask it for ``pixel``: ~0.35 s of parsing unit definitions), for a few
    hundred module imports (~0.3 s), and the first Labels layer with a direct colormap for
    numba compiling napari's colour mapping (~0.6 s). All of it is Python or releases the
    GIL, so in a thread it costs the GUI no stall (the GIL is handed over every 5 ms); done
    when the dock opens, it is off the path of the first case the reviewer opens. Returns the thread (None if already
    started).
    """
    global _WARM_UP_STARTED
    with _WARM_UP_LOCK:
        if _WARM_UP_STARTED or _no_threads():
            return None
        _WARM_UP_STARTED = True

    def run() -> None:
        import importlib

        try:  # normal priority: a starved thread holding the GIL would stall the GUI
            import pint

            pint.get_application_registry().pixel  # noqa: B018 - builds the registry
        except Exception:  # noqa: BLE001 - only a warm-up
            pass
        try:  # numba-compiles the direct label colormap (0.6 s on the first Labels layer)
            from napari.utils.colormaps import DirectLabelColormap

            from napari_iaa.widgets._layers import annotator_color, single_color_labels

            cmap = DirectLabelColormap(color_dict=single_color_labels(annotator_color(0)))
            cmap._get_mapping_from_cache(np.dtype(np.uint8))
        except Exception:  # noqa: BLE001 - private napari API: only a warm-up
            pass
        for name in _WARM_UP_MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001
                pass

    th = threading.Thread(target=run, name="napari-iaa-warm-up", daemon=True)
    th.start()
    return th


def _no_threads() -> bool:
    """``NAPARI_IAA_NO_THREADS=1``: run background work synchronously (tests, debugging)."""
    import os

    return os.environ.get("NAPARI_IAA_NO_THREADS", "") not in ("", "0")


def _open_any(path: str | Path) -> Any:
    """Open a data set (any layout) or, failing that, a single case folder as a data set."""
    from napari_iaa._napari import _open_any as open_any

    return open_any(path)
