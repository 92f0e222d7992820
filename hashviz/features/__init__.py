"""Backbone features: the backbone registry (bundled MNIST CNN, torchvision ImageNet models) and cached extraction.

Importing this package imports torch (not torchvision, which is loaded only to build a torchvision model).
"""

from hashviz.features.backbones import (
    DEFAULT_BACKBONE,
    Backbone,
    backbone_names,
    compatible_backbones,
    get_backbone,
    image_kind,
    incompatibility,
    list_backbones,
    readiness,
)
from hashviz.features.extract import extract_features, feature_cache_leftovers, feature_cache_path, feature_key
from hashviz.features.train_cnn import train_mnist_cnn

__all__ = ["DEFAULT_BACKBONE", "Backbone", "backbone_names", "compatible_backbones", "extract_features",
           "feature_cache_leftovers", "feature_cache_path", "feature_key", "get_backbone", "image_kind",
           "incompatibility", "list_backbones", "readiness", "train_mnist_cnn"]
