"""npe2 hooks: reader, writer, sample data and widget factories (see ``napari.yaml``).

Readers and samples return layer data tuples tagged with ``metadata["napari_iaa"]``; the
review dock, opened here when a viewer is reachable, recognises those layers when napari
adds them and binds its live agreement to them. Without a viewer (scripts, tests of the
hooks alone) the layers are still complete.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_iaa.errors import DatasetError, IAAError

PLUGIN_NAME = "napari-iaa"
REVIEW_WIDGET_NAME = "Review"

__all__ = [
    "get_reader",
    "write_labels",
    "synthetic_sample",
    "lidc_sample",
    "make_review_widget",
    "open_review_dock",
]


# ----------------------------------------------------------------------------- widgets
def make_review_widget(napari_viewer: Any) -> Any:
    """The review dock for ``napari_viewer`` (the manifest points napari at the class
    :class:`~napari_iaa.widgets.ReviewWidget` itself, which napari inspects for the viewer
    argument)."""
    from napari_iaa.widgets.review import ReviewWidget

    return ReviewWidget(napari_viewer)


def open_review_dock(viewer: Any = None) -> Any:
    """Open (or show) the review dock in ``viewer`` (default: the current viewer).

    Returns the :class:`~napari_iaa.widgets.ReviewWidget`, or ``None`` when no viewer with
    a window is reachable.
    """
    if viewer is None:
        try:
            import napari

            viewer = napari.current_viewer()
        except Exception:
            return None
    window = getattr(viewer, "window", None)
    if window is None:
        return None
    try:
        _dock, widget = window.add_plugin_dock_widget(PLUGIN_NAME, REVIEW_WIDGET_NAME)
    except Exception:  # plugin not registered in this session, no Qt window ...
        return None
    return widget


# ----------------------------------------------------------------------------- reading
def _open_any(path: str | os.PathLike) -> Any:
    """A data set from a data-set folder, a manifest CSV or a single case folder."""
    from napari_iaa.data import open_dataset

    p = Path(path)
    try:
        return open_dataset(p)
    except DatasetError:
        if not p.is_dir():
            raise
        # a single case folder (image.<ext> + one mask per annotator)
        ds = open_dataset(p.parent, layout="folders")
        if p.name not in ds.ids:
            raise
        return ds.subset([p.name])


def _looks_like_ours(path: Path) -> bool:
    from napari_iaa.data import detect_layout

    if path.is_file():
        if path.suffix.lower() != ".csv":
            return False
        try:
            first = path.open("r", encoding="utf-8-sig", errors="replace").readline()
        except OSError:
            return False
        cols = {c.strip().lower() for c in first.split(",")}
        return {"case_id", "image", "mask"} <= cols
    if not path.is_dir():
        return False
    try:
        detect_layout(path)
        return True
    except (IAAError, OSError):
        pass
    # a case folder: image.<ext> beside at least one other image
    names = {n.lower() for n in os.listdir(path)} if path.is_dir() else set()
    return any(n.startswith(("image.", "img.")) for n in names) and len(names) >= 2


def get_reader(path: str | list[str]) -> Callable[[str], list[tuple]] | None:
    """npe2 reader: a data-set folder, a case folder or a manifest CSV, else ``None``."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    try:
        if not _looks_like_ours(p):
            return None
    except Exception:
        return None
    return read_path


def read_path(path: str | list[str], case_id: str | None = None) -> list[tuple]:
    """Open a data set (or case) and return the layers of its first (or given) case.

    The review dock is opened on the data set when a viewer is reachable.
    """
    if isinstance(path, list):
        path = path[0]
    ds = _open_any(path)
    if len(ds) == 0:
        raise DatasetError(f"{path}: no readable case")
    cid = case_id if case_id is not None else ds.ids[0]
    return _case_layers_with_dock(ds, cid, str(path))


def _case_layers_with_dock(ds: Any, case_id: str, source: str) -> list[tuple]:
    from napari_iaa.widgets._layers import case_layer_data

    case = ds.load(case_id)
    layers = case_layer_data(case, source=source)
    widget = open_review_dock()
    if widget is not None:
        # the dock adopts the layers (by their tag) when napari inserts them
        try:
            widget.set_dataset(ds, source=source, case_id=case_id, load=False)
        except Exception:
            pass
    return layers


# ----------------------------------------------------------------------------- writing
def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 writer for a Labels layer: a PNG mask (foreground = nonzero), written atomically.

    Saving over one of the data set's original masks is refused: the edit is written
    beside it instead, with the annotator and a timestamp in the name.
    """
    from napari_iaa.data import atomic_write_png, save_edited_mask

    mask = np.asarray(data) != 0
    target = Path(path)
    if target.suffix.lower() != ".png":
        target = target.with_suffix(".png")
    tag = (meta.get("metadata") or {}).get("napari_iaa") or {}
    original = tag.get("mask_path")
    same = False
    if original:
        try:
            same = target.exists() and os.path.samefile(target, original)
        except OSError:
            same = False
    if same:
        out = save_edited_mask(mask, Path(original), tag.get("annotator") or meta.get("name", "edit"))
        return [str(out)]
    atomic_write_png(target, (mask.astype(np.uint8) * 255))
    return [str(target)]


# ----------------------------------------------------------------------------- samples
def _pick_case(ds: Any, n_candidates: int = 16) -> str:
    """A case with clearly visible disagreement, cheaply.

    Among the ``n_candidates`` cases with the most masks (no pixels read to rank them), the
    one with the lowest IAA above 0.5 (a real disagreement, not a missing lesion).
    """
    from napari_iaa.agreement import iaa

    ids = list(ds.ids)
    ranked = sorted(
        range(len(ids)), key=lambda k: (-len(ds.entry(ids[k]).mask_paths), k)
    )[:n_candidates]
    best, best_v = ids[0], np.inf
    for k in ranked:
        cid = ids[k]
        try:
            case = ds.load(cid)
        except IAAError:
            continue
        v = float(iaa(case.stack()))
        if np.isfinite(v) and 0.5 < v < best_v:
            best, best_v = cid, v
    return best


def _sample(name: str) -> list[tuple]:
    from napari_iaa.data import open_dataset, sample_data_path

    path = sample_data_path(name)
    ds = open_dataset(path)
    if len(ds) == 0:
        raise DatasetError(f"{path}: sample data set has no readable case")
    return _case_layers_with_dock(ds, _pick_case(ds), str(path))


def synthetic_sample() -> list[tuple]:
    """Sample: synthetic dermoscopy lesions with several annotators (+ review dock)."""
    return _sample("synthetic")


def lidc_sample() -> list[tuple]:
    """Sample: real LIDC-IDRI lung nodule slices with 4 readers (+ review dock)."""
    return _sample("lidc")
