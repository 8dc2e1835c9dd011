"""The data a model was trained on, and how well a data set matches it.

A model card records the :class:`DataDomain` of its training data (image kind, unit,
modality in words, raw intensity statistics, typical size, number of annotators);
:func:`domain_of` measures the same from a sample of a data set's cases (cheap: a few
dozen images, pixels subsampled), and :func:`match_score` compares the two, with a short
reason for every way they differ. The registry ranks models by this score, so that the
LIDC models are used on LIDC slices and the dermoscopy models on dermoscopy images.

Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from napari_iaa.data import Case, Dataset, json_safe
from napari_iaa.errors import IAAError

__all__ = [
    "DOMAIN_SAMPLE",
    "MATCH_OK",
    "DataDomain",
    "DomainMatch",
    "domain_of",
    "match_score",
    "modality_of_layout",
]

#: cases :func:`domain_of` reads by default (spread evenly over the data set)
DOMAIN_SAMPLE = 24
#: a match scoring below this is a mismatch: the data do not look like the training data
MATCH_OK = 0.6
#: pixels per case that enter the intensity statistics (a regular subsample)
_PIXELS_PER_CASE = 1 << 16
#: what a layout's images usually are, in words (a data set's modality is not in its pixels)
#: score factor of a unit mismatch: a slice model runs on a volume slice by slice
_UNIT_FACTOR = {
    frozenset(("slice", "volume")): 0.8,
    frozenset(("image", "volume")): 0.6,
    frozenset(("image", "slice")): 0.9,
}
_LAYOUT_MODALITY = {
    "lidc": "CT slices (LIDC-IDRI layout)",
    "imapp": "dermoscopy (IMA++ layout)",
}


def modality_of_layout(layout: str | None, unit: str) -> str:
    """A guess of a data set's modality in words from its layout ("" when unknown)."""
    words = _LAYOUT_MODALITY.get(str(layout or ""), "")
    if words and unit == "volume" and layout == "lidc":
        return "CT nodules (LIDC-IDRI layout)"
    return words


