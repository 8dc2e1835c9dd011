"""The review dock's edits: which masks differ from their saved state, and saving them.

Edited masks are written as new files beside the originals, atomically, through
:func:`napari_iaa.data.save_edited_mask` (``<mask>_edited-<annotator>-by-<reviewer>-<time>.png``
for 2D; a volume keeps its format and header: NIfTI in, NIfTI out; a volume stacked from
slice files is written as NIfTI with the case's grid); originals are never changed. Every
saved edit is recorded in the data set's review store (the dock's, once it is open) as the
mask's current version, the one a reopened case loads (:func:`current_edit_paths`,
:func:`apply_edits`); a case opened before the store was open is reopened with its edits
when it opens (:meth:`EditsMixin.on_store_opened`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import QLabel, QPushButton

from napari_iaa.data import Case, read_mask, save_edited_mask
from napari_iaa.errors import IAAError
from napari_iaa.widgets._common import notify_error, notify_info, notify_warning
from napari_iaa.widgets.review.live import LiveAgreement

if TYPE_CHECKING:
    from napari_iaa.review import ReviewStore
    from napari_iaa.widgets.review.verdicts import Verdicts

__all__ = ["EditsMixin", "apply_edits", "dock_reviewer", "dock_store"]


def dock_reviewer(dock: Any) -> str:
    """The dock's reviewer name (``ReviewWidget.reviewer``), else the OS user name."""
    from napari_iaa.review import default_reviewer

    return dock.reviewer.strip() or default_reviewer()


def dock_store(dock: Any) -> ReviewStore | None:
    """The review store of the dock's data set: the dock's own (``dock.verdicts.store``).

    None while it is opening (or without a data set): readers show nothing yet and are
    refreshed when it opens; writers go through ``dock.verdicts.when_open``. Nothing here
    opens a store (a second connection racing the store's creation made the store look
    foreign and the review read-only).
    """
    return dock.verdicts.store if dock.dataset is not None else None


def apply_edits(case: Case, edits: dict[str, Path]) -> tuple[Case, dict[str, Path], list[str]]:
    """``case`` with each mask in ``edits`` replaced by its saved edit (thread-safe).

    Returns
    -------
    case : Case
        The case with the edits (the originals' paths unchanged: edits are saved beside them).
    loaded : dict
        Mask id -> the edit file each mask now shows.
    problems : list of str
        Edits that could not be read (their masks keep the original), one message each.
    """
    if not edits:
        return case, {}, []
    masks, loaded, problems = dict(case.masks), {}, []
    for mid, path in edits.items():
        if mid not in masks:
            continue
        shape = np.shape(masks[mid])
        try:
            masks[mid] = np.asarray(read_mask(path, shape=shape), dtype=bool)
        except (IAAError, OSError, ValueError) as exc:
            problems.append(f"{path}: cannot read the saved edit of {mid}, showing the "
                            f"original ({exc})")
            continue
        loaded[mid] = Path(path)
    return dataclasses.replace(case, masks=masks), loaded, problems


