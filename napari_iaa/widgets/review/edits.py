"""The review dock's edits: which masks differ from their saved state, and saving them.

Edited masks are written as new files beside the originals, atomically, through
:func:`napari_iaa.data.save_edited_mask` (``<mask>_edited-<annotator>-<time>.png`` for 2D;
a volume keeps its format and header: NIfTI in, NIfTI out; a volume stacked from slice
files is written as NIfTI with the case's grid); originals are never changed.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from qtpy.QtWidgets import QLabel, QPushButton

from napari_iaa.data import save_edited_mask
from napari_iaa.errors import IAAError
from napari_iaa.widgets._common import notify_error, notify_info
from napari_iaa.widgets.review.live import LiveAgreement

__all__ = ["EditsMixin"]


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
        try:
            path = save_edited_mask(
                self.live.mirrors[mid], Path(original), info.get("annotator") or mid,
                like=SimpleNamespace(**self.case_header()),
            )
        except IAAError as exc:
            notify_error(str(exc))
            return None
        except OSError as exc:
            notify_error(f"{original}: cannot write the edited mask ({exc})")
            return None
        self._baseline[mid] = self.live.mirrors[mid].copy()
        self.live.dirty.discard(mid)
        return Path(path)