@dataclass(frozen=True)
class DataDomain:
    """What the images of a data set are like.

    Parameters
    ----------
    image_kind : {"grey", "rgb"}
        Grey-level or colour images.
    unit : {"image", "slice", "volume"}
        The unit of a case: a 2D image, a slice of a scan, or a 3D volume.
    modality : str
        The kind of data in words (e.g. "CT slices (LIDC-IDRI lung nodule crops)").
    intensity : dict
        Statistics of the raw pixel values: ``mean``, ``std``, ``p1``, ``p50``, ``p99``.
    size : tuple of int
        Typical spatial size (the median of each axis over the sampled cases).
    n_annotators : dict
        ``min``, ``median`` and ``max`` masks per case.
    dtype : str
        The images' numpy dtype (e.g. "uint8", "int16").
    n_sampled : int
        How many cases the statistics come from.
    """

    image_kind: str
    unit: str
    modality: str = ""
    intensity: dict[str, float] = field(default_factory=dict)
    size: tuple[int, ...] = ()
    n_annotators: dict[str, float] = field(default_factory=dict)
    dtype: str = ""
    n_sampled: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary (the card's ``domain``)."""
        return json_safe(asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataDomain:
        """Build from a card's ``domain`` (unknown keys are ignored).

        Raises
        ------
        ValueError
            If ``image_kind`` or ``unit`` is missing or not one of the known values.
        """
        kind, unit = str(d.get("image_kind", "")), str(d.get("unit", ""))
        if kind not in ("grey", "rgb") or unit not in ("image", "slice", "volume"):
            raise ValueError(f"domain needs image_kind grey|rgb and unit image|slice|volume, "
                             f"got {kind!r} and {unit!r}")
        return cls(
            image_kind=kind, unit=unit, modality=str(d.get("modality", "")),
            intensity={str(k): float(v) for k, v in dict(d.get("intensity") or {}).items()},
            size=tuple(int(v) for v in d.get("size") or ()),
            n_annotators={str(k): float(v) for k, v in dict(d.get("n_annotators") or {}).items()},
            dtype=str(d.get("dtype", "")), n_sampled=int(d.get("n_sampled", 0)),
        )

    def describe(self) -> str:
        """One line: "grey CT slices, 128x128, uint8 median 37"."""
        what = self.modality or {"image": "images", "slice": "slices",
                                 "volume": "volumes"}[self.unit]
        size = "x".join(str(v) for v in self.size)
        p50 = self.intensity.get("p50")
        level = f", {self.dtype} median {_num(p50)}" if p50 is not None else ""
        return f"{self.image_kind} {what}{', ' + size if size else ''}{level}"


@dataclass(frozen=True)
class DomainMatch:
    """How well data match a model's training domain.

    ``score`` is in [0, 1]; ``reasons`` say why it is below 1 (empty for a full match);
    ``known`` is False when the card records no domain (the match cannot be checked).
    """

    score: float
    reasons: tuple[str, ...] = ()
    known: bool = True

    @property
    def ok(self) -> bool:
        """False when the data are known not to look like the training data.

        That is a score below ``MATCH_OK``; a card without a domain is not known to mismatch.
        """
        return not self.known or self.score >= MATCH_OK

    def explain(self) -> str:
        """The reasons in one line ("matches the training data" when there are none)."""
        return "; ".join(self.reasons) if self.reasons else "matches the training data"


def _num(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "?"
    return f"{v:.0f}" if abs(v) >= 10 else f"{v:.3g}"


# ----------------------------------------------------------------------------- measuring
def _sample_ids(ids: Sequence[str], n: int) -> list[str]:
    if len(ids) <= n:
        return list(ids)
    picks = np.linspace(0, len(ids) - 1, n).round().astype(int)
    return [ids[i] for i in dict.fromkeys(picks.tolist())]


def _cases(source: Dataset | Iterable[Case], max_cases: int) -> tuple[list[Case], Dataset | None]:
    if isinstance(source, Sequence | Iterator):  # cases
        return [c for _, c in zip(range(max_cases), source)], None
    cases = []  # a data set: ``ids`` and ``load`` (read lazily)
    for cid in _sample_ids(source.ids, max_cases):
        try:
            cases.append(source.load(cid, strict=False))
        except IAAError:  # an unreadable case is left out (the data set records it)
            continue
    return cases, source


def _unit(cases: Sequence[Case], ds: Dataset | None) -> str:
    if any(c.is_volume for c in cases):
        return "volume"
    if ds is not None and (ds.unit == "slice" or ds.layout == "lidc"):
        return "slice"
    return "image"


def domain_of(source: Dataset | Iterable[Case], max_cases: int = DOMAIN_SAMPLE,
              modality: str | None = None) -> DataDomain:
    """Measure the domain of a data set from a sample of its cases.

    Parameters
    ----------
    source
        A data set (``max_cases`` cases spread evenly over it are read) or a sequence or
        iterator of cases (the first ``max_cases`` are used).
    max_cases
        How many cases to read.
    modality
        The modality in words; default: a guess from the data set's layout.

    Returns
    -------
    DataDomain

    Raises
    ------
    ValueError
        If no case could be read.
    """
    cases, ds = _cases(source, max(1, int(max_cases)))
    if not cases:
        where = f"{ds.root}: " if ds is not None else ""
        raise ValueError(f"{where}no readable case to measure the data's domain from")
    samples, sizes, dtypes = [], [], []
    rgb = 0
    for c in cases:
        img = np.asarray(c.image)
        rgb += bool(c.is_rgb)
        sizes.append(c.shape)
        dtypes.append(img.dtype.name)
        if c.is_rgb and img.shape[-1] == 4:
            img = img[..., :3]
        flat = img.reshape(-1)
        step = max(1, flat.size // _PIXELS_PER_CASE)
        samples.append(flat[::step].astype(np.float64))
    pix = np.concatenate(samples)
    p1, p50, p99 = np.percentile(pix, [1, 50, 99])
    counts = np.array([c.n_masks for c in cases], float)
    ndim = max(len(s) for s in sizes)
    size = tuple(int(np.median([s[i] for s in sizes if len(s) == ndim])) for i in range(ndim))
    unit = _unit(cases, ds)
    return DataDomain(
        image_kind="rgb" if rgb * 2 > len(cases) else "grey",
        unit=unit,
        modality=modality if modality is not None else modality_of_layout(
            ds.layout if ds is not None else None, unit),
        intensity={"mean": float(pix.mean()), "std": float(pix.std()), "p1": float(p1),
                   "p50": float(p50), "p99": float(p99)},
        size=size,
        n_annotators={"min": float(counts.min()), "median": float(np.median(counts)),
                      "max": float(counts.max())},
        dtype=max(set(dtypes), key=dtypes.count),
        n_sampled=len(cases),
    )


# ----------------------------------------------------------------------------- matching
def _intensity_gap(a: Mapping[str, float], b: Mapping[str, float]) -> float | None:
    """Mean gap of the 1st, 50th and 99th percentiles over the wider of the two ranges."""
    keys = ("p1", "p50", "p99")
    if not all(k in a and k in b for k in keys):
        return None
    span = max(a["p99"] - a["p1"], b["p99"] - b["p1"], 1e-6)
    return float(np.mean([abs(a[k] - b[k]) for k in keys]) / span)


def _size_ratio(a: Sequence[int], b: Sequence[int]) -> float | None:
    """How many times larger the bigger in-plane size is (geometric mean of the last two axes)."""
    if len(a) < 2 or len(b) < 2 or min(*a[-2:], *b[-2:]) <= 0:
        return None
    ga, gb = math.sqrt(a[-2] * a[-1]), math.sqrt(b[-2] * b[-1])
    return max(ga, gb) / min(ga, gb)


def match_score(card_domain: DataDomain | Mapping[str, Any] | None,
                data_domain: DataDomain) -> DomainMatch:
    """Score how well ``data_domain`` matches a model's training domain.

    The score is a product of factors: colour against grey 0.3; volumes against slices
    0.8 (a slice model runs slice by slice), against images 0.6, slices against images 0.9;
    intensities ``exp(-3 max(0, g - 0.1))`` where ``g`` is the mean gap of the 1st, 50th and 99th
    percentiles over the wider range; sizes more than 2x apart ``1 / (1 + 0.3 (log2 r - 1))``.
    A card without a domain (an older card) scores 0.5 and is not ``known``: it may be
    used (no mismatch warning), never preferred to a card that matches.

    Parameters
    ----------
    card_domain
        The card's domain (a ``DataDomain`` or the card's ``domain`` dictionary), or None.
    data_domain
        The data's domain (:func:`domain_of`).

    Returns
    -------
    DomainMatch
        The score and a short reason for every difference.
    """
    if card_domain is None:
        return DomainMatch(0.5, ("the model card records no training domain (an older card)",),
                           known=False)
    if not isinstance(card_domain, DataDomain):
        try:
            card_domain = DataDomain.from_dict(card_domain)
        except (TypeError, ValueError) as exc:
            return DomainMatch(0.5, (f"the model card's domain is unreadable ({exc})",),
                               known=False)
    c, d = card_domain, data_domain
    score, reasons = 1.0, []
    if c.image_kind != d.image_kind:
        score *= 0.3
        reasons.append(f"trained on {c.image_kind} {c.modality or c.unit + 's'}, the data "
                       f"are {d.image_kind}")
    if c.unit != d.unit:
        score *= _UNIT_FACTOR[frozenset((c.unit, d.unit))]
        reasons.append(f"trained on {c.unit}s, the data are {d.unit}s"
                       + (" (predicted slice by slice)" if d.unit == "volume" else ""))
    gap = _intensity_gap(c.intensity, d.intensity)
    if gap is not None:
        score *= math.exp(-3.0 * max(0.0, gap - 0.1))
        if gap > 0.15:
            ci, di = c.intensity, d.intensity
            reasons.append(
                f"intensities differ: trained on {_num(ci['p1'])}..{_num(ci['p99'])} "
                f"(median {_num(ci['p50'])}), the data {_num(di['p1'])}..{_num(di['p99'])} "
                f"(median {_num(di['p50'])})")
    ratio = _size_ratio(c.size, d.size)
    if ratio is not None and ratio > 2.0:
        score *= 1.0 / (1.0 + 0.3 * (math.log2(ratio) - 1.0))
        reasons.append(f"sizes differ: trained on {'x'.join(map(str, c.size))}, the data "
                       f"{'x'.join(map(str, d.size))}")
    return DomainMatch(float(score), tuple(reasons))
