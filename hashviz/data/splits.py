"""Seeded, stratified train / query / database splits.

Split codes (the ``split`` array of an :class:`~hashviz.embeddings.Embeddings`): 0 train, 1 query, 2 database.
Train items are drawn *from* the database (the usual deep-hashing protocol), so an item that is in the
train split is also part of the database: use :func:`masks` to get the three boolean masks.
"""

from __future__ import annotations

import numpy as np

from hashviz.errors import InvalidInputError

TRAIN, QUERY, DATABASE = 0, 1, 2
SPLIT_NAMES = {"train": TRAIN, "query": QUERY, "database": DATABASE}


def masks(split) -> dict[str, np.ndarray]:
    """Boolean masks ``{"train", "query", "database"}``; the database includes the train items."""
    split = np.asarray(split)
    return {"train": split == TRAIN, "query": split == QUERY, "database": (split == DATABASE) | (split == TRAIN)}


def check_split(split, source: str = "the split", *, min_train: int = 2,
                hint: str = "split codes: 0 = train, 1 = query, 2 = database (train rows also count as database); "
                            "leave 'split' out of an embeddings file for a seeded split") -> None:
    """InvalidInputError unless ``split`` has a database row, ``min_train`` train rows and a query row (the
    quantizers are fitted on train rows, queries are ranked against the database)."""
    split = np.asarray(split)
    n_query, n_train = int((split == QUERY).sum()), int((split == TRAIN).sum())
    n_db = int(((split == DATABASE) | (split == TRAIN)).sum())
    counts = f"{n_query} query, {n_train} train and {n_db} database rows of {len(split)}"
    if n_db == 0:
        raise InvalidInputError(f"{source} leaves no database row ({counts})", hint)
    if n_train < min_train:
        raise InvalidInputError(f"{source} leaves {'no' if n_train == 0 else 'only ' + str(n_train)} train "
                                f"row{'' if n_train == 1 else 's'} ({counts}); quantizers are fitted on the train "
                                f"rows and need at least {min_train}", hint)
    if n_query == 0:
        raise InvalidInputError(f"{source} leaves no query row ({counts})", hint)


def check_seed(seed) -> int:
    """A seed for numpy's generators: an integer >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise InvalidInputError(f"seed must be an integer >= 0, got {seed!r}", "e.g. seed=0")
    return int(seed)


def _primary_label(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if labels.ndim == 1:
        return labels.astype(np.int64)
    # multi-label: stratify by one random positive label per row (rows without labels get -1)
    out = np.full(len(labels), -1, dtype=np.int64)
    for i, row in enumerate(labels):
        nz = np.flatnonzero(row)
        if nz.size:
            out[i] = rng.choice(nz)
    return out


def stratified_split(labels, *, n_query_per_class: int | None = None, n_train_per_class: int | None = None,
                     query_fraction: float = 0.1, train_fraction: float | None = None,
                     seed: int = 0) -> np.ndarray:
    """Split codes (uint8) with ``n_query_per_class`` queries per class and ``n_train_per_class`` train items
    per class drawn from the rest (the database). Fractions are used where counts are not given
    (``train_fraction=None`` puts the whole database in train)."""
    labels = np.asarray(labels)
    if labels.ndim not in (1, 2) or len(labels) < 2:
        raise InvalidInputError(f"labels must be (n,) ints or (n, c) multi-hot with n >= 2, got shape {labels.shape}",
                                "give one label (or label row) per item")
    rng = np.random.default_rng(check_seed(seed))
    primary = _primary_label(labels, rng)
    split = np.full(len(labels), DATABASE, dtype=np.uint8)
    for c in np.unique(primary):
        idx = rng.permutation(np.flatnonzero(primary == c))
        nq = n_query_per_class if n_query_per_class is not None else int(round(query_fraction * len(idx)))
        nq = min(nq, max(len(idx) - 1, 0))
        split[idx[:nq]] = QUERY
        rest = idx[nq:]
        if n_train_per_class is not None:
            nt = min(n_train_per_class, len(rest))
        elif train_fraction is not None:
            nt = int(round(train_fraction * len(rest)))
        else:
            nt = len(rest)
        split[rest[:nt]] = TRAIN
    if not (split == QUERY).any():
        split[rng.integers(len(split))] = QUERY
    return split
