"""Layer data for a case, tagged so the review dock can recognise and track its layers.

Every layer we make carries ``metadata["napari_iaa"]`` (see :func:`tag_of`): its role
(``image``, ``annotator``, ``mhr``, ``majority``, ``staple``), the case, the source and a
``load_id`` shared by all layers of one opening of a case. The review dock adopts layers by
that tag, whether it added them itself or napari added them from a reader or a sample.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_iaa.widgets._common.colormaps import MHR_COLORMAP, annotator_color, colormap_arg

if TYPE_CHECKING:
    from napari_iaa.widgets.review.live import LiveSetup

__all__ = [
    "MAJORITY_COLOR", "MHR_COLORMAP", "STAPLE_COLOR", "TAG", "annotator_color",
    "apply_contours", "case_layer_data", "new_load_id", "single_color_labels", "tag_of",
    "volume_scale",
]

TAG = "napari_iaa"

MAJORITY_COLOR = "#FFFFFF"
STAPLE_COLOR = "#00FF66"

LayerData = tuple[Any, dict, str]


def single_color_labels(color: str) -> dict:
    """A label colour dict: background transparent, every label drawn in ``color``."""
    return {0: "transparent", None: color}


def tag_of(layer: Any) -> dict | None:
    """Our tag of a layer (or ``None`` if the layer is not one of ours)."""
    md = getattr(layer, "metadata", None)  # any napari layer, ours or not
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
    prepared: LiveSetup | None = None,
) -> list[LayerData]:
    """Layer data tuples for one case: image, MHR, consensus, one Labels per mask.

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
    prepared : LiveSetup, optional
        :func:`napari_iaa.widgets.review.live.prepare_live` of the case's masks: its vote
        counts and MHR display (down-sampled by ``mhr_k`` for large images, shown through
        the layer's scale) are used instead of recomputing them.

    Returns
    -------
    list of (data, meta, layer_type)
        napari layer data tuples, ordered bottom to top.
    """
    base = {
        "case_id": case.case_id,
        "source": str(source) if source is not None else None,
        "load_id": load_id or new_load_id(),
        **_header(case),
    }
    out = [_image_layer(case, base)]
    mask_ids = list(case.mask_ids)
    if with_derived and mask_ids:
        out += _derived_layers(case, base, compute_staple, prepared)
    out += [_annotator_layer(case, base, i, mid, contour) for i, mid in enumerate(mask_ids)]
    return out


def _header(case: Any) -> dict:
    """The case's grid in the tag: ``spacing``, ``origin``, ``direction`` (None: unknown)."""
    out = {}
    for key in ("spacing", "origin", "direction"):
        v = getattr(case, key, None)
        out[key] = tuple(float(x) for x in v) if v is not None else None
    return out


def volume_scale(tag_or_case: Any, ndim: int) -> tuple[float, ...] | None:
    """Layer ``scale`` of a volume: its voxel spacing (None for 2D or unknown spacing).

    ``tag_or_case`` is a case (``spacing`` attribute) or one of our tags (``"spacing"``).
    Only 3D data gets a scale: a 2D image keeps napari's unit pixels, as before.
    """
    sp = (tag_or_case.get("spacing") if isinstance(tag_or_case, dict)
          else getattr(tag_or_case, "spacing", None))
    if ndim != 3 or sp is None or len(sp) != 3:
        return None
    return tuple(float(s) for s in sp)


def _scaled(meta: dict, case: Any) -> dict:
    """``meta`` with the volume's spacing as ``scale`` (2D and unit-voxel cases unchanged)."""
    scale = volume_scale(case, len(case.shape))
    if scale is not None:
        meta["scale"] = scale
    return meta


def _image_layer(case: Any, base: dict) -> LayerData:
    image = np.asarray(case.image)
    meta = {
        "name": f"{case.case_id}",
        "rgb": _is_rgb(image),
        "metadata": {TAG: {**base, "role": "image"}},
    }
    return image, _scaled(meta, case), "image"


def _derived_layers(
    case: Any, base: dict, compute_staple: bool, prepared: LiveSetup | None
) -> list[LayerData]:
    """The MHR map, the majority vote and the STAPLE consensus (both hidden)."""
    mhr, mhr_meta, mv, stack = _mhr_and_majority(case, prepared)
    if compute_staple:
        consensus = _staple_consensus(
            list(stack) if stack is not None else [np.asarray(m) for m in case.masks.values()])
    else:
        consensus = mv.copy()
    mhr_layer = {
        "name": "MHR",
        # transparent at 0, more opaque with agreement: the image shows through
        "colormap": colormap_arg(MHR_COLORMAP),
        "contrast_limits": (0.0, 1.0),
        "blending": "translucent",
        "opacity": 0.9,
        "metadata": {TAG: {**base, "role": "mhr"}},
        **mhr_meta,
    }
    if "scale" not in mhr_meta:  # a down-sampled 2D display has its own scale
        _scaled(mhr_layer, case)
    return [
        (mhr, mhr_layer, "image"),
        (mv, _scaled(_consensus_meta("majority vote", MAJORITY_COLOR, base, "majority"), case),
         "labels"),
        (consensus, _scaled(_consensus_meta("STAPLE", STAPLE_COLOR, base, "staple"), case),
         "labels"),
    ]


def _mhr_and_majority(
    case: Any, prepared: LiveSetup | None
) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray | None]:
    """MHR display data, its layer's scale/translate, majority vote, mask stack (or None).

    From the worker's :class:`LiveSetup` when it matches the case (no whole-image work),
    else computed from the case's masks.
    """
    from napari_iaa.agreement import majority_vote, mhr_map

    mask_ids = list(case.mask_ids)
    if prepared is not None and prepared.ids == mask_ids:
        k = int(prepared.mhr_k)
        mhr_meta = {"scale": (k, k), "translate": ((k - 1) / 2, (k - 1) / 2)} if k > 1 else {}
        mv = (2 * prepared.votes.astype(np.int32) >= len(mask_ids)).astype(np.uint8)
        return prepared.mhr, mhr_meta, mv, None
    stack = case.stack()
    mhr = np.asarray(mhr_map(stack), dtype=np.float32)
    mv = np.asarray(majority_vote(stack), dtype=np.uint8)
    return mhr, {}, mv, stack


