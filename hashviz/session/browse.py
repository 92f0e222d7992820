"""Query browsing, UI-free: rank the database for one query under a tie policy, with relevance and AP; choose
the query; the Hamming neighbours of a map point.

The AP comes from :func:`hashviz.retrieval.metrics.average_precisions` — the same function the CLI and the
Compare table use — so a query's AP here is exactly its term in the reported mAP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hashviz.embeddings import Embeddings
from hashviz.quantize.base import Quantizer

DISPLAY_TIES = ("expected", "stable", "optimistic", "pessimistic", "random")


@dataclass(frozen=True)
class Ranking:
    rows: np.ndarray       # embedding rows of the top k database items, in display order
    distances: np.ndarray  # their Hamming distances
    relevant: np.ndarray   # bool: shares a label with the query
    ap: float              # the query's AP under the protocol (NaN when nothing is relevant and it leaves such
    bits: np.ndarray       # queries out); bool (k, n_bits) codes of the shown items
    query_bits: np.ndarray
    ap_label: str = "AP@all (hashviz)"   # the AP's depth and protocol, e.g. "AP@3999 (deephash)"


def database_rows(emb: Embeddings, query_row: int) -> np.ndarray:
    """Database rows for a query: the database split without the query itself (a map point may be in it)."""
    db = np.flatnonzero(emb.mask("database"))
    return db[db != int(query_row)]


def _query_problem(emb: Embeddings, quantizer: Quantizer, query_row: int, codes: np.ndarray | None = None,
                   rotated: bool = True):
    """(database rows, rotated query, rotated database, query code, database codes, Hamming distances, relevance)
    of one query. ``codes``: ``quantizer.encode(emb.z)`` computed once (then a query encodes nothing: at 200,000
    rows encoding the database was most of a query's time); ``rotated=False``: the rotated embeddings are not
    needed (None), only codes."""
    from hashviz.codes import encode, hamming_distances
    from hashviz.retrieval.relevance import relevance

    db = database_rows(emb, query_row)
    q_rot = db_rot = None
    if rotated or codes is None:
        q_rot, db_rot = quantizer.transform(emb.z[[query_row]]), quantizer.transform(emb.z[db])
    if codes is None:
        qc, dc = encode(q_rot), encode(db_rot)
    else:
        qc, dc = codes[[query_row]], codes[db]
    dist = np.asarray(hamming_distances(qc, dc))[0].astype(np.int64)
    rel = np.asarray(relevance(emb.labels[[query_row]], emb.labels[db]))[0].astype(bool)
    return db, q_rot, db_rot, qc, dc, dist, rel


def _display_order(rule, dist: np.ndarray, rel: np.ndarray, seed: int, q_rot=None, db_rot=None) -> np.ndarray:
    """Database positions by Hamming distance, ties ordered by ``rule`` (then by database order)."""
    from hashviz.retrieval.metrics import SecondaryDistances

    n = len(dist)
    if rule == "optimistic":
        tie = (~rel).astype(np.int64)
    elif rule == "pessimistic":
        tie = rel.astype(np.int64)
    elif rule == "random":
        tie = np.random.default_rng(seed).permutation(n)
    elif rule == "euclidean":
        tie = SecondaryDistances(q_rot, db_rot).rows(0, 1)[0]
    else:
        tie = np.arange(n)
    return np.lexsort((np.arange(n), tie, dist))


def rank(emb: Embeddings, quantizer: Quantizer, query_row: int, k: int = 10, ties: str | None = "expected",
         seed: int = 0, protocol: str = "hashviz", codes: np.ndarray | None = None) -> Ranking:
    """Top ``k`` by Hamming distance and the query's AP under ``protocol``; inside equal distances the order
    follows ``ties`` (None: the protocol's own): "stable" (database order; also used to *display* "expected",
    whose AP is the exact expectation over random orders), "optimistic"/"pessimistic" (relevant first/last),
    "random" (seeded), "euclidean" (h2q's: by the Euclidean distance of the L2-normalised rotated embeddings).
    ``codes``: every row's codes, encoded once (see :func:`_query_problem`)."""
    from hashviz.codes import unpack_bits
    from hashviz.retrieval.protocols import get_protocol
    from hashviz.retrieval.report import family_of, score_codes

    proto = get_protocol(protocol)
    rule = proto.ties if ties is None else ties
    db, q_rot, db_rot, qc, dc, dist, rel = _query_problem(emb, quantizer, query_row, codes,
                                                          rotated=rule == "euclidean")
    order = _display_order(rule, dist, rel, seed, q_rot, db_rot)[: int(k)]
    ev = score_codes(qc, dc, emb.labels[[query_row]], emb.labels[db], protocol=proto, family=family_of(emb.meta),
                     ties=None if ties is None or ties == proto.ties else ties, top_k=min(int(k), len(db)),
                     q_z=q_rot, db_z=db_rot, seed=seed)
    n_bits = emb.dim
    return Ranking(rows=db[order], distances=dist[order], relevant=rel[order], ap=float(ev.average_precisions[0]),
                   bits=unpack_bits(dc[order], n_bits), query_bits=unpack_bits(qc, n_bits)[0],
                   ap_label="AP" + ev.map_label[len("mAP"):])


QUERY_MODES = {"random": "random query", "class": "a query of one class", "selected": "the point selected on the map",
               "differ": "where two quantizers differ most"}


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


# ---- ties at the cut-off --------------------------------------------------------------------------------------
BOUND_TIES = ("optimistic", "expected", "pessimistic")


@dataclass(frozen=True)
class TieGroup:
    """The tie group that the cut-off k cuts, for one query and quantizer: the k-th item's Hamming ``distance``;
    ``before`` items are strictly closer (all inside the top k), ``size`` items sit at exactly that distance, of
    which ``inside`` = k − before make the top k, and which order puts *which* of them there is up to the tie
    policy. ``relevant`` of the group are relevant (``relevant_before`` of the closer ones). ``ap`` and
    ``ap_at_k``: the query's AP@all and AP@k under the optimistic, expected and pessimistic orders (NaN when no
    database item is relevant)."""

    k: int
    distance: int
    before: int
    size: int
    inside: int
    relevant: int
    relevant_before: int
    n_relevant: int
    ap: dict
    ap_at_k: dict

    @property
    def cut(self) -> bool:
        """Whether k falls inside the group (some of its items are in the top k, some are not)."""
        return self.inside < self.size


def tie_group(emb: Embeddings, quantizer, query_row: int, k: int, codes: np.ndarray | None = None) -> TieGroup:
    """:class:`TieGroup` of ``query_row`` at cut-off ``k`` (clipped to the database size) — the AP values come from
    :func:`hashviz.retrieval.metrics.average_precisions`, the function behind every reported mAP. ``codes``: every
    row's codes, encoded once."""
    from hashviz.retrieval.metrics import average_precisions

    db, _, _, qc, dc, dist, rel = _query_problem(emb, quantizer, query_row, codes, rotated=False)
    k = int(min(max(1, int(k)), len(db)))
    d = int(np.partition(dist, k - 1)[k - 1])
    closer, at = dist < d, dist == d
    before = int(closer.sum())
    ql, dl = emb.labels[[query_row]], emb.labels[db]
    ap = {t: float(average_precisions(qc, dc, ql, dl, ties=t)[0]) for t in BOUND_TIES}
    ap_k = {t: float(average_precisions(qc, dc, ql, dl, top_k=k, ties=t)[0]) for t in BOUND_TIES}
    return TieGroup(k=k, distance=d, before=before, size=int(at.sum()), inside=k - before,
                    relevant=int((at & rel).sum()), relevant_before=int((closer & rel).sum()),
                    n_relevant=int(rel.sum()), ap=ap, ap_at_k=ap_k)


# ---- where two quantizers differ ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Disagreement:
    """Every query with a relevant database item, sorted by ``gain`` = AP of quantizer a − AP of quantizer b
    (AP@all, ``ties``), largest first: ``rows`` (embedding rows), ``ap_a``, ``ap_b``, ``gain``."""

    rows: np.ndarray
    ap_a: np.ndarray
    ap_b: np.ndarray
    gain: np.ndarray
    ties: str = "expected"

    def at(self, position: int) -> int:
        """The query row at ``position`` of the sorted list (wrapping around)."""
        return int(self.rows[int(position) % len(self.rows)])

    def position(self, row: int) -> int | None:
        hit = np.flatnonzero(self.rows == int(row))
        return int(hit[0]) if len(hit) else None

    @property
    def counts(self) -> tuple[int, int, int]:
        """(queries where a is better, equal, worse) — equal within 1e-12."""
        return int((self.gain > 1e-12).sum()), int((np.abs(self.gain) <= 1e-12).sum()), int((self.gain < -1e-12).sum())


def disagreement(emb: Embeddings, quantizer_a, quantizer_b, *, ties: str = "expected") -> Disagreement:
    """Per-query AP of two quantizers on the query split against the database (exactly the terms of their
    reported mAP), and the queries sorted by how much a beats b. Ties of the gain keep query order."""
    from hashviz.retrieval.metrics import average_precisions

    q, db = emb.mask("query"), emb.mask("database")
    rows = np.flatnonzero(q)
    aps = []
    for quantizer in (quantizer_a, quantizer_b):
        codes = quantizer.encode(emb.z)
        aps.append(average_precisions(codes[q], codes[db], emb.labels[q], emb.labels[db], ties=ties))
    ap_a, ap_b = aps
    ok = ~(np.isnan(ap_a) | np.isnan(ap_b))
    rows, ap_a, ap_b = rows[ok], ap_a[ok], ap_b[ok]
    gain = ap_a - ap_b
    order = np.argsort(-gain, kind="stable")
    return Disagreement(rows=rows[order], ap_a=ap_a[order], ap_b=ap_b[order], gain=gain[order], ties=ties)


def relevant_ranks(emb: Embeddings, quantizer, query_row: int, ties: str = "expected", seed: int = 0,
                   limit: int | None = None, codes: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """(1-based ranks of the relevant database items in the displayed order of :func:`rank`, number of relevant
    items), ranks beyond ``limit`` dropped. ``codes``: every row's codes, encoded once."""
    from hashviz.retrieval.protocols import get_protocol

    rule = get_protocol("hashviz").ties if ties is None else ties
    _, q_rot, db_rot, _, _, dist, rel = _query_problem(emb, quantizer, query_row, codes, rotated=rule == "euclidean")
    order = _display_order(rule, dist, rel, seed, q_rot, db_rot)
    ranks = np.flatnonzero(rel[order]) + 1
    return (ranks if limit is None else ranks[ranks <= limit]), int(rel.sum())
