"""Layer data for a case, tagged so the review dock can recognise and track its layers.

Every layer we make carries ``metadata["napari_iaa"]`` (see :func:`tag_of`): its role
(``image``, ``annotator``, ``mhr``, ``majority``, ``staple``), the case, the source and a
``load_id`` shared by all layers of one opening of a case. The review dock adopts layers by
that tag, whether it added them itself or napari added them from a reader or a sample.
"""

from __future__ import annotations

import colorsys
import uuid
from pathlib import Path
from typing import Any

import numpy as np

TAG = "napari_iaa"

#: Distinct, colour-blind-friendly-ish annotator colours (Okabe-Ito + tab10 extras).
_PALETTE = [
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # green
    "#F0E442",  # yellow
    "#CC79A7",  # pink
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#9467BD",  # purple
    "#8C564B",  # brown
    "#17BECF",  # cyan
]

MHR_COLORMAP = "inferno"
MAJORITY_COLOR = "#FFFFFF"
STAPLE_COLOR = "#00FF66"


def annotator_color(i: int) -> str:
    """Colour of the ``i``-th annotator layer (hex string), distinct for any ``i``."""
    if i < len(_PALETTE):
        return _PALETTE[i]
    h = (i * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.75, 0.95)
    return f"#{int(r * 255):02X}{int(g * 255):02X}{int(b * 255):02X}"


def single_color_labels(color: str) -> dict:
    """A label colour dict: background transparent, every label drawn in ``color``."""
    return {0: "transparent", None: color}


def tag_of(layer: Any) -> dict | None:
    """Our tag of a layer (or ``None`` if the layer is not one of ours)."""
    md = getattr(layer, "metadata", None)
    if not isinstance(md, dict):
        return None
    tag = md.get(TAG)
    return tag if isinstance(tag, dict) else None


def new_load_id() -> str:
    """A fresh id shared by all layers of one opening of a case."""
    return uuid.uuid4().hex


def _is_rgb(image: np.ndarray) -> bool:
    return image.ndim >= 3 and image.shape[-1] in (3, 4)


