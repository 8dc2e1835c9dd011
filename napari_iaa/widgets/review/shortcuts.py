"""The review dock's keyboard shortcuts, registered with napari's action manager.

Registered once per process as viewer actions (``keymapprovider=ViewerModel``, as napari
registers its own), so they are listed in napari's Preferences > Shortcuts under the
viewer key bindings and can be changed there (a changed shortcut is kept in napari's
settings and used on the next start). An action acts on the review dock of the viewer
whose canvas had the key press.

napari looks a key up in the active layer's keymap before the viewer's, so a viewer
shortcut that a layer also uses is shadowed while that layer is selected. The review's
layers are Labels and Image layers; their defaults take ``X`` (swap labels / plane
normal) and ``P`` (paint), so exclude is ``Shift+X`` and previous case ``Shift+N``:
``A``, ``R``, ``Shift+X``, ``N``, ``Shift+N``, ``F3`` and ``Shift+F3`` are free in
every layer the review opens (``A`` and ``R`` are taken in Points and Shapes layers).
``Shift+Z`` zooms to the lesion (:mod:`.zoom`); it needs no dock, only the case's layers.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable
from typing import Any

from napari_iaa.widgets.review.zoom import ZOOM_SHORTCUT, annotator_layers, zoom_to_lesion

#: the review dock (:class:`~napari_iaa.widgets.review.ReviewWidget`); not imported: it
#: imports this module
ReviewWidget = Any

__all__ = ["REVIEW_ACTIONS", "VIEWER_ACTIONS", "register_dock", "register_review_actions"]

_DOCKS: weakref.WeakSet[Any] = weakref.WeakSet()
_REGISTERED = False


def _verdict(status: str) -> Callable[[ReviewWidget], Any]:
    return lambda dock: dock.verdicts.set_verdict(status)


#: action name -> (description, default shortcuts, what it does to the dock)
REVIEW_ACTIONS: dict[str, tuple[str, tuple[str, ...], Callable[[Any], Any]]] = {
    "napari-iaa:accept_case": ("Review: accept the case", ("A",), _verdict("accepted")),
    "napari-iaa:reannotate_case": ("Review: send the case back for re-annotation", ("R",),
                                   _verdict("reannotate")),
    "napari-iaa:exclude_case": ("Review: exclude the case", ("Shift+X",), _verdict("excluded")),
    "napari-iaa:reset_case": ("Review: reset the case to unreviewed", (),
                              _verdict("unreviewed")),
    "napari-iaa:next_case": ("Review: next case", ("N",), lambda d: d.step_case(+1)),
    "napari-iaa:previous_case": ("Review: previous case", ("Shift+N",),
                                 lambda d: d.step_case(-1)),
    "napari-iaa:next_flagged": ("Review: next flagged case", ("F3",),
                                lambda d: d.dataset_panel.next_flagged()),
    "napari-iaa:previous_flagged": ("Review: previous flagged case", ("Shift+F3",),
                                    lambda d: d.dataset_panel.previous_flagged()),
}


def zoom_to_lesion_action(viewer: Any) -> None:
    """Zoom to the lesion of the case on show (the review dock's, else every annotator
    layer's)."""
    dock = _dock_of(viewer)
    layers = annotator_layers(viewer, dock.load_id if dock is not None else None)
    if not zoom_to_lesion(viewer, layers):
        from napari_iaa.widgets._common import notify_info

        notify_info("no annotator mask to zoom to: open a case with its masks first")


#: action name -> (description, default shortcuts, command taking the viewer)
VIEWER_ACTIONS: dict[str, tuple[str, tuple[str, ...], Callable[[Any], None]]] = {
    "napari-iaa:zoom_to_lesion": ("Review: zoom to the lesion (all annotators' masks)",
                                  (ZOOM_SHORTCUT,), zoom_to_lesion_action),
}


def register_dock(dock: ReviewWidget) -> None:
    """Make ``dock`` the target of the review shortcuts pressed in its viewer."""
    register_review_actions()
    _DOCKS.add(dock)


def _dock_of(viewer: Any) -> ReviewWidget | None:
    for dock in list(_DOCKS):
        try:
            if dock.viewer is viewer and dock.isVisible():
                return dock
        except RuntimeError:  # its Qt side is gone
            continue
    for dock in list(_DOCKS):  # hidden docks last
        if getattr(dock, "viewer", None) is viewer:
            return dock
    return None


def _command(name: str, act: Callable[[Any], Any]) -> Callable[[Any], None]:
    def command(viewer: Any) -> None:
        dock = _dock_of(viewer)
        if dock is None:
            from napari_iaa.widgets._common import notify_info

            notify_info("open the napari-iaa review dock first")
            return
        act(dock)

    command.__name__ = name.split(":")[1]
    return command


def register_review_actions() -> None:
    """Register the actions and bind their shortcuts (the user's own from napari's
    settings where set, else the defaults); once per process."""
    global _REGISTERED
    if _REGISTERED:
        return
    from napari.components import ViewerModel
    from napari.settings import get_settings
    from napari.utils.action_manager import action_manager

    try:
        saved = dict(get_settings().shortcuts.shortcuts)
    except Exception:  # noqa: BLE001 - unreadable settings: the defaults
        saved = {}
    commands = {name: (description, defaults, _command(name, act))
                for name, (description, defaults, act) in REVIEW_ACTIONS.items()}
    commands.update(VIEWER_ACTIONS)
    for name, (description, defaults, command) in commands.items():
        action_manager.register_action(name, command, description, ViewerModel)
        if name in saved:
            continue  # bound from the settings by napari (a user's choice, maybe none)
        with warnings.catch_warnings():
            # napari's tooltip formatter does not know function keys (F3): it warns, and
            # binds them all the same
            warnings.filterwarnings("ignore", "`.*` does not seem to be a valid shortcut")
            for key in defaults:
                action_manager.bind_shortcut(name, key)
    _REGISTERED = True
