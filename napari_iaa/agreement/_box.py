"""Which pixels of an edited box changed between background and foreground."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_iaa.errors import ConfigError


def box_changes(current: np.ndarray, lens: tuple[int, ...], old_values: Any,
                new_values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Box pixels that became foreground / background (values given for the whole box).

    ``current`` is the mask's box as it is now (read when ``new_values`` is None).
    """
    old = np.asarray(old_values)
    if old.shape != lens:
        old = np.broadcast_to(old, lens)
    new = (np.asarray(current) if new_values is None
           else np.broadcast_to(np.asarray(new_values), lens))
    old_fg = old != 0
    new_fg = new != 0
    return new_fg & ~old_fg, old_fg & ~new_fg


def masked_box_changes(current: np.ndarray, lens: tuple[int, ...], old_values: Any,
                       new_values: Any, region_mask: Any) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`box_changes` for values given only under ``region_mask`` (1-D)."""
    rm = np.asarray(region_mask, bool)
    if rm.shape != lens:
        raise ConfigError(f"region_mask has shape {rm.shape}, the region has {lens}")
    k = int(np.count_nonzero(rm))
    old = np.broadcast_to(
        np.asarray(old_values).reshape(-1) if np.ndim(old_values) else old_values, (k,)
    )
    if new_values is None:
        new = np.asarray(current)[rm]
    else:
        new = np.broadcast_to(
            np.asarray(new_values).reshape(-1) if np.ndim(new_values) else new_values, (k,)
        )
    old_fg = old != 0
    new_fg = new != 0
    gained = np.zeros(lens, bool)
    lost = np.zeros(lens, bool)
    gained[rm] = new_fg & ~old_fg
    lost[rm] = old_fg & ~new_fg
    return gained, lost