def _consensus_meta(name: str, color: str, base: dict, role: str) -> dict:
    return {
        "name": name,
        "colormap": single_color_labels(color),
        "visible": False,
        "metadata": {TAG: {**base, "role": role, "contour": 1}},
    }


def _annotator_layer(case: Any, base: dict, i: int, mid: str, contour: bool) -> LayerData:
    mask_path = case.mask_paths.get(mid)
    tag = {
        **base,
        "role": "annotator",
        "mask_id": mid,
        "index": i,
        "annotator": case.raters.get(mid, mid),
        "mask_path": str(mask_path) if mask_path else None,
        "contour": 2 if contour else 0,
    }
    meta = {
        "name": mid,
        "colormap": single_color_labels(annotator_color(i)),
        "opacity": 0.9,
        "metadata": {TAG: tag},
    }
    return np.asarray(case.masks[mid]).astype(np.uint8), _scaled(meta, case), "labels"


def apply_contours(layer: Any) -> None:
    """Set a layer's contour width from its tag (``contour`` is not a constructor arg)."""
    tag = tag_of(layer)
    if tag and "contour" in tag:
        layer.contour = int(tag["contour"])


def _staple_consensus(masks: list[np.ndarray]) -> np.ndarray:
    """STAPLE consensus as uint8, or majority vote when STAPLE cannot run."""
    from napari_iaa.agreement import majority_vote, staple

    if len(masks) < 2 or not any(m.any() for m in masks):
        return np.asarray(majority_vote(masks), dtype=np.uint8)
    try:
        return np.asarray(staple(masks).consensus, dtype=np.uint8)
    except Exception:  # noqa: BLE001 - STAPLE can fail on degenerate input: majority vote
        return np.asarray(majority_vote(masks), dtype=np.uint8)
