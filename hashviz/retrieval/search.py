"""Hamming search over packed codes: exact top-k with a deterministic tie order, per-distance counts.

Codes are the packed uint8 arrays of :mod:`hashviz.codes` (any n_bits from 1 to 1024; padding bits are 0).
The kernels view them as uint64 words and count differing bits with a hardware popcount, one query against the
whole database at a time, on a few threads over query blocks — memory stays O(ndb) per thread whatever nq is.
"""

from __future__ import annotations

import numpy as np

from hashviz.codes import as_codes, code_words, hamming_distances
from hashviz.errors import InvalidInputError
from hashviz.validate import check_int

__all__ = ["code_words", "distance_counts", "hamming_distances", "top_k"]

MAX_BYTES = 128  # 1024 bits


def check_code_pair(q_codes, db_codes, *, allow_empty_queries: bool = True):
    """Validate query/database codes; returns (q_words, db_words, n_bytes)."""
    q, db = as_codes(q_codes), as_codes(db_codes)
    if q.shape[1] != db.shape[1]:
        raise InvalidInputError(f"query codes have {q.shape[1]} bytes per item but database codes {db.shape[1]}",
                                "encode query and database with the same quantizer and n_bits")
    if q.shape[1] == 0 or q.shape[1] > MAX_BYTES:
        raise InvalidInputError(f"codes have {q.shape[1]} bytes per item; hashviz handles 1 to 1024 bits "
                                f"(1 to {MAX_BYTES} bytes)", "pack bool bits with hashviz.codes.pack_bits")
    if db.shape[0] == 0:
        raise InvalidInputError("the database is empty", "give at least one database code")
    if q.shape[0] == 0 and not allow_empty_queries:
        raise InvalidInputError("there are no query codes", "give at least one query code")
    return code_words(q), code_words(db), q.shape[1]


def top_k(q_codes, db_codes, k: int):
    """The ``k`` nearest database items of every query in Hamming distance.

    Returns ``(indices, distances)``, int64 and uint16 arrays of shape (nq, min(k, ndb)), sorted by distance
    with ties in database index order (deterministic, the order of a stable sort). ``k`` larger than the
    database is clipped to its size.

    No sort: per query, one pass counts items per distance, a second pass in index order drops every item into
    the slot ``items at smaller distances + items at its distance seen so far`` while that is below ``k``.
    """
    from hashviz.retrieval import _kernels as K

    qw, dw, nbytes = check_code_pair(q_codes, db_codes)
    k = min(check_int(k, "k", lo=1, hint="ask for at least one neighbour"), dw.shape[0])
    nq = qw.shape[0]
    idx = np.empty((nq, k), np.int64)
    dst = np.empty((nq, k), np.uint16)
    nd = 8 * nbytes + 1
    K.run_blocks(lambda a, b: K.top_k(qw[a:b], dw, nd, idx[a:b], dst[a:b]), nq, dw.shape[0])
    return idx, dst


def distance_counts(q_codes, db_codes, q_labels=None, db_labels=None) -> np.ndarray:
    """Per-query histograms of Hamming distances, int64 (nq, 2, 8 * n_bytes + 1).

    ``[:, 0, d]`` counts database items at distance d, ``[:, 1, d]`` the relevant ones among them (all zero
    when no labels are given). Every tie-aware metric of :mod:`hashviz.retrieval.metrics` is a function of
    these counts (plus, for orders other than the random expectation and the bounds, one more pass).
    """
    from hashviz.retrieval.relevance import check_labels

    qw, dw, nbytes = check_code_pair(q_codes, db_codes)
    if (q_labels is None) != (db_labels is None):
        raise InvalidInputError("give labels for both queries and database, or for neither", "")
    if q_labels is None:
        q_labels, db_labels = np.zeros(qw.shape[0], np.int64), np.ones(dw.shape[0], np.int64)
    args = check_labels(q_labels, db_labels, qw.shape[0], dw.shape[0]).kernel_args()
    return histogram_words(qw, dw, args, 8 * nbytes + 1)


def histogram_words(qw, dw, label_args, nd: int) -> np.ndarray:
    from hashviz.retrieval import _kernels as K

    qi, di, qm, dm, multi = label_args
    nq = qw.shape[0]
    out = np.zeros((nq, 2, nd), np.int64)
    if multi:
        K.run_blocks(lambda a, b: K.histograms(qw[a:b], dw, qi, di, qm[a:b], dm, True, out[a:b]), nq, dw.shape[0])
    else:
        K.run_blocks(lambda a, b: K.histograms(qw[a:b], dw, qi[a:b], di, qm, dm, False, out[a:b]), nq, dw.shape[0])
    return out
