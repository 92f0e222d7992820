"""The Embeddings bundle: continuous embeddings with labels and a split, and its ``.npz`` round trip.

File layout (``np.savez``, read with ``allow_pickle=False``) — also what users bring:

    z or features   (n, d) float            required
    labels          (n,) int  or (n, c) 0/1 required
    split           (n,) uint8 0 train, 1 query, 2 database (train items also belong to the database); optional;
                    3 = train not in the database, 4 = held out (the HQ authors' CIFAR-10 split)
    ids             (n,) int index into the source dataset; optional
    class_names     (c,) str; optional
    image_paths     (n,) str; optional
    thumbnails      (n, h, w) or (n, h, w, 3) uint8; optional
    meta            () str holding a JSON object; optional
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hashviz.data.splits import QUERY, SPLIT_CODES, SPLIT_NAMES, masks, stratified_split
from hashviz.errors import InvalidInputError

EXPECTED_LAYOUT = (
    "expected an .npz with 'z' (or 'features') of shape (n, d) float and 'labels' of shape (n,) int or (n, c) 0/1; "
    "optional: 'split' (n,) 0 train/1 query/2 database, 'class_names' (c,) str, 'image_paths' (n,) str, "
    "'thumbnails' (n, h, w[, 3]) uint8. Save it with np.savez('file.npz', z=z, labels=labels)")


@dataclass(frozen=True, eq=False)
class Embeddings:
    """Continuous embeddings ``z`` (n, d) with labels, split codes, source ids and class names."""

    z: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    ids: np.ndarray = None  # type: ignore[assignment]
    class_names: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)
    thumbnails: np.ndarray | None = None
    image_paths: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        z = np.asarray(self.z)
        if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] < 1:
            raise InvalidInputError(f"z must be a 2-D array (n, d), got shape {z.shape}", EXPECTED_LAYOUT)
        if not np.issubdtype(z.dtype, np.number) or np.iscomplexobj(z):
            raise InvalidInputError(f"z must be real numbers, got dtype {z.dtype}", EXPECTED_LAYOUT)
        z = z.astype(np.float32, copy=False)
        if not np.isfinite(z).all():
            bad = int((~np.isfinite(z)).any(axis=1).sum())
            raise InvalidInputError(f"z has NaN or infinite values in {bad} rows",
                                    "drop or fix those rows before saving the embeddings")
        n = z.shape[0]
        labels = _check_labels(self.labels, n)
        split = np.asarray(self.split)
        if split.shape != (n,) or not np.isin(split, SPLIT_CODES).all():
            raise InvalidInputError(f"split must be (n,) = ({n},) with values 0..4, got shape {split.shape}",
                                    "0 = train, 1 = query, 2 = database, 3 = train not in the database, "
                                    "4 = held out (or leave 'split' out for a seeded split)")
        ids = np.arange(n, dtype=np.int64) if self.ids is None else np.asarray(self.ids, dtype=np.int64)
        if ids.shape != (n,):
            raise InvalidInputError(f"ids must have shape ({n},), got {ids.shape}", "one id per row")
        n_classes = labels.shape[1] if labels.ndim == 2 else int(labels.max()) + 1
        names = tuple(str(c) for c in self.class_names) or tuple(str(c) for c in range(n_classes))
        if len(names) < n_classes:
            raise InvalidInputError(f"{len(names)} class names for {n_classes} classes",
                                    "give one name per class, or leave 'class_names' out")
        object.__setattr__(self, "z", z)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "split", split.astype(np.uint8))
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "class_names", names)
        if self.image_paths is not None:
            object.__setattr__(self, "image_paths", tuple(str(p) for p in self.image_paths))

    @property
    def n(self) -> int:
        return self.z.shape[0]

    @property
    def dim(self) -> int:
        return self.z.shape[1]

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    def mask(self, name: str) -> np.ndarray:
        if name not in SPLIT_NAMES:
            raise InvalidInputError(f"unknown split {name!r}", f"use one of {sorted(SPLIT_NAMES)}")
        return masks(self.split)[name]

    def part(self, name: str) -> Embeddings:
        """Rows of one split (``"train"``, ``"query"`` or ``"database"``; the database includes train)."""
        m = self.mask(name)
        return replace(self, z=self.z[m], labels=self.labels[m], split=self.split[m], ids=self.ids[m],
                       thumbnails=None if self.thumbnails is None else self.thumbnails[m],
                       image_paths=None if self.image_paths is None else tuple(np.asarray(self.image_paths)[m]))

    def with_z(self, z) -> Embeddings:
        return replace(self, z=z)

    def save(self, path) -> Path:
        """Write atomically to ``path`` (.npz, no pickled objects)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"z": self.z, "labels": self.labels, "split": self.split, "ids": self.ids,
                  "class_names": np.array(self.class_names, dtype=str),
                  "meta": np.array(json.dumps(self.meta, sort_keys=True, default=str))}
        if self.thumbnails is not None:
            arrays["thumbnails"] = self.thumbnails
        if self.image_paths is not None:
            arrays["image_paths"] = np.array(self.image_paths, dtype=str)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path, *, seed: int = 0, name: str | None = None) -> Embeddings:
        """Read DESIGN.md's embeddings file (a path or a binary file object); a missing ``split`` gets a seeded
        stratified split (10% queries per class, the rest database and train). ``name`` labels messages."""
        label = name or str(path)
        try:
            f = np.load(path, allow_pickle=False)
            if not isinstance(f, np.lib.npyio.NpzFile):
                f = None
            else:
                with f:
                    data = {k: f[k] for k in f.files}
        except FileNotFoundError:
            raise InvalidInputError(f"no such file: {label}", "check the path of the embeddings file") from None
        except ValueError as e:  # object arrays need pickle: refused
            if hasattr(path, "seek"):
                path.seek(0)
            if not zipfile.is_zipfile(path):
                raise InvalidInputError(f"{label} is not a readable .npz file", EXPECTED_LAYOUT) from None
            raise InvalidInputError(f"{label} holds Python objects, which hashviz does not unpickle ({e})",
                                    "save plain numeric/string arrays only; " + EXPECTED_LAYOUT) from None
        except (OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
            raise InvalidInputError(f"{label} is not a readable .npz file ({e})", EXPECTED_LAYOUT) from None
        if f is None:
            raise InvalidInputError(f"{label} holds a single array, not an .npz archive of named arrays",
                                    EXPECTED_LAYOUT)
        return cls.from_arrays(data, seed=seed, source=label)

    @classmethod
    def from_arrays(cls, data: dict, *, seed: int = 0, source: str = "arrays") -> Embeddings:
        keys = sorted(data)
        if "z" in data:
            z = data["z"]
        elif "features" in data:
            z = data["features"]
        else:
            raise InvalidInputError(f"{source} has no 'z' or 'features' array (found: {', '.join(keys) or 'nothing'})",
                                    EXPECTED_LAYOUT)
        if "labels" not in data:
            raise InvalidInputError(f"{source} has no 'labels' array (found: {', '.join(keys)})", EXPECTED_LAYOUT)
        z = np.asarray(z)
        if z.ndim != 2:
            raise InvalidInputError(f"{source}: z must be 2-D (n, d), got shape {z.shape}", EXPECTED_LAYOUT)
        labels = _check_labels(data["labels"], z.shape[0], source)
        split = data.get("split")
        if split is None:
            split = stratified_split(labels, query_fraction=0.1, seed=seed)
        meta = {}
        if "meta" in data:
            try:
                meta = json.loads(str(data["meta"][()]))
            except (ValueError, TypeError):
                meta = {}
        meta.setdefault("source", source)
        thumbs = data.get("thumbnails")
        if thumbs is not None and (thumbs.dtype != np.uint8 or thumbs.ndim not in (3, 4) or len(thumbs) != len(z)):
            raise InvalidInputError(f"{source}: thumbnails must be uint8 (n, h, w[, 3]) with n = {len(z)}, "
                                    f"got {thumbs.dtype} {thumbs.shape}", EXPECTED_LAYOUT)
        paths = data.get("image_paths")
        if paths is not None and len(paths) != len(z):
            raise InvalidInputError(f"{source}: {len(paths)} image_paths for {len(z)} rows", EXPECTED_LAYOUT)
        return cls(z=z, labels=labels, split=split, ids=data.get("ids"),
                   class_names=tuple(data["class_names"].tolist()) if "class_names" in data else (),
                   meta=meta, thumbnails=thumbs, image_paths=None if paths is None else tuple(paths.tolist()))


def _check_labels(labels, n: int, source: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape[:1] != (n,) or labels.ndim not in (1, 2):
        raise InvalidInputError(f"{source}: labels have shape {labels.shape} but z has {n} rows",
                                "give one label per row: (n,) ints or (n, c) multi-hot 0/1")
    if labels.ndim == 1:
        if not np.issubdtype(labels.dtype, np.integer):
            if np.issubdtype(labels.dtype, np.floating) and np.all(np.mod(labels, 1) == 0):
                labels = labels.astype(np.int64)
            else:
                raise InvalidInputError(f"{source}: single labels must be integers, got {labels.dtype}",
                                        "map class names to 0..c-1")
        if labels.min() < 0:
            raise InvalidInputError(f"{source}: labels must be >= 0, found {labels.min()}", "map classes to 0..c-1")
        return labels.astype(np.int64)
    if not np.isin(labels, (0, 1)).all():
        raise InvalidInputError(f"{source}: multi-label rows must be 0/1", "use a multi-hot (n, c) array")
    return labels.astype(bool)


def n_queries(emb: Embeddings) -> int:
    return int((emb.split == QUERY).sum())
