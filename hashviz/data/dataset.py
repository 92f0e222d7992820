"""The one dataset type every source returns: :class:`ImageDataset`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from hashviz.data.splits import SPLIT_NAMES, masks
from hashviz.errors import InvalidInputError
from hashviz.validate import check_choice


def digest(*parts) -> str:
    """SHA-256 (hex) over arrays, strings and numbers, in order — the building block of fingerprints."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            a = np.ascontiguousarray(p)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.view(np.uint8).reshape(-1) if a.size else b"")
        else:
            h.update(repr(p).encode())
        h.update(b"\x00")
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images with labels, class names, an optional hierarchy and a seeded train/query/database split.

    - ``images``: uint8 ``(n, h, w)`` or ``(n, h, w, 3)`` held in memory (MNIST, digits, CIFAR), or ``None`` when
      images are read from ``paths`` on demand by :meth:`load_images` (image folders, list files), each decoded,
      centre-cropped to a square and resized to ``image_size``.
    - ``labels``: ``(n,)`` int64 or ``(n, c)`` bool multi-hot; ``class_names`` one name per class.
    - ``hierarchy``: ``None`` or one parent name per class (see :mod:`hashviz.data.hierarchy`).
    - ``split``: uint8 codes from :func:`hashviz.data.splits.stratified_split` (0 train, 1 query, 2 database;
      train ⊂ database) made with ``protocol`` and ``seed``.
    - ``skipped``: ``(path, reason)`` for every file that could not be used (listed, never fatal).
    - ``fingerprint``: a stable hex string over the content (pixels or file list, labels, preprocessing); it
      does not include the split — cache keys combine it with ``seed``.
    - ``embeddings``: set only by the ``embeddings`` source (a user's ``.npz``): its checked arrays
      (:class:`~hashviz.data.embeddings_file.FileEmbeddings`, or ``{bits: FileEmbeddings}`` for a file with
      several code lengths); the pipeline skips backbone and head and uses them directly; ``images`` then holds
      the file's thumbnails, if any.
    """

    name: str
    labels: np.ndarray
    class_names: tuple[str, ...]
    split: np.ndarray
    seed: int = 0
    images: np.ndarray | None = None
    paths: tuple[str, ...] | None = None
    image_size: int | None = None
    hierarchy: tuple[str, ...] | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    fingerprint: str = ""
    protocol: Mapping = field(default_factory=dict)
    description: str = ""
    embeddings: object | None = None  # the embeddings source: FileEmbeddings, or {bits: FileEmbeddings}
    loader: Callable[[str, int], np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels)
        if labels.ndim == 1:
            labels = labels.astype(np.int64, copy=False)
        elif labels.ndim == 2:
            labels = labels.astype(bool, copy=False)
        else:
            raise InvalidInputError(f"{self.name}: labels must be (n,) or (n, c), got shape {labels.shape}",
                                    "one label (or multi-hot row) per image")
        n = len(labels)
        split = np.asarray(self.split, dtype=np.uint8)
        if split.shape != (n,):
            raise InvalidInputError(f"{self.name}: split has shape {split.shape}, expected ({n},)",
                                    "one split code per image")
        if self.images is not None:
            images = np.asarray(self.images)
            if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) != n or (
                    images.ndim == 4 and images.shape[-1] != 3):
                raise InvalidInputError(f"{self.name}: images must be uint8 (n, h, w) or (n, h, w, 3) with n = {n}, "
                                        f"got {images.dtype} {images.shape}", "convert images to uint8 first")
            object.__setattr__(self, "images", images)
        if self.paths is not None:
            if len(self.paths) != n:
                raise InvalidInputError(f"{self.name}: {len(self.paths)} paths for {n} labels", "one path per label")
            object.__setattr__(self, "paths", tuple(str(p) for p in self.paths))
        names = tuple(str(c) for c in self.class_names)
        n_classes = labels.shape[1] if labels.ndim == 2 else (int(labels.max()) + 1 if n else 0)
        if len(names) < n_classes:
            raise InvalidInputError(f"{self.name}: {len(names)} class names for {n_classes} classes",
                                    "give one name per class")
        if self.hierarchy is not None and len(self.hierarchy) != len(names):
            raise InvalidInputError(f"{self.name}: hierarchy has {len(self.hierarchy)} parents for {len(names)} "
                                    "classes", "give one parent per class")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "split", split)
        object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "skipped", tuple((str(p), str(r)) for p, r in self.skipped))
        if self.hierarchy is not None:
            object.__setattr__(self, "hierarchy", tuple(str(p) for p in self.hierarchy))
        if not self.fingerprint:
            content = self.images if self.images is not None else repr(self.paths)
            object.__setattr__(self, "fingerprint", digest(self.name, content, labels, self.image_size))

    # ---- shape and protocol -------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        return self.n

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    @property
    def has_images(self) -> bool:
        return self.images is not None or self.paths is not None

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        """Shape of one image as :meth:`load_images` returns it, ``None`` without images."""
        if self.images is not None:
            return tuple(self.images.shape[1:])
        if self.paths is not None:
            return (self.image_size, self.image_size, 3)
        return None

    def masks(self) -> dict[str, np.ndarray]:
        """Boolean masks ``train``/``query``/``database`` (the database includes train)."""
        return masks(self.split)

    def indices(self, part: str) -> np.ndarray:
        """int64 indices of one split part: ``"train"``, ``"query"`` or ``"database"``."""
        check_choice(part, "split", sorted(SPLIT_NAMES))
        return np.flatnonzero(self.masks()[part]).astype(np.int64)

    def parent_labels(self) -> np.ndarray | None:
        """For single-label data with a hierarchy: (n,) int64 index into :attr:`parent_names`."""
        if self.hierarchy is None or self.multilabel:
            return None
        lookup = {p: i for i, p in enumerate(self.parent_names)}
        per_class = np.array([lookup[p] for p in self.hierarchy], dtype=np.int64)
        return per_class[self.labels]

    @property
    def parent_names(self) -> tuple[str, ...]:
        """Distinct parent names in first-seen order (empty without a hierarchy)."""
        return tuple(dict.fromkeys(self.hierarchy)) if self.hierarchy is not None else ()

    # ---- pixels -------------------------------------------------------------------------------------------
    def load_images(self, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """uint8 images for ``indices`` (all when ``None``): from memory, or decoded from disk for file sources."""
        idx = np.arange(self.n) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -self.n or idx.max() >= self.n):
            raise InvalidInputError(f"{self.name}: image index out of range 0..{self.n - 1}", "pick valid indices")
        if self.images is not None:
            return self.images[idx]
        if self.paths is None or self.loader is None:
            raise InvalidInputError(f"{self.name} has no images (an embeddings file without thumbnails)",
                                    "add a 'thumbnails' array (n, h, w[, 3]) uint8 to the .npz to see images")
        out = np.empty((len(idx), self.image_size, self.image_size, 3), dtype=np.uint8)
        for k, i in enumerate(idx):
            out[k] = self.loader(self.paths[i], self.image_size)
        return out

    def summary(self) -> str:
        parts = {p: int(m.sum()) for p, m in self.masks().items()}
        kind = "multi-label" if self.multilabel else "single-label"
        unit = "rows" if getattr(self, "embeddings", None) is not None else "images"  # a file's rows are no images
        return (f"{self.name}: {self.n} {unit}, {self.n_classes} classes ({kind}); {parts['query']} query, "
                f"{parts['database']} database, {parts['train']} train"
                + (f", {parts['val']} held out" if parts.get("val") else "")
                + (" (train not in the database)" if (self.split == 3).any() else "") + f" (seed {self.seed})"
                + (f"; {len(self.skipped)} files skipped" if self.skipped else ""))
