"""Models the plugin runs without the training code.

Network definitions (timm backbones, ``pretrained=False``), the checkpoint format
(safetensors + JSON model card, nothing unpickled), the model registry, device choice and
predictors.
"""

from __future__ import annotations

from napari_iaa.models.card import (
    CARD_FORMAT_VERSION,
    DEFAULT_ARCHITECTURE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TASKS,
    ModelCard,
    read_card,
)
from napari_iaa.models.checkpoint import (
    PICKLE_SUFFIXES,
    checkpoint_paths,
    load_checkpoint,
    read_checkpoint_card,
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