def case_layer_data(
    case: Any,
    *,
    source: str | Path | None = None,
    load_id: str | None = None,
    contour: bool = True,
    with_derived: bool = True,
    compute_staple: bool = True,
    prepared: dict | None = None,
) -> list[tuple]:
    """Layer data tuples for one case: image, one Labels per mask, MHR, consensus.

    Parameters
    ----------
    case : napari_iaa.data.Case
        The case to show.
    source : str or Path, optional
        Where the case came from (data-set root, case folder or manifest), kept in the tag.
    load_id : str, optional
        Shared by every layer of this opening; a fresh one by default.
    contour : bool
        Draw annotator masks as contours (``True``) or filled.
    with_derived : bool
        Also add the MHR map and the consensus layers.
    compute_staple : bool
        Run STAPLE for its layer; ``False`` puts the majority vote there for now (the
        review dock recomputes the consensus itself right after).
    prepared : dict, optional
        :func:`napari_iaa.widgets._live.prepare_live` of the case's masks: its vote counts
        and MHR display (down-sampled by ``mhr_k`` for large images, shown through the
        layer's scale) are used instead of recomputing them.

    Returns
    -------
    list of (data, meta, layer_type)
        napari layer data tuples, ordered bottom to top.
    """
    load_id = load_id or new_load_id()
    base = {
        "case_id": case.case_id,
        "source": str(source) if source is not None else None,
        "load_id": load_id,
    }
    image = np.asarray(case.image)
    out: list[tuple] = [
        (
            image,
            {
                "name": f"{case.case_id}",
                "rgb": _is_rgb(image),
                "metadata": {TAG: {**base, "role": "image"}},
            },
            "image",
        )
    ]
    mask_ids = list(case.mask_ids)
    if with_derived and mask_ids:
        from napari_iaa.agreement import majority_vote, mhr_map

        mhr_meta: dict = {}
        if prepared is not None and prepared.get("ids") == mask_ids:
            stack = None
            mhr = prepared["mhr"]
            k = int(prepared.get("mhr_k", 1))
            if k > 1:
                mhr_meta = {"scale": (k, k), "translate": ((k - 1) / 2, (k - 1) / 2)}
            votes = prepared["votes"]
            mv = (2 * votes.astype(np.int32) >= len(mask_ids)).astype(np.uint8)
        else:
            stack = case.stack()
            mhr = np.asarray(mhr_map(stack), dtype=np.float32)
            mv = np.asarray(majority_vote(stack), dtype=np.uint8)
        out.append(
            (
                mhr,
                {
                    "name": "MHR",
                    "colormap": MHR_COLORMAP,
                    "contrast_limits": (0.0, 1.0),
                    "blending": "additive",
                    "opacity": 0.55,
                    "metadata": {TAG: {**base, "role": "mhr"}},
                    **mhr_meta,
                },
                "image",
            )
        )
        out.append(
            (
                mv,
                {
                    "name": "majority vote",
                    "colormap": single_color_labels(MAJORITY_COLOR),
                    "visible": False,
                    "metadata": {TAG: {**base, "role": "majority", "contour": 1}},
                },
                "labels",
            )
        )
        out.append(
            (
                _staple_consensus(stack if stack is not None else case.stack())
                if compute_staple
                else mv.copy(),
                {
                    "name": "STAPLE",
                    "colormap": single_color_labels(STAPLE_COLOR),
                    "visible": False,
                    "metadata": {TAG: {**base, "role": "staple", "contour": 1}},
                },
                "labels",
            )
        )
    for i, mid in enumerate(mask_ids):
        mask_path = case.mask_paths.get(mid) if getattr(case, "mask_paths", None) else None
        out.append(
            (
                np.asarray(case.masks[mid]).astype(np.uint8),
                {
                    "name": mid,
                    "colormap": single_color_labels(annotator_color(i)),
                    "opacity": 0.9,
                    "metadata": {
                        TAG: {
                            **base,
                            "role": "annotator",
                            "mask_id": mid,
                            "index": i,
                            "annotator": case.raters.get(mid, mid),
                            "mask_path": str(mask_path) if mask_path else None,
                            "contour": 2 if contour else 0,
                        }
                    },
                },
                "labels",
            )
        )
    return out


def apply_contours(layer: Any) -> None:
    """Set a layer's contour width from its tag (``contour`` is not a constructor arg)."""
    tag = tag_of(layer)
    if tag and "contour" in tag:
        try:
            layer.contour = int(tag["contour"])
        except Exception:  # pragma: no cover - old napari without contour
            pass


def _staple_consensus(stack: np.ndarray) -> np.ndarray:
    """STAPLE consensus as uint8, or majority vote when STAPLE cannot run."""
    from napari_iaa.agreement import majority_vote, staple

    if stack.shape[0] < 2 or not stack.any():
        return np.asarray(majority_vote(stack), dtype=np.uint8)
    try:
        return np.asarray(staple(stack).consensus, dtype=np.uint8)
    except Exception:  # STAPLE can fail on degenerate input; fall back quietly
        return np.asarray(majority_vote(stack), dtype=np.uint8)


_GC_FROZEN = False


def freeze_gc_once() -> bool:
    """Move every object alive now out of the cyclic garbage collector's reach (once).

    A napari process holds some 600,000 long-lived objects (Qt wrappers, napari models,
    torch, ...). Python's full (generation-2) collection walks all of them: ~240 ms with
    every thread stopped, triggered by allocations anywhere (a training step, a layer), and
    the viewer freezes that long. ``gc.collect()`` then ``gc.freeze()`` once, when a dock
    opens, leaves later full collections only the objects made since (~40 ms measured).
    Frozen objects are still freed by reference counting; only reference cycles among
    them are never reclaimed. Because that changes the whole napari process, not just
    this plugin, it is opt-in: ``NAPARI_IAA_GC_FREEZE=1`` turns it on. Returns True if it
    froze now.
    """
    global _GC_FROZEN
    import gc
    import os

    if _GC_FROZEN or os.environ.get("NAPARI_IAA_GC_FREEZE", "0").strip().lower() not in (
        "1", "true", "yes", "on"
    ):
        return False
    _GC_FROZEN = True
    gc.collect()
    gc.freeze()
    return True
