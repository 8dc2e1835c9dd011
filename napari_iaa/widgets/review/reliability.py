"""Leave-one-out Dice, STAPLE, the consensus layers and (when the matrix shows them) the
pairwise surface distances, recomputed after edits.

Debounced (300 ms after the last edit). Small images are done at once; large ones (more
than the dock's ``slow_sync_max_pixels`` per mask), and any refresh that computes surface
distances (HD95/ASSD), in a low-priority worker
(:func:`~napari_iaa.widgets._common.start_worker` with ``low_priority=True``: one at a
time on the plugin's own niced thread; a request while one runs is queued). A result for
an older request, or for masks edited while it ran, is dropped (and, in the second case,
computed again). Hidden consensus layers of large images get their new data only when shown.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from qtpy.QtCore import QObject, QTimer, Signal

from napari_iaa.widgets._common import no_threads, notify_error, start_worker
from napari_iaa.widgets.review.agreement_panel import AgreementPanel
from napari_iaa.widgets.review.events import ReliabilityResult
from napari_iaa.widgets.review.live import LiveAgreement
from napari_iaa.widgets.review.matrix_metric import distance_reference, distance_unit

__all__ = ["Reliability", "compute_reliability"]

CONSENSUS_ROLES = ("majority", "staple")


def compute_reliability(gen: int, edits: int, masks: Sequence[np.ndarray], empty: str,
                        surface: bool = False, spacing: Sequence[float] | None = None
                        ) -> ReliabilityResult:
    """Leave-one-out Dice, STAPLE and both consensus masks of ``masks`` (worker-safe).

    With ``surface``, also the pairwise HD95 and ASSD
    (:func:`~napari_iaa.agreement.pairwise_surface_distances` with ``spacing``). A failure
    of LOO Dice or STAPLE (degenerate input) is reported in ``error``, with the majority
    vote as the STAPLE consensus; it never raises for such input.
    """
    from napari_iaa.agreement import (
        leave_one_out_dice,
        majority_vote,
        pairwise_surface_distances,
        staple,
    )

    masks = list(masks)  # every step reads the list: no stacked copy (360 MB at 15 x 24 Mpx)
    mv = np.asarray(majority_vote(masks))
    loo = sens = spec = None
    consensus, error = mv, None
    try:
        if len(masks) >= 2:
            loo = np.asarray(leave_one_out_dice(masks, empty=empty), dtype=float)
        if len(masks) >= 2 and any(m.any() for m in masks):
            res = staple(masks, threads=_worker_threads())
            sens, spec = res.sensitivity, res.specificity
            consensus = np.asarray(res.consensus)
    except Exception as exc:  # noqa: BLE001 - reliability is informative; never break the view
        error = f"{type(exc).__name__}: {exc}"
    distances = None
    if surface:
        try:
            distances = pairwise_surface_distances(masks, spacing)
        except Exception as exc:  # noqa: BLE001 - informative; the Dice matrix stays
            error = f"surface distances: {type(exc).__name__}: {exc}"
    return ReliabilityResult(gen=gen, edits=edits, majority=mv, staple=consensus, loo=loo,
                             sens=sens, spec=spec, error=error, surface=distances)


class _Dock(Protocol):
    """What the reliability refresh uses of the review dock."""

    live: LiveAgreement | None
    panel: AgreementPanel
    case_id: str | None
    slow_sync_max_pixels: int
    lazy_consensus_min_pixels: int

    def our_layers(self, role: str | None = None) -> list[Any]: ...

    def case_header(self) -> dict[str, Any]: ...


def _worker_threads() -> int:
    """Threads for STAPLE's code histogram in the dock's worker: one core is left to the
    GUI thread (on 2 cores, SimpleITK's filter on two threads starved the event loop for
    100-200 ms)."""
    return max(1, (os.cpu_count() or 1) - 1)


class Reliability(QObject):
    """The debounced reliability refresh of one review dock (see the module docstring).

    Parameters
    ----------
    dock : ReviewWidget
        The dock (also this object's Qt parent): its live agreement, panel and layers.

    Signals
    -------
    updated() : LOO Dice, STAPLE and the consensus layers were refreshed.
    """

    updated = Signal()  # a fresh result is shown

    #: debounce after an edit (ms)
    delay_ms = 300

    def __init__(self, dock: _Dock) -> None:
        super().__init__(dock)  # type: ignore[arg-type]
        self._dock = dock
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(self.delay_ms)
        self.timer.timeout.connect(self.refresh)
        self._gen = 0
        self._running = False
        self._again = False
        self.worker: Any = None
        #: consensus data of hidden layers, applied when a layer is shown
        self.pending: dict[str, np.ndarray] = {}

    @property
    def busy(self) -> bool:
        """Whether a refresh is scheduled, running or queued."""
        return self._running or self._again or self.timer.isActive()

    def schedule(self) -> None:
        """Refresh after the debounce delay (restarted by every call)."""
        self.timer.start()

    def reset(self) -> None:
        """Forget deferred consensus data (a new case was bound)."""
        self.pending = {}

    def refresh(self) -> None:
        """Recompute now: at once for small images, else in the low-priority worker."""
        self.timer.stop()
        live = self._dock.live
        if live is None:
            return
        masks = [live.mirrors[mid] for mid in live.ids]
        self._gen += 1
        surface = self._dock.panel.metric != "dice"
        spacing = self._dock.case_header().get("spacing")
        args = (self._gen, live.n_edits, masks, self._dock.panel.empty_rule, surface, spacing)
        if no_threads() or (masks[0].size <= self._dock.slow_sync_max_pixels and not surface):
            self._on_result(compute_reliability(*args))
            return
        if self._running:
            self._again = True
            return
        self._running = True
        self.worker = start_worker(
            compute_reliability, *args,
            on_return=self._on_result, on_error=self._on_error, on_finish=self._on_finished,
            low_priority=True, owner=self._dock, on_stop=self._stopped,
        )

    def _on_error(self, exc: BaseException) -> None:
        notify_error(f"case {self._dock.case_id}: reliability not computed "
                     f"({type(exc).__name__}: {exc})")

    def _stopped(self) -> None:
        """The dock closed mid-job: nothing runs any more (a reopened dock starts afresh)."""
        self._running, self._again, self.worker = False, False, None

    def _on_finished(self) -> None:
        self._running = False
        self.worker = None
        if self._again:
            self._again = False
            self.timer.start()

    def _on_result(self, res: ReliabilityResult) -> None:
        live = self._dock.live
        if res.gen != self._gen or live is None:
            return  # stale: the case was switched or a newer request was made
        if res.edits != live.n_edits:
            self._again = True  # the masks changed while it ran: compute again
            return
        if res.error:
            notify_error(f"case {self._dock.case_id}: reliability not computed ({res.error})")
        self._dock.panel.set_reliability(res.loo, res.sens, res.spec)
        if res.surface is not None:
            spacing = self._dock.case_header().get("spacing")
            self._dock.panel.set_surface(res.surface.hd, res.surface.assd,
                                         distance_unit(spacing), distance_reference(spacing))
        self._apply_consensus("majority", res.majority)
        self._apply_consensus("staple", res.staple)
        self.updated.emit()

    def _apply_consensus(self, role: str, arr: np.ndarray) -> None:
        for layer in self._dock.our_layers(role):
            if layer.data.shape != arr.shape:
                continue
            if not layer.visible and arr.size > self._dock.lazy_consensus_min_pixels:
                self.pending[role] = arr  # applied when shown
                continue
            self.pending.pop(role, None)
            layer.data = arr.astype(layer.data.dtype)

    def apply_pending(self, _event: Any = None) -> None:
        """Give a consensus layer its deferred data when it is shown."""
        for role in list(self.pending):
            arr = self.pending[role]
            for layer in self._dock.our_layers(role):
                if layer.visible and layer.data.shape == arr.shape:
                    layer.data = arr.astype(layer.data.dtype)
                    self.pending.pop(role, None)
