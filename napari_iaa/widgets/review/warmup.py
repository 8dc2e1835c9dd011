"""Process-wide set-up done once when the review dock opens: napari's warm-up, GC freeze,
then (a second later) the imports the Predictions dock needs beyond its own package, and
the modules a caller above this package asked for (:func:`import_when_idle`: the
Predictions dock's own, named by ``widgets.docks``).

The warm-up runs in a plain daemon :class:`threading.Thread`, not through
:func:`~napari_iaa.widgets._common.start_worker`: it has no result, no progress and
nothing to cancel; it must run at normal priority (a niced thread holding the GIL would
stall the GUI) and must not hold a thread of napari's worker pool, which the first case's
opening worker needs at that very moment.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time

import numpy as np

from napari_iaa.widgets._common import no_threads
from napari_iaa.widgets.review.layers import annotator_color, single_color_labels

__all__ = ["import_when_idle", "warm_up_napari"]

_WARM_UP_LOCK = threading.Lock()
_WARM_UP_STARTED = False
#: modules asked for by :func:`import_when_idle`, not imported yet (under the lock)
_ASKED: list[str] = []
#: whether the warm-up thread has done its idle imports (later asks get their own thread)
_IDLE_DONE = False
#: modules napari imports on its first Image / Labels layer (measured with napari 0.9)
_WARM_UP_MODULES = (
    "napari.components.histogram", "pandas", "scipy.ndimage", "scipy.special", "scipy.linalg",
    "skimage.color", "skimage.exposure", "skimage.util", "OpenGL.arrays",
)
#: what the Predictions dock imports besides its own package (about half of its import,
#: 8 of 16 ms idle, more under load), imported a while after the warm-up so the click that
#: opens that dock does not pay it. The dock's own modules are not here: they import this
#: package (a cycle, even by name); ``widgets.docks``, above both, names them through
#: :func:`import_when_idle`
_IDLE_MODULES = (
    "napari_iaa.predict", "napari_iaa.widgets._common.plots",
    "napari_iaa.widgets._common.colormaps", "napari_iaa.widgets._common.model_events",
    "napari_iaa.widgets._common.compat",
)
#: seconds between the warm-up and :data:`_IDLE_MODULES` (the first case opens meanwhile)
IDLE_IMPORT_DELAY_S = 1.0


def warm_up_napari() -> threading.Thread | None:
    """Do napari's once-per-process lazy set-up in a background thread (once).

    The first layer a napari process creates pays for pint's unit registry (napari's
    transforms ask it for ``pixel``: ~0.35 s of parsing unit definitions), for a few
    hundred module imports (~0.3 s), and the first Labels layer with a direct colormap for
    numba compiling napari's colour mapping (~0.6 s). All of it is Python or releases the
    GIL, so in a thread it costs the GUI no stall (the GIL is handed over every 5 ms); done
    when the dock opens, it is off the path of the first case the reviewer opens. Returns
    the thread (None if already started, or with ``NAPARI_IAA_NO_THREADS``).
    """
    global _WARM_UP_STARTED
    with _WARM_UP_LOCK:
        if _WARM_UP_STARTED or no_threads():
            return None
        _WARM_UP_STARTED = True
    th = threading.Thread(target=_warm_up, name="napari-iaa-warm-up", daemon=True)
    th.start()
    return th


def _warm_up() -> None:
    try:  # normal priority: a starved thread holding the GIL would stall the GUI
        import pint

        pint.get_application_registry().pixel  # noqa: B018 - builds the registry
    except Exception:  # noqa: BLE001 - only a warm-up
        pass
    try:  # numba-compiles the direct label colormap (0.6 s on the first Labels layer)
        from napari.utils.colormaps import DirectLabelColormap

        cmap = DirectLabelColormap(color_dict=single_color_labels(annotator_color(0)))
        cmap._get_mapping_from_cache(np.dtype(np.uint8))
    except Exception:  # noqa: BLE001 - private napari API: only a warm-up
        pass
    _import_all(_WARM_UP_MODULES)
    time.sleep(IDLE_IMPORT_DELAY_S)
    _import_all(_IDLE_MODULES)
    _import_asked()


def import_when_idle(names: tuple[str, ...]) -> None:
    """Import the modules ``names`` in the background once the review dock has been idle:
    in the warm-up thread after its own idle imports (:data:`IDLE_IMPORT_DELAY_S` after
    napari's warm-up), or in a thread of their own when that is over.

    For modules this package must not name (an import cycle): ``widgets.docks`` asks for
    the Predictions dock's own, so the click that opens it does not import them. An
    import runs Python byte code, which hands the GIL to the GUI thread every 5 ms;
    nothing with ``NAPARI_IAA_NO_THREADS``.
    """
    if no_threads():
        return
    with _WARM_UP_LOCK:
        _ASKED.extend(n for n in names if n not in _ASKED)
        if not _IDLE_DONE:
            return  # the warm-up thread (running, or started by the dock) imports them
    threading.Thread(target=_import_asked, name="napari-iaa-idle-imports", daemon=True).start()


def _import_asked() -> None:
    global _IDLE_DONE
    while True:
        with _WARM_UP_LOCK:
            if not _ASKED:
                _IDLE_DONE = True
                return
            name = _ASKED.pop(0)
        _import_all((name,))


def _import_all(names: tuple[str, ...]) -> None:
    for name in names:
        with contextlib.suppress(Exception):  # only a warm-up: a missing module is fine
            importlib.import_module(name)
