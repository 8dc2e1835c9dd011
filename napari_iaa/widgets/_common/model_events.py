"""The process-wide model registry and the "model registered" announcement.

The predictions dock lists models from :func:`shared_registry`; the training dock adds the
checkpoints it writes there and announces them on ``MODEL_EVENTS.registered(path)``. Every
model list then shows the new model and OFFERS it ("new model X available: use it?", with
its held-out figure beside the model in use); none switches to it without the user's
yes: a one-epoch or cancelled run must never silently replace a better or calibrated one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import QObject, Signal

if TYPE_CHECKING:
    from napari_iaa.models.registry import ModelRegistry

__all__ = ["MODEL_EVENTS", "shared_registry"]


class _ModelEvents(QObject):
    """Process-wide announcements: ``registered(path)`` when a model is trained or added
    (listeners list and offer it; they never choose it on their own)."""

    registered = Signal(str)


MODEL_EVENTS = _ModelEvents()
_SHARED_REGISTRY: ModelRegistry | None = None


def shared_registry() -> ModelRegistry:
    """Return the process-wide ``ModelRegistry`` the docks share (trained models land here).

    Returns
    -------
    ModelRegistry
        Created on first use and kept for the life of the process.
    """
    global _SHARED_REGISTRY
    if _SHARED_REGISTRY is None:
        # imported here: napari_iaa.models pulls in torch, which the plugin loads only
        # when a model is first needed
        from napari_iaa.models.registry import ModelRegistry

        _SHARED_REGISTRY = ModelRegistry()
    return _SHARED_REGISTRY
