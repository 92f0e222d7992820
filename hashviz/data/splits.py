"""Seeded, stratified train / query / database splits.

Split codes (the ``split`` array of an :class:`~hashviz.embeddings.Embeddings`): 0 train, 1 query, 2 database.
Train items are drawn *from* the database (the usual deep-hashing protocol), so an item that is in the
train split is also part of the database: use :func:`masks` to get the boolean masks. Two more codes serve the
split presets where a paper keeps train items out of the database (the HQ authors' CIFAR-10): 3 = train only
(not in the database) and 4 = validation (held out: in no part).
"""

from __future__ import annotations

import numpy as np

from hashviz.errors import InvalidInputError
from hashviz.validate import check_int

TRAIN, QUERY, DATABASE, TRAIN_ONLY, HELD_OUT = 0, 1, 2, 3, 4
SPLIT_CODES = (TRAIN, QUERY, DATABASE, TRAIN_ONLY, HELD_OUT)
SPLIT_NAMES = {"train": TRAIN, "query": QUERY, "database": DATABASE, "val": HELD_OUT}


def masks(split) -> dict[str, np.ndarray]:
    """Boolean masks ``{"train", "query", "database", "val"}``; the database includes the train items of code 0
    (not those of code 3, train only); "val" is code 4 (held out)."""
    split = np.asarray(split)
    return {"train": (split == TRAIN) | (split == TRAIN_ONLY), "query": split == QUERY,
            "database": (split == DATABASE) | (split == TRAIN), "val": split == HELD_OUT}


def check_split(split, source: str = "the split", *, min_train: int = 2,
                hint: str = "split codes: 0 = train, 1 = query, 2 = database (train rows also count as database), "
                            "3 = train not in the database, 4 = held out; leave 'split' out of an embeddings file "
                            "for a seeded split") -> None:
    """InvalidInputError unless ``split`` has a database row, ``min_train`` train rows and a query row (the
    quantizers are fitted on train rows, queries are ranked against the database)."""
    m = masks(split)
    n_query, n_train, n_db = (int(m[k].sum()) for k in ("query", "train", "database"))
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
    return check_int(seed, "seed", lo=0, expected="an integer >= 0", hint="e.g. seed=0")


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
                     n_val_per_class: int | None = None, train_in_database: bool = True,
                     seed: int = 0) -> np.ndarray:
    """Split codes (uint8) with ``n_query_per_class`` queries per class and ``n_train_per_class`` train items
    per class drawn from the rest (the database). Fractions are used where counts are not given
    (``train_fraction=None`` puts the whole database in train). ``n_val_per_class`` more items per class are
    held out (code 4) after the train items; ``train_in_database=False`` keeps the train items out of the
    database (code 3). With neither, the codes are the same as before they existed (same draws)."""
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
        split[rest[:nt]] = TRAIN if train_in_database else TRAIN_ONLY
        if n_val_per_class:
            split[rest[nt:nt + int(n_val_per_class)]] = HELD_OUT
    if not (split == QUERY).any():
        split[rng.integers(len(split))] = QUERY
    return split
