"""In-memory training data: cases resized once to uint8 arrays, splits by group, torch data sets.

:class:`CaseCache` reads every case of a ``napari_iaa.data.Dataset`` once (threads), resizes
the image to the training size with the same code the plugin uses at prediction time
(``napari_iaa.models.preprocess``) and keeps it as uint8, with the masks as booleans and
the case-level targets (IAA, diagnosis). The LIDC set (10,681 slices, 4 masks) takes
about 10,681 x 128 x 128 x 5 bytes = 0.9 GB at 128 px and a quarter of that at 64 px.
It can be saved to / loaded from an ``.npz`` cache (``allow_pickle=False``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from napari_iaa.agreement.consensus import fraction_to_level
from napari_iaa.errors import DatasetError
from training.augmentation import Augment

_log = logging.getLogger("training")

__all__ = [
    "CaseCache",
    "build_cache",
    "split_by_group",
    "mhr_fraction",
    "ordinal_levels",
    "majority",
    "dice_np",
    "IAATorchDataset",
    "MHRTorchDataset",
]


# ----------------------------------------------------------------------------- targets
def mhr_fraction(masks: np.ndarray) -> np.ndarray:
    """Fraction of annotators per pixel, ``(N, H, W)`` bool -> ``(H, W)`` float32."""
    return masks.mean(axis=0, dtype=np.float32) if len(masks) else np.zeros(masks.shape[1:], np.float32)


def ordinal_levels(masks: np.ndarray, n_levels: int) -> np.ndarray:
    """Agreement level per pixel: ``MHR * (n_levels - 1)`` rounded half up, as uint8.

    Level ``k`` means a fraction ``k / (n_levels - 1)`` of the annotators, the meaning
    ``napari_iaa.models.networks.expected_fraction`` gives the network's output, so
    images with different numbers of annotators share one set of levels. The rounding is
    :func:`napari_iaa.agreement.consensus.fraction_to_level`, the one used everywhere;
    the mhr task trains on the exact fraction instead (``training.losses.soft_rps_loss``).
    """
    return fraction_to_level(mhr_fraction(masks), n_levels).astype(np.uint8)


def majority(masks: np.ndarray) -> np.ndarray:
    """Majority vote (ties count as foreground): MHR >= 0.5."""
    return mhr_fraction(masks) >= 0.5


def dice_np(a: np.ndarray, b: np.ndarray, empty: float = 0.0) -> float:
    """Dice of two boolean masks; ``empty`` when both are empty."""
    sa, sb = int(a.sum()), int(b.sum())
    if sa + sb == 0:
        return float(empty)
    return 2.0 * int(np.logical_and(a, b).sum()) / (sa + sb)


# ----------------------------------------------------------------------------- splits
def split_by_group(
    groups: Sequence[str | None],
    fractions: dict[str, float],
    seed: int = 0,
    ids: Sequence[str] | None = None,
) -> dict[str, list[int]]:
    """Split case indices so that no group (patient) is in two splits.

    Parameters
    ----------
    groups : sequence of str or None
        Group of each case; ``None`` makes a case its own group (its id, if ``ids``).
    fractions : dict
        Fraction of the groups for each held-out split, e.g. ``{"val": 0.15,
        "test": 0.15}``; the rest is ``"train"``. A non-zero fraction gets at least one
        group when there are enough groups.
    seed : int
        Seed of the group permutation.

    Returns
    -------
    dict
        Split name -> sorted case indices (``"train"`` first).
    """
    keys = [g if g is not None else f"__case_{ids[i] if ids is not None else i}" for i, g in enumerate(groups)]
    uniq = sorted(set(keys))
    rng = np.random.default_rng(seed)
    order = [uniq[i] for i in rng.permutation(len(uniq))]
    n = len(order)
    assign: dict[str, str] = {}
    start = 0
    held = [(name, f) for name, f in fractions.items() if f > 0]
    for name, frac in held:
        k = int(round(frac * n))
        if k == 0 and n - start > 1:
            k = 1
        k = min(k, max(0, n - start - 1))
        for g in order[start : start + k]:
            assign[g] = name
        start += k
    for g in order[start:]:
        assign[g] = "train"
    out: dict[str, list[int]] = {"train": []}
    for name, _ in held:
        out[name] = []
    for i, g in enumerate(keys):
        out[assign[g]].append(i)
    return out


# ----------------------------------------------------------------------------- cache
@dataclass
class CaseCache:
    """Cases resized to ``size`` as uint8 arrays plus their targets.

    Attributes
    ----------
    images : ndarray
        ``(n, S, S, C)`` uint8, ``C`` = 1 (grey) or 3.
    masks : list of ndarray
        ``(N_i, S, S)`` bool per case.
    iaa : ndarray
        ``(n,)`` float32 IAA of each case at full resolution (NaN if < 2 masks).
    case_ids, groups, raters, meta
    shapes : list of list of int
        Each image's native ``[H, W]`` before resizing (empty in caches written before
        it was recorded): CURVAS's 20-pixel box margin and pixel areas are native.
    """

    size: int
    images: np.ndarray
    masks: list[np.ndarray]
    iaa: np.ndarray
    case_ids: list[str]
    groups: list[str | None]
    raters: list[list[str]] = field(default_factory=list)
    meta: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    shapes: list[list[int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.case_ids)

    def image_float(self, i: int) -> np.ndarray:
        """``(S, S, 3)`` float32 in [0, 1]."""
        im = self.images[i].astype(np.float32) / 255.0
        if im.shape[-1] == 1:
            im = np.repeat(im, 3, axis=-1)
        return im

    def labels(self, column: str) -> tuple[np.ndarray, list[str]]:
        """Integer labels of a metadata column (-1 where missing) and the class names."""
        values = [m.get(column) for m in self.meta]
        ok = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v)) and str(v) != ""]
        if not ok:
            raise DatasetError(f"{self.source}: no case has a value in metadata column {column!r}")
        classes = sorted({str(v) for v in ok})
        index = {c: k for k, c in enumerate(classes)}
        lab = np.array([index.get(str(v), -1) if v is not None and str(v) in index else -1 for v in values], dtype=np.int64)
        return lab, classes

    # -- npz cache (no pickles) ---------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write the arrays to ``path`` (``.npz``; meta as JSON text)."""
        import json

        counts = np.array([len(m) for m in self.masks], dtype=np.int64)
        flat = np.concatenate(self.masks) if self.masks else np.zeros((0, self.size, self.size), bool)
        payload = json.dumps({"case_ids": self.case_ids, "groups": self.groups, "raters": self.raters,
                              "meta": self.meta, "source": self.source, "size": self.size,
                              "shapes": self.shapes}, default=str)
        tmp = Path(str(path) + ".tmp.npz")
        np.savez(tmp, images=self.images, masks=np.packbits(flat, axis=-1), mask_counts=counts,
                 mask_width=np.array([flat.shape[-1]]), iaa=self.iaa, info=np.array(payload))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> CaseCache:
        """Inverse of :meth:`save`."""
        import json

        with np.load(path, allow_pickle=False) as z:
            info = json.loads(str(z["info"]))
            width = int(z["mask_width"][0])
            flat = np.unpackbits(z["masks"], axis=-1, count=width).astype(bool)
            counts = z["mask_counts"]
            offsets = np.concatenate([[0], np.cumsum(counts)])
            masks = [flat[offsets[i] : offsets[i + 1]] for i in range(len(counts))]
            return cls(size=int(info["size"]), images=z["images"], masks=masks, iaa=z["iaa"],
                       case_ids=info["case_ids"], groups=info["groups"], raters=info["raters"],
                       meta=info["meta"], source=info["source"], shapes=info.get("shapes", []))


