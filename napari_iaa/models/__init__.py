"""Models the plugin runs without the training code.

Network definitions (timm backbones, ``pretrained=False``), the checkpoint format
(safetensors + JSON model card, nothing unpickled), the model registry, device choice and
predictors.

Importing this package is cheap and never imports torch: each name is imported from its
module on first use (:func:`__getattr__`). The cards, the registry, the data domains and
:func:`load_torch` need no torch, so the GUI thread may use them; the networks,
checkpoints, predictors and the device choice import torch and timm, so a widget uses
them in a worker, after :func:`load_torch` (which imports them without stalling the GUI
thread).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from napari_iaa.models.card import (
        CARD_FORMAT_VERSION,
        DEFAULT_ARCHITECTURE,
        IMAGENET_MEAN,
        IMAGENET_STD,
        TASKS,
        ModelCard,
        read_card,
    )
    from napari_iaa.models.card_files import (
        PICKLE_SUFFIXES,
        checkpoint_paths,
        read_checkpoint_card,
    )
    from napari_iaa.models.checkpoint import (
        load_checkpoint,
        save_checkpoint,
        unwrap_model,
    )
    from napari_iaa.models.device import (
        DEVICE_CHOICES,
        available_devices,
        describe_devices,
        pick_device,
    )
    from napari_iaa.models.networks import (
        ARCHITECTURES,
        IAARegressor,
        MHREnsemble,
        MHRNet,
        QualityRegressor,
        build_model,
        expected_fraction,
        level_probabilities,
        register_architecture,
    )
    from napari_iaa.models.predictors import (
        PREDICTORS,
        IAAPrediction,
        IAAPredictor,
        MHRPrediction,
        MHRPredictor,
        QualityPredictor,
        load_calibrator,
        make_predictor,
    )
    from napari_iaa.models.preprocess import (
        blend_mask,
        normalise,
        prepare_image,
        quality_crop_box,
        quality_input,
        resize_map,
        resize_mask,
        to_float_rgb,
    )
    from napari_iaa.models.registry import (
        MODELS_ENV,
        ModelEntry,
        ModelRegistry,
        RegistryProblem,
        shipped_models_dir,
        user_models_dir,
    )
    from napari_iaa.models.torch_import import load_torch, torch_loaded

#: where each public name lives
_WHERE = {
    "CARD_FORMAT_VERSION": "card",
    "DEFAULT_ARCHITECTURE": "card",
    "IMAGENET_MEAN": "card",
    "IMAGENET_STD": "card",
    "TASKS": "card",
    "ModelCard": "card",
    "read_card": "card",
    "PICKLE_SUFFIXES": "card_files",
    "checkpoint_paths": "card_files",
    "read_checkpoint_card": "card_files",
    "MODELS_ENV": "registry",
    "ModelEntry": "registry",
    "ModelRegistry": "registry",
    "RegistryProblem": "registry",
    "shipped_models_dir": "registry",
    "user_models_dir": "registry",
    "DEVICE_CHOICES": "device",
    "available_devices": "device",
    "describe_devices": "device",
    "pick_device": "device",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "unwrap_model": "checkpoint",
    "ARCHITECTURES": "networks",
    "IAARegressor": "networks",
    "MHREnsemble": "networks",
    "MHRNet": "networks",
    "QualityRegressor": "networks",
    "build_model": "networks",
    "expected_fraction": "networks",
    "level_probabilities": "networks",
    "register_architecture": "networks",
    "PREDICTORS": "predictors",
    "IAAPrediction": "predictors",
    "IAAPredictor": "predictors",
    "MHRPrediction": "predictors",
    "MHRPredictor": "predictors",
    "QualityPredictor": "predictors",
    "load_calibrator": "predictors",
    "make_predictor": "predictors",
    "blend_mask": "preprocess",
    "normalise": "preprocess",
    "prepare_image": "preprocess",
    "quality_crop_box": "preprocess",
    "quality_input": "preprocess",
    "resize_map": "preprocess",
    "resize_mask": "preprocess",
    "to_float_rgb": "preprocess",
    "load_torch": "torch_import",
    "torch_loaded": "torch_import",
}
#: modules that import torch at their top (load_torch first: the GIL-friendly way); the
#: device functions import it when called
_TORCH_MODULES = {"checkpoint", "networks", "predictors", "preprocess"}


def __getattr__(name: str) -> Any:
    """Import ``name`` from its module on first use (PEP 562)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module in _TORCH_MODULES:
        from napari_iaa.models.torch_import import load_torch

        load_torch()
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__all__ = [
    "ModelCard",
    "read_card",
    "TASKS",
    "DEFAULT_ARCHITECTURE",
    "CARD_FORMAT_VERSION",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ARCHITECTURES",
    "register_architecture",
    "build_model",
    "IAARegressor",
    "MHRNet",
    "MHREnsemble",
    "QualityRegressor",
    "expected_fraction",
    "level_probabilities",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint_card",
    "load_torch",
    "torch_loaded",
    "checkpoint_paths",
    "unwrap_model",
    "PICKLE_SUFFIXES",
    "pick_device",
    "describe_devices",
    "available_devices",
    "DEVICE_CHOICES",
    "ModelRegistry",
    "ModelEntry",
    "RegistryProblem",
    "shipped_models_dir",
    "user_models_dir",
    "MODELS_ENV",
    "IAAPredictor",
    "IAAPrediction",
    "MHRPredictor",
    "MHRPrediction",
    "QualityPredictor",
    "load_calibrator",
    "PREDICTORS",
    "make_predictor",
    "to_float_rgb",
    "prepare_image",
    "quality_input",
    "quality_crop_box",
    "blend_mask",
    "resize_map",
    "resize_mask",
    "normalise",
]
