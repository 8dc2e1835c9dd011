"""The case tab's slice profile of a volume: IAA and n_marked per slice, and going there.

The profile (as :func:`napari_iaa.agreement.slice_profile` gives it, along the first axis:
the axis napari's slider walks) is built from per-slice pairwise counts
(:class:`~.slice_counts.SliceCounts`). Opening a volume counts every slice (one read);
after edits, debounced (300 ms after the last one), only the slices the edits touched are
counted again. Small jobs run at once, larger ones in the plugin's low-priority worker.
Clicking the plot, or "go to worst slice", moves the viewer to that slice. Hidden for 2D
cases.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_iaa.agreement import SliceProfile
from napari_iaa.widgets._common import fmt_number, no_threads, notify_error, start_worker
from napari_iaa.widgets.review.events import ProfileResult
from napari_iaa.widgets.review.live import LiveAgreement
from napari_iaa.widgets.review.profile_plot import SliceProfilePlot
from napari_iaa.widgets.review.slice_counts import SliceCounts, measure_slices

__all__ = ["ProfilePanel", "count_slices"]


def count_slices(gen: int, masks: list[np.ndarray], slices: list[int]) -> ProfileResult:
    """Per-slice pairwise counts of ``slices`` of ``masks`` (worker-safe; reads only them)."""
    return ProfileResult(gen, measure_slices(masks, slices))


class _Dock(Protocol):
    """What the profile uses of the review dock."""

    viewer: Any
    live: LiveAgreement | None
    panel: Any  # the AgreementPanel: its empty-pair rule
    slow_sync_max_pixels: int

    def annotator_layers(self) -> dict[str, Any]: ...


class ProfilePanel(QGroupBox):
    """Slice profile of the open volume (see the module docstring).

    Parameters
    ----------
    dock : ReviewWidget
        Its live masks, empty-pair rule, viewer and annotator layers.

    Signals
    -------
    updated() : a fresh profile is shown.
    """

    updated = Signal()

    #: debounce after an edit (ms)
    delay_ms = 300

    def __init__(self, dock: _Dock, parent: QWidget | None = None) -> None:
        super().__init__("Slice profile (axis 0)", parent)
        self._dock = dock
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.plot = SliceProfilePlot()
        self.plot.slice_clicked.connect(self.go_to_slice)
        lay.addWidget(self.plot)
        row = QHBoxLayout()
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.worst_btn = QPushButton("Go to worst slice")
        self.worst_btn.setToolTip("move the viewer to the marked slice with the lowest IAA")
        self.worst_btn.clicked.connect(self.go_to_worst)
        row.addWidget(self.info, 1)
        row.addWidget(self.worst_btn)
        lay.addLayout(row)
        self.profile: SliceProfile | None = None
        self._counts: SliceCounts | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(self.delay_ms)
        self._timer.timeout.connect(self.refresh)
        self._gen = 0
        self._running = False
        self._again = False
        self.worker: Any = None
        self._volume = False
        dock.viewer.dims.events.current_step.connect(self._on_step)
        self.setVisible(False)

    # -- life cycle --------------------------------------------------------------------
    def disconnect_viewer(self) -> None:
        """Stop following the viewer's slider (the dock is going away)."""
        self._timer.stop()
        self._dock.viewer.dims.events.current_step.disconnect(self._on_step)

    def reset(self) -> None:
        """A case was bound: show the panel for a volume (and compute), hide it for 2D."""
        self._timer.stop()
        self._gen += 1
        self._counts = None
        self._again = False
        self.profile = None
        self.plot.clear()
        self.info.setText("")
        self.worst_btn.setEnabled(False)
        live = self._dock.live
        volume = live is not None and bool(live.ids) and live.mirrors[live.ids[0]].ndim == 3
        self._volume = volume
        self.setVisible(volume)
        if volume:
            self._on_step()
            self.refresh()

    def schedule(self) -> None:
        """Recompute after the debounce delay (restarted by every call); no-op for 2D."""
        if self._volume:
            self._timer.start()

    # -- computing ---------------------------------------------------------------------
    def refresh(self) -> None:
        """Count the slices edited since the last refresh (all of them after opening) and
        show the profile: at once for small jobs, else in the low-priority worker."""
        self._timer.stop()
        live = self._dock.live
        if live is None or not live.ids or live.mirrors[live.ids[0]].ndim != 3:
            return
        if self._running:
            self._again = True
            return
        masks = [live.mirrors[mid] for mid in live.ids]
        touched = live.take_touched_slices()
        if self._counts is None or self._counts.counts.shape != (masks[0].shape[0], len(masks)):
            self._counts = SliceCounts(masks[0].shape[0], len(masks))
            touched = set(range(masks[0].shape[0]))
        if not touched:
            self.show_profile()
            return
        slices = sorted(touched)
        args = (self._gen, masks, slices)
        if masks[0][0].size * len(slices) <= self._dock.slow_sync_max_pixels or no_threads():
            self._on_result(count_slices(*args))
            return
        self._running = True
        self.worker = start_worker(
            count_slices, *args, on_return=self._on_result, on_error=self._on_error,
            on_finish=self._on_finished, low_priority=True, owner=self,
            on_stop=self._stopped,
        )

    def _on_error(self, exc: BaseException) -> None:
        notify_error(f"slice profile not computed ({type(exc).__name__}: {exc})")

    def _stopped(self) -> None:
        """The dock closed mid-job: nothing runs any more (a reopened dock starts afresh)."""
        self._running, self._again, self.worker = False, False, None

    def _on_finished(self) -> None:
        self._running = False
        self.worker = None
        if self._again:
            self._again = False
            self._timer.start()

    def _on_result(self, res: ProfileResult) -> None:
        if res.gen != self._gen or self._counts is None:
            return  # stale: another case was opened meanwhile
        self._counts.apply(*res.counts)
        self.show_profile()

    def show_profile(self) -> None:
        """Show the profile of the current counts (with the panel's empty-pair rule)."""
        if self._counts is None:
            return
        self.profile = prof = self._counts.profile(self._dock.panel.empty_rule)
        worst = prof.worst_slice()
        self.plot.set_profile(prof.iaa, prof.n_marked, prof.n_annotators, worst)
        self.worst_btn.setEnabled(worst is not None)
        marked = int(np.count_nonzero(prof.n_marked))
        if worst is None:
            self.info.setText(f"{prof.iaa.size} slices, none marked")
        else:
            self.info.setText(
                f"{prof.iaa.size} slices, {marked} marked · worst {worst}: IAA "
                f"{fmt_number(prof.iaa[worst])}, marked by {prof.n_marked[worst]}/"
                f"{prof.n_annotators}"
            )
        self.updated.emit()

    # -- the viewer's slice ------------------------------------------------------------
    def _axis(self) -> tuple[int, float, float] | None:
        """(world axis, scale, translate) of the volume's first axis, from a mask layer."""
        layers = list(self._dock.annotator_layers().values())
        if not layers or layers[0].ndim != 3:
            return None
        lay = layers[0]
        axis = self._dock.viewer.dims.ndim - 3
        return axis, float(lay.scale[0]), float(lay.translate[0])

    def current_slice(self) -> int | None:
        """The slice the viewer shows (None without a volume)."""
        ax = self._axis()
        if ax is None:
            return None
        axis, scale, translate = ax
        return int(round((self._dock.viewer.dims.point[axis] - translate) / scale))

    def go_to_slice(self, index: int) -> None:
        """Move the viewer to slice ``index`` of the volume."""
        ax = self._axis()
        if ax is None:
            return
        axis, scale, translate = ax
        self._dock.viewer.dims.set_point(axis, translate + int(index) * scale)

    def go_to_worst(self) -> None:
        """Move the viewer to the worst marked slice."""
        if self.profile is not None and (k := self.profile.worst_slice()) is not None:
            self.go_to_slice(k)

    def _on_step(self, _event: Any = None) -> None:
        if self._volume:
            self.plot.set_current(self.current_slice())
