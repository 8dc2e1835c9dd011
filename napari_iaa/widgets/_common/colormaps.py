"""The plugin's colours: annotators, the MHR map (empirical and predicted), the difference map.

- Annotators: Okabe & Ito's colour-blind-safe palette (without black), then three of
  Paul Tol's muted colours; all of them stay clear of the MHR map's purples (CIEDE2000
  distance > 10 from every colour the map shows, tested), so an outline is never taken for
  a level of agreement.
- MHR (fraction of annotators who marked a pixel): one purple ramp whose opacity rises with
  the value. Zero is fully transparent, so the image shows wherever nobody marked it and
  through the low levels; layers use ``translucent`` blending (never ``additive``, which
  washes a bright image out to white).
- Difference (predicted - empirical MHR): Paul Tol's blue-red diverging scheme, transparent
  at zero and more opaque with the size of the difference.

Colormaps are handed to napari as ``{"name", "display_name", "colors", "controls"}`` dicts
(a layer keyword; no napari import here).
"""

from __future__ import annotations

import colorsys

import numpy as np

__all__ = [
    "ANNOTATOR_PALETTE", "DIFFERENCE_COLORMAP", "MHR_COLORMAP", "annotator_color",
    "colormap_arg", "difference_rgba", "mhr_rgba",
]

#: Okabe & Ito (2008) without black, then Paul Tol's muted green, olive and wine
ANNOTATOR_PALETTE = (
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#F0E442",  # yellow
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#117733",  # green (Tol muted)
    "#999933",  # olive (Tol muted)
    "#882255",  # wine (Tol muted)
)

MHR_COLORMAP = "napari-iaa MHR"
DIFFERENCE_COLORMAP = "napari-iaa MHR difference"

#: the MHR ramp's colours at 0, 0.2, ..., 1 (matplotlib's Purples from 0.35 to 1)
_MHR_RGB = np.array([
    [0.762, 0.765, 0.875], [0.640, 0.628, 0.798], [0.514, 0.502, 0.735],
    [0.422, 0.330, 0.646], [0.332, 0.159, 0.564], [0.247, 0.000, 0.490],
])
#: opacity of the MHR map at its most (value 1)
_MHR_ALPHA = 0.85
#: Paul Tol's BuRd ends and middles: predicted below the empirical (blue) and above (red)
_DIFF_NEG = np.array([[0.129, 0.400, 0.675], [0.263, 0.576, 0.765]])  # -1, -0.5
_DIFF_POS = np.array([[0.839, 0.376, 0.302], [0.698, 0.094, 0.169]])  # +0.5, +1


def annotator_color(i: int) -> str:
    """Colour of the ``i``-th annotator's layer (hex string), distinct for any ``i``."""
    if i < len(ANNOTATOR_PALETTE):
        return ANNOTATOR_PALETTE[i]
    h = (i * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.75, 0.95)
    return f"#{int(r * 255):02X}{int(g * 255):02X}{int(b * 255):02X}"


def mhr_rgba(values: np.ndarray | float) -> np.ndarray:
    """RGBA (floats in [0, 1]) of MHR values in [0, 1]: a purple ramp, alpha ``0.85 * sqrt(v)``.

    Values outside [0, 1] are clipped; the result has shape ``(*np.shape(values), 4)``.
    """
    v = np.clip(np.asarray(values, dtype=float), 0.0, 1.0)
    pos = v * (len(_MHR_RGB) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_MHR_RGB) - 2)
    t = (pos - lo)[..., None]
    rgb = _MHR_RGB[lo] * (1 - t) + _MHR_RGB[lo + 1] * t
    alpha = _MHR_ALPHA * np.sqrt(v)[..., None]
    return np.concatenate([rgb, alpha], axis=-1)


def difference_rgba(values: np.ndarray | float) -> np.ndarray:
    """RGBA of differences in [-1, 1]: blue below zero, red above, transparent at zero."""
    v = np.clip(np.asarray(values, dtype=float), -1.0, 1.0)
    mag = np.abs(v)[..., None]
    neg = np.where(mag > 0.5, _DIFF_NEG[0] * (mag - 0.5) * 2 + _DIFF_NEG[1] * (1 - mag) * 2,
                   _DIFF_NEG[1])
    pos = np.where(mag > 0.5, _DIFF_POS[1] * (mag - 0.5) * 2 + _DIFF_POS[0] * (1 - mag) * 2,
                   _DIFF_POS[0])
    rgb = np.where(v[..., None] < 0, neg, pos)
    alpha = np.minimum(1.0, 1.6 * mag) * 0.9
    return np.concatenate([rgb, alpha], axis=-1)


def _sampled(name: str, display: str, rgba, lo: float, hi: float, n: int = 33) -> dict:
    controls = np.linspace(0.0, 1.0, n)
    colors = rgba(lo + controls * (hi - lo))
    return {"name": name, "display_name": display, "colors": colors.tolist(),
            "controls": controls.tolist()}


def colormap_arg(name: str) -> dict | str:
    """The napari ``colormap=`` argument for one of our colormap names (others pass through).

    Parameters
    ----------
    name
        :data:`MHR_COLORMAP`, :data:`DIFFERENCE_COLORMAP` or any napari colormap name.

    Returns
    -------
    dict or str
        A colormap dict napari builds a ``Colormap`` from, or ``name`` itself.
    """
    if name == MHR_COLORMAP:
        return _sampled(MHR_COLORMAP, "MHR (fraction of annotators)", mhr_rgba, 0.0, 1.0)
    if name == DIFFERENCE_COLORMAP:
        # contrast limits (-1, 1) map onto the colormap's [0, 1]
        return _sampled(DIFFERENCE_COLORMAP, "MHR difference", difference_rgba, -1.0, 1.0)
    return name