class EditsMixin:
    """Edits and saving of :class:`~napari_iaa.widgets.review.ReviewWidget`.

    Uses the dock's ``live``, ``_baseline`` (mask id -> the mask as opened or last saved),
    ``_mask_info`` (mask id -> layer tag: ``mask_path``, ``annotator``), ``edit_label`` and
    ``save_btn`` and ``case_header()`` (the grid a volume edit is written with when its
    original is not a volume file).
    """

    live: LiveAgreement | None
    _baseline: dict[str, np.ndarray]
    _mask_info: dict[str, dict[str, Any]]
    edit_label: QLabel
    save_btn: QPushButton
    verdicts: Verdicts

    #: show the original masks instead of their current saved edits (the edits panel's toggle)
    show_originals: bool = False

    def current_edit_paths(self, case_id: str) -> dict[str, Path]:
        """Mask id -> the file of its current saved edit, for a case about to be opened.

        Empty when originals are asked for or there is no store; a recorded edit whose
        file is gone is left out (the original loads) with a notification.
        """
        store = None if self.show_originals else dock_store(self)
        if store is None:
            return {}
        try:
            current = store.current_edits(case_id)
        except IAAError as exc:
            notify_error(str(exc))
            return {}
        out = {}
        for mid, e in current.items():
            if e.path.is_file():
                out[mid] = e.path
            else:
                notify_warning(f"{e.path}: the current edit of {mid} ({case_id}) is missing; "
                               "showing the original")
        return out

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
        self.edit_label.setText(f"unsaved edits: {', '.join(ids)}" if ids else "no unsaved edits")

    def save_edits(self) -> list[Path]:
        """Write each edited mask beside its original (new file); returns the paths."""
        if self.live is None:
            return []
        if self.live.resync_pending:
            self.live.resync()
        written = [p for mid in self.unsaved_mask_ids() if (p := self._save_one(mid))]
        if written:
            notify_info("saved " + ", ".join(p.name for p in written) + f" in {written[0].parent}")
        self._update_edit_label()
        return written

    def _save_one(self, mid: str) -> Path | None:
        """Write mask ``mid`` beside its original; None (notified) when it cannot be."""
        assert self.live is not None
        info = self._mask_info.get(mid, {})
        original = info.get("mask_path")
        if not original:
            notify_error(f"{mid}: no original file known, cannot save beside it")
            return None
        who = dock_reviewer(self)
        try:
            path = save_edited_mask(
                self.live.mirrors[mid], Path(original), info.get("annotator") or mid,
                like=SimpleNamespace(**self.case_header()), reviewer=who,
            )
        except IAAError as exc:
            notify_error(str(exc))
            return None
        except OSError as exc:
            notify_error(f"{original}: cannot write the edited mask ({exc})")
            return None
        self._baseline[mid] = self.live.mirrors[mid].copy()
        self.live.dirty.discard(mid)
        self._record_edit(mid, Path(path), who)
        return Path(path)

    def _record_edit(self, mid: str, path: Path, who: str) -> None:
        """Record a saved edit as the mask's current version (the file is kept either way);
        made when the dock's store is open (at once, or as soon as it opens)."""
        case_id = self.case_id
        if not case_id:
            return
        self.loaded_edits[mid] = path

        def record(store: ReviewStore | None) -> None:
            if store is None or store.read_only:
                why = (store.problem or "read-only") if store is not None else "no review store"
                notify_error(f"{path.name} saved, but not recorded in the review store ({why})")
                return
            try:
                store.add_edit_version(case_id, mid, path, reviewer=who)
            except IAAError as exc:
                notify_error(f"{path.name} saved, but not recorded in the review store: {exc}")
                return
            if case_id == self.case_id:
                self.notify_edits_changed()

        self.verdicts.when_open(record)

    def on_store_opened(self, store: ReviewStore) -> None:
        """The dock's store is open: a case shown before it was (its originals, for want of
        the store) is reopened with its current edits, unless it has unsaved edits; the
        panels show the store's state."""
        cid = self.case_id
        if (cid and self.dataset is not None and cid in self.dataset.ids
                and not self.show_originals and not self.unsaved_mask_ids()):
            try:
                current = {m: e.path for m, e in store.current_edits(cid).items()}
            except IAAError as exc:
                notify_error(str(exc))
                current = {}
            if current and current != self.loaded_edits:
                self.open_case(cid, _confirmed=True)
                return
        self.notify_edits_changed()
    @property
    def loaded_edits(self) -> dict[str, Path]:
        """Mask id -> the saved edit its layer was loaded from (absent: the original)."""
        return self.__dict__.setdefault("_loaded_edits", {})

    def on_edits_changed(self, callback: Any) -> None:
        """Call ``callback()`` after a case opens, an edit is saved or a version loaded."""
        self.__dict__.setdefault("_edits_listeners", []).append(callback)

    def notify_edits_changed(self) -> None:
        """Tell the listeners of :meth:`on_edits_changed` (a closed panel is dropped)."""
        listeners = self.__dict__.get("_edits_listeners", [])
        for fn in list(listeners):
            try:
                fn()
            except RuntimeError:  # its widget was deleted
                listeners.remove(fn)
