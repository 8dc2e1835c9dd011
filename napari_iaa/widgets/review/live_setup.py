"""The whole-image set-up of the review dock's live agreement (made in a worker).

:func:`prepare_live` builds the boolean mirrors, the tracker counts, the votes and the MHR
display of a case's masks; :class:`~napari_iaa.widgets.review.live.LiveAgreement` then
keeps them in step with the annotator layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_iaa.agreement import (
    MHR_DISPLAY_MAX_PIXELS,
    AgreementTracker,
    mhr_display,
    mhr_factor,
)

__all__ = ["LiveSetup", "prepare_live"]


@dataclass
class LiveSetup:
    """The whole-image set-up of a :class:`LiveAgreement` (made in a worker).

    Attributes
    ----------
    ids : list of str
        Mask ids in display order.
    mirrors : dict
        Boolean copy of each mask (the live state the tracker follows).
    tracker : AgreementTracker
        Counts of the mirrors.
    votes : int16 array
        Per pixel, how many masks mark it.
    mhr_k : int
        Block size of the MHR display (``1``: full resolution).
    mhr : float32 array
        The MHR display data.
    baseline : dict, optional
        The masks as opened (the reference of "unsaved edits"); set by the dock.
    """

    ids: list[str]
    mirrors: dict[str, np.ndarray]
    tracker: AgreementTracker
    votes: np.ndarray
    mhr_k: int
    mhr: np.ndarray
    baseline: dict[str, np.ndarray] | None = field(default=None)


def prepare_live(masks: Sequence[tuple[str, Any]], mhr_max_pixels: int = MHR_DISPLAY_MAX_PIXELS
                 ) -> LiveSetup:
    """Whole-image set-up of a :class:`LiveAgreement` (thread-safe; run it in a worker).

    Parameters
    ----------
    masks : sequence of (mask_id, array)
        Masks in display order (nonzero = foreground); not modified.
    mhr_max_pixels : int
        Above this many pixels the MHR display is down-sampled (see ``mhr_factor``).

    Returns
    -------
    LiveSetup
        Mirrors (bool copies), tracker, votes (int16), ``mhr_k`` and the MHR display.
    """
    ids = [mid for mid, _ in masks]
    mirrors = {mid: np.asarray(a) != 0 for mid, a in masks}
    tracker = AgreementTracker({mid: mirrors[mid] for mid in ids})
    if ids:
        votes = np.zeros(mirrors[ids[0]].shape, dtype=np.int16)
        for mid in ids:
            votes += mirrors[mid]
    else:
        votes = np.zeros((0,), dtype=np.int16)
    k = mhr_factor(votes.shape, mhr_max_pixels) if ids else 1
    mhr = mhr_display(votes, len(ids), k)[1] if ids else np.zeros((0,), np.float32)
    return LiveSetup(ids=ids, mirrors=mirrors, tracker=tracker, votes=votes, mhr_k=k, mhr=mhr)
