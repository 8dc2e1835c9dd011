"""Process-wide set-up done once when the review dock opens: napari's warm-up, GC freeze,
then (a second later) the imports the Predictions dock needs beyond its own package, and
the modules a caller above this package asked for (:func:`import_when_idle`: the
Predictions dock's own, named by ``widgets.docks``).

pint's unit registry is built in the warm-up thread as a registry of its own and made the
application registry on the GUI thread, only if nothing has used that one yet
(:func:`_registry_relay`). pint's default application registry is lazy and builds itself
on first use in place, not thread-safely: it takes its final class before its units are
defined, so a layer napari added on the GUI thread while the warm-up thread was building
it (the dock opening a case at once: ``napari-iaa view DATA``, a test, a script) failed
with "'pixel' is not defined in the unit registry".

The warm-up runs in a plain daemon :class:`threading.Thread`, not through
:func:`~napari_iaa.widgets._common.start_worker`: it has no result, no progress and
nothing to cancel; it must run at normal priority (a niced thread holding the GIL would
stall the GUI) and must not hold a thread of napari's worker pool, which the first case's
opening worker needs at that very moment.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import threading
import time
from typing import Any

import numpy as np

from napari_iaa.widgets._common import Relay, no_threads
from napari_iaa.widgets.review.layers import annotator_color, single_color_labels

__all__ = ["build_unit_registry", "import_when_idle", "install_unit_registry", "warm_up_napari"]

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
    th = threading.Thread(target=_warm_up, args=(_registry_relay(),), name="napari-iaa-warm-up",
                          daemon=True)
    th.start()
    return th


def _registry_relay() -> Relay:
    """A relay made on the GUI thread (call it there) that takes the registry the warm-up
    thread built to the GUI thread (a queued signal) and installs it there
    (:func:`install_unit_registry`). napari uses pint on the GUI thread only, so there the
    check that nothing has used the application registry yet and the swap are one step for
    napari. Kept alive in :data:`_KEEP` until its registry arrives."""
    relay = Relay()
    relay.message.connect(functools.partial(_install_relayed, relay))
    _KEEP.append(relay)
    return relay


def _install_relayed(relay: Relay, registry: Any) -> None:
    install_unit_registry(registry)
    with contextlib.suppress(ValueError):
        _KEEP.remove(relay)
    relay.deleteLater()


#: relays waiting for their registry
_KEEP: list[Relay] = []


def build_unit_registry() -> Any:
    """A new pint registry as pint's default application registry builds itself (all of
    pint's default units, redefinitions refused), seen by no other thread while built."""
    import pint

    return pint.UnitRegistry(on_redefinition="raise")


def install_unit_registry(registry: Any) -> bool:
    """Make ``registry`` pint's application registry if nothing has used that one yet (it is
    still pint's lazy, unbuilt default); else keep it (units made from it stay comparable).
    Call on the GUI thread. Returns whether ``registry`` was installed."""
    import pint
    from pint.registry import LazyRegistry

    if type(pint.get_application_registry().get()) is not LazyRegistry:
        return False
    pint.set_application_registry(registry)
    return True


def _warm_up(relay: Relay | None = None) -> None:
    try:  # normal priority: a starved thread holding the GIL would stall the GUI
        registry = build_unit_registry()  # (~0.3 s of parsing unit definitions)
        if relay is not None:
            relay.send(registry)  # False when the application is quitting
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
