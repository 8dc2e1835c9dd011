"""What the case panel's pairwise matrix can show: Dice, HD95 or ASSD, and how.

Dice comes from the live tracker's counts (after every edit); the surface distances
(:func:`napari_iaa.agreement.pairwise_surface_distances`, MONAI's definitions, in the
case's spacing) are computed off the GUI thread by the reliability refresh when a
distance is shown. Distances are in mm when the case has a spacing, else in voxels; a pair
with an empty mask has none and shows "—". A distance is coloured green at 0, yellow at two
voxel steps, red beyond.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from qtpy.QtGui import QColor

from napari_iaa.widgets._common import fmt_number

__all__ = ["METRICS", "MetricSpec", "distance_goodness", "distance_reference", "distance_unit",
           "metric_cell", "worst_pair"]


class MetricSpec:
    """One matrix metric: its name, how its values read, whether higher is better."""

    def __init__(self, key: str, label: str, title: str, higher_is_better: bool, tip: str):
        self.key = key
        self.label = label
        self.title = title
        self.higher_is_better = higher_is_better
        self.tip = tip


#: the matrix metrics, in the combo's order
METRICS: dict[str, MetricSpec] = {
    "dice": MetricSpec("dice", "Dice", "Pairwise Dice", True,
                       "Dice overlap of each pair (live, from the tracker's counts)"),
    "hd95": MetricSpec("hd95", "HD95", "Pairwise HD95", False,
                       "95th-percentile Hausdorff distance of each pair's surfaces (MONAI's "
                       "definition, in the case's spacing); — where a mask is empty"),
    "assd": MetricSpec("assd", "ASSD", "Pairwise ASSD", False,
                       "average symmetric surface distance of each pair (MONAI's definition, "
                       "in the case's spacing); — where a mask is empty"),
}


def distance_unit(spacing: Sequence[float] | None) -> str:
    """``"mm"`` when the case has a voxel spacing, else ``"voxels"``."""
    return "mm" if spacing is not None else "voxels"


def distance_reference(spacing: Sequence[float] | None) -> float:
    """The distance coloured yellow: two of the case's largest voxel steps (2 voxels)."""
    return 2.0 * (max(float(s) for s in spacing) if spacing else 1.0)


def distance_goodness(v: float, reference: float) -> float:
    """A distance as a goodness in (0, 1]: 1 at 0, 0.5 at ``reference``, towards 0 beyond.

    The colour does not depend on the other pairs, so a matrix of near-identical masks
    (distances of a voxel or two) stays green rather than being stretched to red.
    """
    return 1.0 / (1.0 + max(v, 0.0) / reference) if np.isfinite(v) else float("nan")


def metric_cell(key: str, values: np.ndarray, i: int, j: int, unit: str,
                heat, reference: float = 2.0) -> tuple[str, QColor, str]:
    """(text, background colour, tooltip value) of cell ``(i, j)`` of a matrix of ``key``.

    ``heat`` maps a goodness in [0, 1] to a colour (the panel's red-yellow-green). Dice is
    its own goodness; a distance's is :func:`distance_goodness` with ``reference``.
    """
    v = float(values[i, j])
    if key == "dice":
        return fmt_number(v, ".2f"), heat(v), fmt_number(v, ".4f")
    good = distance_goodness(v, reference)
    spec = ".2f" if np.isfinite(v) and abs(v) < 10 else ".1f"
    return fmt_number(v, spec), heat(good), f"{fmt_number(v, '.3f')} {unit}"


def worst_pair(key: str, values: np.ndarray) -> tuple[int, int, float] | None:
    """The pair that agrees least: lowest Dice or largest distance (None if no finite pair)."""
    n = values.shape[0]
    if n < 2:
        return None
    iu = np.triu_indices(n, 1)
    vals = values[iu]
    if not np.isfinite(vals).any():
        return None
    k = int(np.nanargmin(vals) if METRICS[key].higher_is_better else np.nanargmax(vals))
    return int(iu[0][k]), int(iu[1][k]), float(vals[k])