def _cache_key(data: str, layout: str | None, size: int, empty: str, max_cases: int | None, n: int) -> str:
    h = hashlib.sha256(f"{Path(data).resolve()}|{layout}|{size}|{empty}|{max_cases}|{n}|v2".encode()).hexdigest()
    return h[:16]


def _assemble(results: list[tuple], size: int, source: str) -> CaseCache:
    """One CaseCache from the per-case tuples of ``build_cache`` (one channel count)."""
    channels = 3 if any(r[1].shape[-1] == 3 for r in results) else 1
    images = np.stack([r[1] if r[1].shape[-1] == channels else np.repeat(r[1], 3, -1) for r in results])
    meta = [{k: v for k, v in r[6].items() if isinstance(v, str | int | float | bool) or v is None} for r in results]
    return CaseCache(
        size=size, images=images, masks=[r[2] for r in results],
        iaa=np.array([r[3] for r in results], dtype=np.float32),
        case_ids=[r[0] for r in results], groups=[r[4] for r in results],
        raters=[r[5] for r in results], meta=meta, source=source,
        shapes=[list(r[7]) for r in results],
    )


def build_cache(
    data: str | Path,
    size: int,
    layout: str | None = None,
    empty: str = "zero",
    max_cases: int | None = None,
    workers: int = 2,
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CaseCache:
    """Read a data set into a :class:`CaseCache` (or load it from ``cache_dir``).

    Cases that fail to load are skipped (they are in the data set's ``problems``);
    cases without any mask are left out, and so are volumes (the models are 2D; each
    skipped volume is logged).

    Raises
    ------
    DatasetError
        If nothing could be loaded (saying so when every case with masks is a volume).
    """
    from napari_iaa.agreement import iaa as iaa_fn
    from napari_iaa.data import open_dataset
    from napari_iaa.models.preprocess import prepare_image, resize_mask

    ds = open_dataset(data, layout=layout)
    ids = list(ds.ids)
    if max_cases is not None:
        ids = ids[: int(max_cases)]
    cache_file = None
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        cache_file = Path(cache_dir) / f"cache-{_cache_key(str(data), layout, size, empty, max_cases, len(ids))}.npz"
        if cache_file.is_file():
            with contextlib.suppress(OSError, ValueError, KeyError):  # unreadable: read again
                return CaseCache.load(cache_file)

    volumes: list[str] = []

    def load_one(cid: str):
        try:
            case = ds.load(cid, strict=False)
        except Exception as exc:  # noqa: BLE001 - a bad case is skipped, the rest trains
            _log.warning("skipped case %s: %s", cid, exc)  # IAAError messages name the file
            return None
        if case.n_masks == 0:
            return None
        if case.is_volume:  # the models are 2D: a volume is predicted slice by slice
            _log.warning("skipped case %s: %s is a volume %s; training takes 2D images",
                         cid, case.image_path, tuple(case.shape))
            volumes.append(f"{case.image_path} {tuple(case.shape)}")
            return None
        img = prepare_image(case.image, size, None, None).numpy()  # (3, S, S) in [0, 1]
        img8 = np.rint(img.transpose(1, 2, 0) * 255.0).astype(np.uint8)
        if np.array_equal(img8[..., 0], img8[..., 1]) and np.array_equal(img8[..., 0], img8[..., 2]):
            img8 = img8[..., :1]
        stack = case.stack()
        small = np.stack([resize_mask(m, size) for m in stack]).astype(bool)
        value = iaa_fn(stack, empty=empty) if len(stack) >= 2 else float("nan")
        return (cid, img8, small, float(value), case.group, [case.raters[m] for m in case.mask_ids], case.meta,
                [int(v) for v in stack.shape[1:3]])

    results = []
    total = len(ids)
    with ThreadPoolExecutor(max(1, int(workers))) as pool:
        for k, r in enumerate(pool.map(load_one, ids, chunksize=1 if total < 64 else 16)):
            if should_stop is not None and should_stop():
                raise InterruptedError("cancelled while reading the data set")
            if r is not None:
                results.append(r)
            if progress is not None and (k % 64 == 0 or k == total - 1):
                progress(k + 1, total)
    if not results and volumes:
        raise DatasetError(
            f"{data}: the models train on 2D images (grey or RGB), and the {len(volumes)} "
            f"case(s) with masks are volumes (e.g. {volumes[0]}); train on 2D slices (the LIDC "
            "layout's slice unit, or slices in the folders layout)")
    if not results:
        raise DatasetError(f"{data}: no case with masks could be loaded")
    cache = _assemble(results, size, str(data))
    if cache_file is not None:
        with contextlib.suppress(OSError):  # an unwritable cache: only slower next time
            cache.save(cache_file)
    return cache


# ----------------------------------------------------------------------------- torch data sets
def _norm(img: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    m = np.asarray(mean, dtype=np.float32)
    s = np.asarray(std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(((img - m) / s).transpose(2, 0, 1)))


class _Base(TorchDataset):
    def __init__(self, cache: CaseCache, indices: Sequence[int], mean, std, augment: Augment | None, seed: int):
        self.cache = cache
        self.indices = list(indices)
        self.mean, self.std = tuple(mean), tuple(std)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Augmentations depend on (seed, epoch, item) only: repeatable and resumable."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def _rng(self, item: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, item])

    def _image_masks(self, i: int, rng: np.random.Generator | None):
        img = self.cache.image_float(i)
        masks = self.cache.masks[i]
        if self.augment is not None and rng is not None:
            img, masks = self.augment(img, masks, rng)
        return img, masks


class IAATorchDataset(_Base):
    """Items ``{"image": (3, S, S), "iaa": (), "label": ()}`` (label -1 = no diagnosis)."""

    def __init__(self, cache, indices, mean, std, augment=None, seed=0, labels: np.ndarray | None = None):
        super().__init__(cache, indices, mean, std, augment, seed)
        self.labels = labels

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        i = self.indices[item]
        img = self.cache.image_float(i)
        if self.augment is not None:
            img, _ = self.augment(img, self.cache.masks[i][:0], self._rng(item))
        lab = int(self.labels[i]) if self.labels is not None else -1
        return {"image": _norm(img, self.mean, self.std), "iaa": torch.tensor(float(self.cache.iaa[i])),
                "label": torch.tensor(lab)}


class MHRTorchDataset(_Base):
    """Items ``{"image", "levels": (S, S) long, "mhr": (S, S) float, "mv": (S, S) float}``.

    ``mhr`` is the exact fraction of annotators (the mhr task's soft target);
    ``levels`` is it rounded half up (:func:`ordinal_levels`), or with ``binary`` the
    majority vote (2 levels). With ``binary``, ``target`` picks what ``mv`` (and
    ``levels``) is: ``"majority"`` the majority vote; ``"rater"`` one annotator's mask,
    drawn from ``(seed, epoch, item)`` for each training sample (ordinary training on
    multi-annotated data); ``"fraction"`` the annotator fraction itself, the expectation
    of that draw (what a ``rater`` member is validated against: BCE and the 2-level RPS
    are linear in their target).
    """

    def __init__(self, cache, indices, mean, std, augment=None, seed=0, n_levels: int = 5, binary: bool = False,
                 target: str = "majority"):
        super().__init__(cache, indices, mean, std, augment, seed)
        if target not in ("majority", "rater", "fraction"):
            raise ValueError(f"binary target must be 'majority', 'rater' or 'fraction', not {target!r}")
        self.n_levels = 2 if binary else int(n_levels)
        self.binary = binary
        self.target = target if binary else "majority"

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        i = self.indices[item]
        img, masks = self._image_masks(i, self._rng(item) if self.augment is not None else None)
        frac = mhr_fraction(masks)
        if self.target == "rater":
            draw = np.random.default_rng([self.seed, self.epoch, item, 1])
            mv = masks[int(draw.integers(len(masks)))].astype(np.float32)
        elif self.target == "fraction":
            mv = frac.astype(np.float32)
        else:
            mv = (frac >= 0.5).astype(np.float32)
        levels = (mv >= 0.5).astype(np.int64) if self.binary else fraction_to_level(frac, self.n_levels)
        return {"image": _norm(img, self.mean, self.std), "levels": torch.from_numpy(levels),
                "mhr": torch.from_numpy(frac), "mv": torch.from_numpy(mv)}
