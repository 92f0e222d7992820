"""The Embeddings bundle: continuous embeddings with labels and a split, and its ``.npz`` round trip.

The file layout (also what users bring) and its defensive reading live in :mod:`hashviz.data.embeddings_file`,
the data layer's embeddings-file source, which returns checked arrays; this module builds the bundle from them
(:meth:`Embeddings.load`, :func:`load_lengths`) and writes it (:meth:`Embeddings.save`). The reader's names
(:data:`EXPECTED_LAYOUT`, :data:`MAX_NPZ_BYTES`, :func:`inspect_npz`, :func:`inspect_layout`,
:func:`code_lengths`, :func:`npz_size_limit`, …) are importable from here too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hashviz.data.embeddings_file import (  # noqa: F401 - re-exported: the file's layout and limits
    ARRAY_NAMES,
    DEFAULT_LIMIT,
    EXPECTED_LAYOUT,
    LENGTH_NAME,
    MAX_CLASSES,
    MAX_CODE_LENGTHS,
    MAX_NPZ_BYTES,
    MIN_ROWS,
    ArrayInfo,
    FileEmbeddings,
    check_fields,
    code_lengths,
    default_max_bytes,
    fields_from_arrays,
    inspect_layout,
    inspect_npz,
    npz_size_limit,
    read_embeddings_file,
)
from hashviz.data.splits import QUERY, SPLIT_NAMES, masks
from hashviz.errors import InvalidInputError
from hashviz.fileio import write_atomic
from hashviz.validate import check_choice


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
        checked = check_fields(self.z, self.labels, self.split, self.ids, self.class_names, self.image_paths)
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def n(self) -> int:
        return self.z.shape[0]

    @property
    def dim(self) -> int:
        return self.z.shape[1]

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    def class_counts(self, rows) -> np.ndarray:
        """Items per class among ``rows`` (indices or a bool mask over all rows), one count per class name; a
        multi-label item counts once for each of its labels."""
        if self.multilabel:
            return np.asarray(self.labels[rows], dtype=bool).sum(axis=0).astype(np.int64)
        return np.bincount(np.asarray(self.labels[rows], dtype=np.int64),
                           minlength=len(self.class_names)).astype(np.int64)

    def mask(self, name: str) -> np.ndarray:
        check_choice(name, "split", sorted(SPLIT_NAMES))
        return masks(self.split)[name]

    def part(self, name: str) -> Embeddings:
        """Rows of one split (``"train"``, ``"query"`` or ``"database"``; the database includes train); an empty
        split raises InvalidInputError saying so."""
        m = self.mask(name)
        if not m.any():
            codes = {"train": "0", "query": "1", "database": "0 or 2"}[name]
            raise InvalidInputError(f"the {name} split is empty: no row has split code {codes} (of {self.n} rows)",
                                    "split codes: 0 = train, 1 = query, 2 = database (train rows also count as "
                                    "database); leave 'split' out of an embeddings file for a seeded split")
        return replace(self, z=self.z[m], labels=self.labels[m], split=self.split[m], ids=self.ids[m],
                       thumbnails=None if self.thumbnails is None else self.thumbnails[m],
                       image_paths=None if self.image_paths is None else tuple(np.asarray(self.image_paths)[m]))

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
        write_atomic(path, lambda f: np.savez(f, **arrays))
        return path

    @classmethod
    def load(cls, path, *, seed: int = 0, name: str | None = None, max_bytes=DEFAULT_LIMIT,
             n_bits: int | None = None) -> Embeddings:
        """Read DESIGN.md's embeddings file (a path or a binary file object); a missing ``split`` gets a seeded
        stratified split (10% queries per class, the rest database and train). ``name`` labels messages.

        ``max_bytes``: refuse files whose arrays hold more than this many bytes uncompressed, checked from the
        headers before reading (default :func:`default_max_bytes`, i.e. :data:`MAX_NPZ_BYTES`; ``None``: no limit).
        Only the arrays of the layout are read; other members of the archive are ignored.

        ``n_bits``: the code length to read from a file with ``z_<bits>`` arrays (only that one is read and
        counted); needed when it has several (:func:`load_lengths` reads them all). For a file with ``z``, the
        width ``z`` must have."""
        found = read_embeddings_file(path, seed=seed, name=name, max_bytes=max_bytes, n_bits=n_bits)
        return cls.from_checked(next(iter(found.values())))

    @classmethod
    def from_arrays(cls, data: dict, *, seed: int = 0, source: str = "arrays") -> Embeddings:
        """The bundle from a user file's arrays (the layout of :mod:`hashviz.data.embeddings_file`), each checked
        with a message naming what is wrong; a missing ``split`` gets a seeded stratified one. The split needs
        >= 1 query and >= 2 train rows."""
        return cls.from_checked(fields_from_arrays(data, seed=seed, source=source))

    @classmethod
    def from_checked(cls, arrays: FileEmbeddings) -> Embeddings:
        """The bundle of the checked arrays the embeddings-file source returns (e.g. ``dataset.embeddings``)."""
        return cls(**arrays._asdict())


def load_lengths(path, *, seed: int = 0, name: str | None = None, max_bytes=DEFAULT_LIMIT) -> dict[int, Embeddings]:
    """Every code length of an embeddings file: ``{bits: Embeddings}`` in increasing bits — one entry per
    ``z_<bits>`` array, or ``{d: …}`` for a file with one ``z`` (n, d). The rows, labels, split (drawn once when the
    file has none), ids, class names, thumbnails and meta are the same for every length (read once, shared).
    ``max_bytes`` counts every array read (see :meth:`Embeddings.load`)."""
    found = read_embeddings_file(path, seed=seed, name=name, max_bytes=max_bytes, every_length=True)
    return {bits: Embeddings.from_checked(arrays) for bits, arrays in found.items()}


def n_queries(emb: Embeddings) -> int:
    return int((emb.split == QUERY).sum())
