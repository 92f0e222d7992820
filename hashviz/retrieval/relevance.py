"""Relevance between query and database items, from their labels.

Two label forms are accepted, the same for queries and database:

- single-label: ``(n,)`` integers — a pair is relevant when the labels are equal;
- multi-label: ``(n, c)`` multi-hot (bool or 0/1) — a pair is relevant when the items share at least one label
  (the NUS-WIDE / COCO convention of deep-hashing papers).

:func:`relevance` materialises the (nq, ndb) bool matrix block by block (for tests, small data and the app);
the metrics never build it: their kernels compare label ids, or AND packed label words, pair by pair.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hashviz.codes import code_words
from hashviz.errors import InvalidInputError

_LABEL_HINT = "give (n,) integer class ids or an (n, c) multi-hot 0/1 matrix, one row per item"

#: Largest (query block x database) bool temporary in bytes built by :func:`iter_relevance`.
BLOCK_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class LabelPair:
    """Validated query/database labels: ``kind`` "single" (int64 ids) or "multi" (bool multi-hot)."""

    kind: str
    query: np.ndarray
    database: np.ndarray

    def kernel_args(self):
        """(qi, di, qm, dm, multi) as the kernels of :mod:`hashviz.retrieval._kernels` take them."""
        empty_i = np.zeros(0, np.int64)
        empty_w = np.zeros((0, 1), np.uint64)
        if self.kind == "single":
            return self.query, self.database, empty_w, empty_w, False
        return empty_i, empty_i, pack_label_words(self.query), pack_label_words(self.database), True


def as_labels(labels, name: str = "labels") -> np.ndarray:
    """Validate one label array: (n,) int64 ids or (n, c) bool multi-hot."""
    y = np.asarray(labels)
    if y.dtype == object or y.ndim not in (1, 2):
        raise InvalidInputError(f"{name} must be (n,) integers or (n, c) multi-hot, got {y.dtype} {y.shape}",
                                _LABEL_HINT)
    if y.ndim == 1:
        if y.dtype == bool:
            return y.astype(np.int64)
        if np.issubdtype(y.dtype, np.integer):
            return y.astype(np.int64, copy=False)
        if np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all():
            return y.astype(np.int64)
        raise InvalidInputError(f"{name} must be integer class ids, got {y.dtype} values", _LABEL_HINT)
    if y.dtype == bool:
        return y
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)) or not np.isin(y, (0, 1)).all():
        raise InvalidInputError(f"{name} is 2-D, so it must be multi-hot with 0/1 entries", _LABEL_HINT)
    return y.astype(bool)


def check_labels(q_labels, db_labels, n_query: int | None = None, n_database: int | None = None) -> LabelPair:
    """Validate a query/database label pair (same form, same number of classes, row counts as given)."""
    q, db = as_labels(q_labels, "query labels"), as_labels(db_labels, "database labels")
    if q.ndim != db.ndim:
        raise InvalidInputError(f"query labels are {q.ndim}-D but database labels {db.ndim}-D",
                                "use the same label form (ids or multi-hot) for both")
    if q.ndim == 2 and q.shape[1] != db.shape[1]:
        raise InvalidInputError(f"query labels have {q.shape[1]} classes but database labels {db.shape[1]}",
                                "multi-hot labels of both sides need one column per class, in the same order")
    for what, y, n in (("query", q, n_query), ("database", db, n_database)):
        if n is not None and y.shape[0] != n:
            raise InvalidInputError(f"{n} {what} codes but {y.shape[0]} {what} labels",
                                    "give one label (row) per code, in the same order")
    return LabelPair("single" if q.ndim == 1 else "multi", q, db)


def pack_label_words(multi_hot: np.ndarray) -> np.ndarray:
    """Pack a bool (n, c) multi-hot matrix into uint64 words (n, ceil(c / 64)), zero padded."""
    packed = np.packbits(np.asarray(multi_hot, dtype=bool), axis=1)
    if not packed.shape[1]:  # no class at all: one empty word per row
        return np.zeros((packed.shape[0], 1), np.uint64)
    return code_words(packed)


def iter_relevance(q_labels, db_labels, *, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, rel)`` with ``rel`` the bool relevance of queries ``start:start+len(rel)`` to the whole
    database, in query blocks whose temporaries stay under about ``block_bytes``."""
    pair = check_labels(q_labels, db_labels)
    q, db = pair.query, pair.database
    nq, ndb = q.shape[0], db.shape[0]
    if pair.kind == "single":
        block = max(1, block_bytes // max(1, ndb))
        for s in range(0, nq, block):
            yield s, q[s:s + block, None] == db[None, :]
        return
    # multi-hot: shared labels counted by a float32 matmul (exact for counts below 2**24)
    dbf = db.astype(np.float32)
    block = max(1, block_bytes // max(1, 4 * ndb))
    for s in range(0, nq, block):
        yield s, (q[s:s + block].astype(np.float32) @ dbf.T) > 0


def relevance(q_labels, db_labels) -> np.ndarray:
    """Bool (nq, ndb): ``True`` where query i and database item j are relevant (equal label / a shared label)."""
    pair = check_labels(q_labels, db_labels)
    out = np.empty((pair.query.shape[0], pair.database.shape[0]), dtype=bool)
    for s, rel in iter_relevance(pair.query, pair.database):
        out[s:s + rel.shape[0]] = rel
    return out
