"""The review dock's data-set navigation: open a data set (in the unit of review the dock
prefers where the layout offers a choice: LIDC per nodule), the unit and case combos, step
to the next case, and what happens to unsaved edits when leaving a case."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QFileDialog, QLabel, QMessageBox

from napari_iaa.data import LAYOUTS, detect_layout, open_any
from napari_iaa.errors import DatasetError, IAAError
from napari_iaa.widgets._common import no_threads, notify_error, notify_warning, start_worker

if TYPE_CHECKING:
    from napari_iaa.data import Dataset

__all__ = ["PREFERRED_UNITS", "UNSAVED_POLICIES", "NavigationMixin", "layout_units",
           "open_in_unit"]

#: what :attr:`ReviewWidget.unsaved_policy` may be
UNSAVED_POLICIES = ("ask", "save", "discard", "cancel")

#: the dock's unit of review where a layout offers several, first found first: the lesion
#: (the command line keeps the layout's own default, the slice, for scripts' sake)
PREFERRED_UNITS = ("nodule", "lesion")


def layout_units(path: str | Path) -> tuple[str, ...]:
    """The units of review the layout of ``path`` offers (empty: one case per image)."""
    try:
        name = detect_layout(path)
    except (DatasetError, OSError):
        return ()
    return LAYOUTS[name].units if name in LAYOUTS else ()


def open_in_unit(path: str | Path, unit: str | None = None, case_id: str | None = None
                 ) -> tuple[Dataset, str | None]:
    """Open ``path`` in ``unit`` (default: the dock's preferred unit), return (data set, unit).

    A layout without units ignores ``unit`` (the unit is then None). With ``case_id`` and
    no ``unit``, the unit whose data set has that case is taken (a sample or a reader
    names a nodule, or a slice).
    """
    units = layout_units(path)
    if not units:
        return open_any(path), None
    if unit is not None:
        return open_any(path, unit=unit), unit
    order = [u for u in PREFERRED_UNITS if u in units] + [u for u in units
                                                          if u not in PREFERRED_UNITS]
    first: tuple[Dataset, str | None] | None = None
    for u in order:
        ds = open_any(path, unit=u)
        if case_id is None or case_id in ds.ids:
            return ds, u
        first = first or (ds, u)
    assert first is not None
    return first


def _files_bytes(dataset: Dataset, case_id: str) -> int:
    """Bytes of a case's files (0 where they cannot be listed: the load will say why)."""
    try:
        return sum(os.stat(f).st_size for f in dataset.entry(case_id).files())
    except (OSError, KeyError, IAAError):
        return 0


def _load_error(case_id: str, exc: BaseException) -> str:
    """The notification for a case that could not be read (our errors name the file)."""
    if isinstance(exc, IAAError):
        return str(exc)
    return f"case {case_id}: cannot load ({type(exc).__name__}: {exc})"


class NavigationMixin:
    """Data-set navigation of :class:`~napari_iaa.widgets.review.ReviewWidget`.

    Uses the dock's ``dataset``, ``source``, ``case_id``, ``live``, ``unsaved_policy``, its
    widgets (``path_edit``, ``case_combo``, ``info_label``, ``panel``, ``dataset_panel``,
    ``cohort_panel``), ``show_case`` (loader), ``unsaved_mask_ids`` and ``save_edits``
    (edits) and the ``dataset_opened`` signal.
    """

    dataset: Dataset | None
    source: str | None
    case_id: str | None
    case_combo: QComboBox
    info_label: QLabel
    async_load_min_bytes: int
    _load_gen: int

    def _open_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open data set")
        if path:
            self.open_dataset(path)

    def open_dataset(self, path: str | Path, case_id: str | None = None,
                     unit: str | None = None) -> bool:
        """Open a data set (folder or manifest CSV) or a case folder and show a case.

        ``unit``: the unit of review where the layout offers a choice (LIDC: ``"slice"``
        or ``"nodule"``); by default the dock's preferred one (:data:`PREFERRED_UNITS`).
        Returns ``False`` (with an error notification) when it cannot be opened.
        """
        path = str(path).strip()
        if not path:
            return False
        try:
            ds, unit = open_in_unit(path, unit)
        except IAAError as exc:
            notify_error(str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - never crash the viewer on bad data
            notify_error(f"{path}: cannot open ({type(exc).__name__}: {exc})")
            return False
        if len(ds) == 0:
            probs = "; ".join(str(p) for p in ds.problems[:3])
            notify_error(f"{path}: no readable case" + (f" ({probs})" if probs else ""))
            return False
        return self.set_dataset(ds, source=path, case_id=case_id, unit=unit)

    def set_dataset(
        self, dataset: Dataset, source: str | None = None, case_id: str | None = None,
        load: bool = True, unit: str | None = None,
    ) -> bool:
        """Use an opened :class:`~napari_iaa.data.Dataset`; open ``case_id`` (or the first).

        With ``load=False`` the data set only fills the combo and the tables (the case's
        layers are already there, from a reader or a sample). ``unit``: the unit of review
        it was opened in, where its layout offers a choice (shown in the unit combo).
        """
        if load and not self._confirm_leave():
            return False
        self.dataset = dataset
        self.source = str(source) if source is not None else str(dataset.root)
        self.path_edit.setText(self.source)
        self._show_units(unit)
        self._switching_combo = True
        self.case_combo.clear()
        self.case_combo.addItems(list(dataset.ids))
        self._switching_combo = False
        self.dataset_panel.empty_rule = self.panel.empty_rule
        self.dataset_panel.set_dataset(dataset, compute=True)
        self.verdicts.open_store(dataset.root)  # in a worker
        self.cohort_panel.refresh_columns()
        self.dataset_opened.emit(self.source)
        if problems := dataset.problems:
            notify_warning(f"{self.source}: {len(problems)} file(s) skipped, e.g. {problems[0]}")
        if not load:
            if case_id is not None:
                self._select_combo(case_id)
            return True
        target = case_id if case_id is not None else dataset.ids[0]
        return self.open_case(target, _confirmed=True)

    # -- unit of review -----------------------------------------------------------------
    def _show_units(self, unit: str | None) -> None:
        """Fill the unit combo from the data set's layout; hidden when it offers no choice."""
        layout = self.dataset.layout if self.dataset is not None else ""
        units = LAYOUTS[layout].units if layout in LAYOUTS else ()
        self.unit = unit if unit in units else None
        combo = self.unit_combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(list(units))
        if units:
            combo.setCurrentIndex(units.index(self.unit) if self.unit else 0)
        combo.blockSignals(False)
        self.unit_label.setVisible(bool(units))
        combo.setVisible(bool(units))

    def _on_unit(self, index: int) -> None:
        """Reopen the data set in the chosen unit (unsaved edits: the policy first)."""
        unit = self.unit_combo.itemText(index)
        if index < 0 or not unit or unit == self.unit or self.source is None:
            return
        if not self.open_dataset(self.source, unit=unit):  # asks about unsaved edits
            self._show_units(self.unit)  # stayed: the combo shows the unit still open

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

    def open_case(self, case_id: str, _confirmed: bool = False) -> bool:
        """Replace our layers by those of ``case_id``; ``False`` if not opened.

        A case whose files hold more than ``async_load_min_bytes`` is decoded in a worker
        (a 6000 x 4000 image with 15 masks took 1.3-2.2 s); its layers follow when it is
        read (``True`` then means started; a failure is notified), unless another case was
        asked for meanwhile.
        """
        if self.dataset is None:
            notify_error("open a data set first")
            return False
        if not _confirmed and case_id != self.case_id and not self._confirm_leave():
            return False
        self._load_gen += 1
        if not no_threads() and _files_bytes(self.dataset, case_id) > self.async_load_min_bytes:
            return self._load_in_worker(case_id, self._load_gen)
        try:
            case = self.dataset.load(case_id)
        except Exception as exc:  # noqa: BLE001 - never crash the viewer on bad data
            notify_error(_load_error(case_id, exc))
            return False
        return self.show_case(case, source=self.source)

    def _load_in_worker(self, case_id: str, gen: int) -> bool:
        """Decode ``case_id`` in a worker, then show it (if it is still the one asked for)."""
        dataset, source = self.dataset, self.source
        live = self.live
        edits_then = live.n_edits if live is not None else 0  # the leaving was settled for these
        self.info_label.setText(f"<b>{case_id}</b> · reading its files…")

        def done(case: Any) -> None:
            if gen != self._load_gen or dataset is not self.dataset:
                return  # another case (or data set) was asked for meanwhile
            edited = live is not None and live is self.live and live.n_edits != edits_then
            if edited and self.unsaved_mask_ids() and not self._confirm_leave():
                self._back_to_shown()  # edits made while it was read, and kept
                return
            self.show_case(case, source=source)

        def failed(exc: BaseException) -> None:
            if gen != self._load_gen:
                return
            notify_error(_load_error(case_id, exc))
            self._back_to_shown()

        self._load_worker = start_worker(dataset.load, case_id, on_return=done,
                                         on_error=failed, owner=self)
        return True

    def _back_to_shown(self) -> None:
        """The combo, table and info line name the case still shown."""
        if self.case_id:
            self._select_combo(self.case_id)
        self._update_info()

    # -- unsaved edits -----------------------------------------------------------------
    def _confirm_leave(self, allow_cancel: bool = True) -> bool:
        """Handle unsaved edits before leaving a case (``unsaved_policy``); ``False`` to stay."""
        if self.live is not None and self.live.resync_pending:
            self.live.resync()
        ids = self.unsaved_mask_ids()
        if not ids:
            return True
        policy = self.unsaved_policy
        if policy == "ask":
            policy = self._ask_unsaved(ids, allow_cancel)
        if policy == "save":
            self.save_edits()
            return not self.unsaved_mask_ids() or not allow_cancel
        return not (policy == "cancel" and allow_cancel)

    def _ask_unsaved(self, ids: list[str], allow_cancel: bool) -> str:
        """The reviewer's answer to "save the edits?": ``save``, ``discard`` or ``cancel``."""
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
        return {QMessageBox.Save: "save", QMessageBox.Discard: "discard"}.get(answer, "cancel")

    # -- the info line -----------------------------------------------------------------
    def _update_info(self) -> None:
        txt = []
        if self.case_id:
            txt.append(f"<b>{self.case_id}</b>")
        if self.live is not None:
            n_ann = len({t.get("annotator") for t in self._mask_info.values()})
            txt.append(f"{len(self.live.ids)} masks by {n_ann} annotators")
        meta: dict[str, Any] = {}
        if self.dataset is not None and self.case_id in self.dataset.ids:
            meta = dict(self.dataset.entry(self.case_id).meta)
        for key in ("diagnosis", "benign_malignant", "patient", "group"):
            if key in meta and meta[key] not in (None, ""):
                txt.append(f"{key.replace('_', ' ')}: {meta[key]}")
        self.info_label.setText(" · ".join(txt))
        self._update_edit_label()
