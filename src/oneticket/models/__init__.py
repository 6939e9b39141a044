"""Models: a registry of image classifiers (VGG19, ResNet50) with a width multiplier."""

from oneticket.models import resnet, vgg  # noqa: F401  (registers the models)
from oneticket.models.base import Classifier
from oneticket.models.registry import (
    MODELS,
    ModelEntry,
    check_options,
    create_model,
    model_entry,
    model_names,
    output_layer,
    register_model,
    replace_output_layer,
)

__all__ = [
    "MODELS",
    "Classifier",
    "ModelEntry",
    "check_options",
    "create_model",
    "model_entry",
    "model_names",
    "output_layer",
    "register_model",
    "replace_output_layer",
]
