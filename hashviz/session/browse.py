"""Query browsing, UI-free: rank the database for one query under a tie policy, with relevance and AP; choose
the query; the Hamming neighbours of a map point.

The AP comes from :func:`hashviz.retrieval.metrics.average_precisions` — the same function the CLI and the
Compare table use — so a query's AP here is exactly its term in the reported mAP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hashviz.embeddings import Embeddings

DISPLAY_TIES = ("expected", "stable", "optimistic", "pessimistic", "random")


@dataclass(frozen=True)
class Ranking:
    rows: np.ndarray       # embedding rows of the top k database items, in display order
    distances: np.ndarray  # their Hamming distances
    relevant: np.ndarray   # bool: shares a label with the query
    ap: float              # the query's AP@all under ``ties`` (NaN when nothing is relevant)
    bits: np.ndarray       # bool (k, n_bits) codes of the shown items
    query_bits: np.ndarray


def database_rows(emb: Embeddings, query_row: int) -> np.ndarray:
    """Database rows for a query: the database split without the query itself (a map point may be in it)."""
    db = np.flatnonzero(emb.mask("database"))
    return db[db != int(query_row)]


def rank(emb: Embeddings, quantizer, query_row: int, k: int = 10, ties: str = "expected",
         seed: int = 0, codes: np.ndarray | None = None) -> Ranking:
    """Top ``k`` by Hamming distance; inside equal distances the order follows ``ties``: "stable" (database
    order; also used to *display* "expected", whose AP is the exact expectation over random orders),
    "optimistic"/"pessimistic" (relevant first/last), "random" (seeded). ``codes``: ``quantizer.encode(emb.z)``
    computed once (a new query then encodes nothing; at 200,000 rows encoding was most of a query's time)."""
    from hashviz.codes import hamming_distances, unpack_bits
    from hashviz.retrieval.metrics import average_precisions
    from hashviz.retrieval.relevance import relevance

    db = database_rows(emb, query_row)
    if codes is None:
        qc, dc = quantizer.encode(emb.z[[query_row]]), quantizer.encode(emb.z[db])
    else:
        qc, dc = codes[[query_row]], codes[db]
    dist = np.asarray(hamming_distances(qc, dc))[0].astype(np.int64)
    rel = np.asarray(relevance(emb.labels[[query_row]], emb.labels[db]))[0].astype(bool)
    if ties == "optimistic":
        tie = (~rel).astype(np.int64)
    elif ties == "pessimistic":
        tie = rel.astype(np.int64)
    elif ties == "random":
        tie = np.random.default_rng(seed).permutation(len(db))
    else:
        tie = np.arange(len(db))
    order = np.lexsort((np.arange(len(db)), tie, dist))[: int(k)]
    ap = float(average_precisions(qc, dc, emb.labels[[query_row]], emb.labels[db],
                                  ties=ties if ties in DISPLAY_TIES else "expected", seed=seed)[0])
    n_bits = emb.dim
    return Ranking(rows=db[order], distances=dist[order], relevant=rel[order], ap=ap,
                   bits=unpack_bits(dc[order], n_bits), query_bits=unpack_bits(qc, n_bits)[0])


QUERY_MODES = {"random": "random query", "class": "a query of one class", "selected": "the point selected on the map"}


def choose_query(emb: Embeddings, mode: str, *, seed: int = 0, class_index: int | None = None,
                 selected: Sequence[int] = (), anchor: int | None = None) -> int:
    """The Queries page's query row: with ``mode="selected"`` the clicked point (``anchor``) or the first of the
    map selection when there is one, else :func:`pick_query` (``"random"`` or ``"class"``)."""
    if mode == "selected":
        if anchor is not None:
            return int(anchor)
        if len(selected):
            return int(selected[0])
    return pick_query(emb, mode, seed=seed, class_index=class_index)


def neighbours(bits: np.ndarray, anchor: int, k: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows to ``anchor`` in Hamming distance of ``bits`` (ties by row index), itself
    excluded: (rows, distances)."""
    from hashviz.codes import pack_bits
    from hashviz.retrieval.search import top_k

    codes = pack_bits(bits)
    idx, dist = top_k(codes[anchor:anchor + 1], codes, min(k + 1, len(codes)))
    idx, dist = np.asarray(idx)[0], np.asarray(dist)[0]
    keep = idx != anchor
    return idx[keep][:k], dist[keep][:k]


def pick_query(emb: Embeddings, mode: str, *, seed: int = 0, class_index: int | None = None) -> int:
    """A query row: "random" (seeded) or the ``seed``-th query of class ``class_index``."""
    q = np.flatnonzero(emb.mask("query"))
    if mode == "class" and class_index is not None and not emb.multilabel:
        of_class = q[emb.labels[q] == int(class_index)]
        if len(of_class):
            return int(of_class[seed % len(of_class)])
    return int(np.random.default_rng(seed).choice(q))
