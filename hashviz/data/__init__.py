"""Datasets: registry of image sources and seeded splits.

``get_dataset(name, **options)`` returns an :class:`ImageDataset`; ``list_datasets()`` lists the sources with
their offline status. See docs/data.md for sources, protocols and where to put files.
"""

from hashviz.data.dataset import ImageDataset
from hashviz.data.registry import DEFAULT_DATASET, DatasetEntry, dataset_names, get_dataset, list_datasets

__all__ = ["DEFAULT_DATASET", "DatasetEntry", "ImageDataset", "dataset_names", "get_dataset", "list_datasets"]
