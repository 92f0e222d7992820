"""The hierarchical retrieval score, from the semantic class similarities of :mod:`hashviz.data.hierarchy`.

The class distances and similarities of a label hierarchy (:func:`class_distance_matrix`,
:func:`class_similarity_matrix`, :func:`dataset_similarity`) live with the hierarchies in
:mod:`hashviz.data.hierarchy` (the hashing heads use them too, and heads sit below retrieval); they are
re-exported here.

The retrieval score :func:`mean_semantic_similarity_at_k` is the mean, over queries, of the mean semantic
similarity between the query and its k nearest database items in Hamming distance (SHREWD's "hierarchical
precision@k"). For multi-label items the similarity of two items is the largest similarity between one label of
each (1 when they share a label).
"""

from __future__ import annotations

import numpy as np

from hashviz.codes import hamming_distances
from hashviz.data.hierarchy import (  # noqa: F401 - re-exported: the similarities scored here
    class_distance_matrix,
    class_similarity_matrix,
    dataset_similarity,
    hierarchy_parents,
)
from hashviz.errors import InvalidInputError
from hashviz.validate import check_choice, check_int


def _as_label_matrix(labels, n_classes: int, what: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 1:
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise InvalidInputError(f"{what} labels must lie in 0..{n_classes - 1}",
                                    "the similarity matrix needs one row per class")
        out = np.zeros((len(labels), n_classes), dtype=bool)
        out[np.arange(len(labels)), labels.astype(np.int64)] = True
        return out
    if labels.ndim == 2 and labels.shape[1] == n_classes:
        return labels.astype(bool)
    raise InvalidInputError(f"{what} labels must be (n,) ints or (n, {n_classes}) multi-hot, got {labels.shape}",
                            "the similarity matrix has one row per class")


def item_similarity(q_labels, db_labels, similarity) -> np.ndarray:
    """Similarity (nq, ndb) between items: the largest class similarity over their label pairs."""
    s = np.asarray(similarity, dtype=float)
    c = s.shape[0]
    q = np.asarray(q_labels)
    db = np.asarray(db_labels)
    if q.ndim == 1 and db.ndim == 1:
        return s[q.astype(np.int64)][:, db.astype(np.int64)]
    qm, dm = _as_label_matrix(q, c, "query"), _as_label_matrix(db, c, "database")
    # best[j, a] = max over labels b of db item j of s[a, b]
    best = np.full((len(dm), c), -np.inf)
    for b in range(c):
        rows = dm[:, b]
        if rows.any():
            best[rows] = np.maximum(best[rows], s[:, b][None, :])
    out = np.full((len(qm), len(dm)), -np.inf)
    for a in range(c):
        rows = qm[:, a]
        if rows.any():
            out[rows] = np.maximum(out[rows], best[:, a][None, :])
    return np.where(np.isfinite(out), out, 0.0)


def mean_semantic_similarity_at_k(q_codes, db_codes, q_labels, db_labels, similarity, k: int, *,
                                  ties: str = "expected") -> float:
    """Mean over queries of the mean semantic similarity of the ``k`` database items nearest in Hamming distance.

    ``similarity``: (c, c) class similarity (e.g. :func:`class_similarity_matrix`). ``ties``: ``"expected"``
    (exact expectation over random orders inside the Hamming tie group cut by k) or ``"stable"`` (database
    index order inside ties).
    """
    s = np.asarray(similarity, dtype=float)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise InvalidInputError(f"similarity must be a square (c, c) matrix, got shape {s.shape}",
                                "use class_similarity_matrix(hierarchy, n_classes)")
    check_choice(ties, "ties", ("expected", "stable"))
    d = hamming_distances(q_codes, db_codes)
    nq, ndb = d.shape
    if len(np.asarray(q_labels)) != nq or len(np.asarray(db_labels)) != ndb:
        raise InvalidInputError("labels and codes have different numbers of rows", "give one label per code")
    k = min(check_int(k, "k", lo=1, hint="e.g. k=100"), ndb)
    if nq == 0:
        return float("nan")
    total = 0.0
    block = max(1, 2_000_000 // max(ndb, 1))
    for s0 in range(0, nq, block):
        sim = item_similarity(np.asarray(q_labels)[s0:s0 + block], db_labels, s)
        dd = d[s0:s0 + block]
        for r in range(len(dd)):
            order = np.argsort(dd[r], kind="stable")
            if ties == "stable":
                total += sim[r, order[:k]].mean()
                continue
            cut = dd[r, order[k - 1]]
            inside = dd[r] < cut
            at = dd[r] == cut
            n_in = int(inside.sum())
            total += (sim[r, inside].sum() + (k - n_in) * sim[r, at].mean()) / k
    return float(total / nq)
