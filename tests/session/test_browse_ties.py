"""Queries-page logic: the tie group the cut-off k cuts, the query's AP under the three tie orders (checked by
enumerating every order of a tiny database), queries sorted by how much two quantizers disagree, and the ranks
of the relevant items."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hashviz.embeddings import Embeddings
from hashviz.quantize import make_quantizer
from hashviz.session import browse
from tests.helpers import clustered_embeddings


def literal_ap(relevant_in_order, k=None) -> float:
    """AP@k (deep-hashing convention) of one ranking, by the definition: mean precision at the relevant ranks
    inside the top k; NaN without relevant items in the database."""
    rel = list(relevant_in_order)
    if not any(rel):
        return float("nan")
    k = len(rel) if k is None else k
    hits, total = 0, 0.0
    for i, r in enumerate(rel[:k], start=1):
        if r:
            hits += 1
            total += hits / i
    return total / hits if hits else 0.0


def popcount_distance(a: np.ndarray, b: np.ndarray) -> int:
    return sum(bin(int(x) ^ int(y)).count("1") for x, y in zip(a, b))


@pytest.fixture(scope="module")
def tiny():
    """3 queries and 7 database items, 4-bit embeddings: small enough to enumerate all 5,040 orders."""
    z = np.array([[1, 1, 1, 1], [-1, 1, -1, 1], [1, -1, 1, 1],                        # queries
                  [1, 1, 1, -1], [1, 1, -1, 1], [-1, 1, 1, 1], [1, -1, 1, 1],       # database
                  [-1, -1, 1, 1], [1, 1, 1, 1], [-1, 1, -1, -1]], dtype=np.float32)
    z = z + np.linspace(0.01, 0.1, z.size, dtype=np.float32).reshape(z.shape)        # no exact zeros
    labels = np.array([0, 1, 0, 0, 1, 0, 1, 1, 0, 1])
    split = np.array([1, 1, 1, 2, 2, 2, 2, 2, 2, 2], dtype=np.uint8)
    return Embeddings(z=z, labels=labels, split=split)


def _orders(dist, rel):
    """The relevance sequence of every order of the database that sorts it by distance (ties in any order)."""
    groups = [np.flatnonzero(dist == d) for d in sorted(set(dist.tolist()))]
    for perms in itertools.product(*[itertools.permutations(g) for g in groups]):
        yield [bool(rel[i]) for g in perms for i in g]


@pytest.mark.parametrize("query_row", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 2, 4, 7])
def test_tie_group_counts_and_aps_by_enumeration(tiny, query_row, k):
    q = make_quantizer("sign", 4).fit(tiny.z[tiny.split == 2])
    codes = q.encode(tiny.z)
    db = np.flatnonzero(tiny.split == 2)
    dist = np.array([popcount_distance(codes[query_row], codes[i]) for i in db])
    rel = tiny.labels[db] == tiny.labels[query_row]
    g = browse.tie_group(tiny, q, query_row, k)
    d = sorted(dist)[k - 1]
    assert g.distance == d and g.before == int((dist < d).sum()) and g.size == int((dist == d).sum())
    assert g.inside == k - g.before and g.relevant == int((rel & (dist == d)).sum())
    assert g.relevant_before == int((rel & (dist < d)).sum()) and g.n_relevant == int(rel.sum())
    assert g.cut == (g.before + g.size > k)
    orders = list(_orders(dist, rel))
    for kk, aps in ((None, g.ap), (k, g.ap_at_k)):
        values = [literal_ap(o, kk) for o in orders]
        assert aps["expected"] == pytest.approx(np.mean(values), abs=1e-12)
        best = literal_ap([bool(rel[i]) for i in sorted(range(len(db)), key=lambda i: (dist[i], not rel[i]))], kk)
        worst = literal_ap([bool(rel[i]) for i in sorted(range(len(db)), key=lambda i: (dist[i], rel[i]))], kk)
        assert aps["optimistic"] == pytest.approx(best, abs=1e-12)
        assert aps["pessimistic"] == pytest.approx(worst, abs=1e-12)
    assert g.ap["pessimistic"] <= g.ap["expected"] <= g.ap["optimistic"]      # bounds for AP@all


def _clustered():
    z, labels = clustered_embeddings(n_per_class=40, n_classes=4, n_bits=8, noise=0.6, seed=1)
    split = np.zeros(len(z), np.uint8)            # train rows are database rows too
    split[::5] = 1
    # a class of its own with a single query and no database item: left out of the comparison
    z = np.vstack([z, np.ones((1, 8), np.float32)])
    labels = np.append(labels, 4)
    split = np.append(split, np.uint8(1))
    return Embeddings(z=z, labels=labels, split=split)


def test_disagreement_sorts_queries_by_the_ap_difference():
    emb = _clustered()
    sign = make_quantizer("sign", 8).fit(emb.part("train").z)
    itq = make_quantizer("itq", 8).fit(emb.part("train").z)
    d = browse.disagreement(emb, itq, sign)
    queries = np.flatnonzero(emb.split == 1)
    assert len(d.rows) == len(queries) - 1 and emb.n - 1 not in d.rows          # the lonely query is left out
    assert np.all(np.diff(d.gain) <= 0) and np.allclose(d.gain, d.ap_a - d.ap_b)
    for pos in (0, 1, len(d.rows) // 2, len(d.rows) - 1):
        row = d.at(pos)
        # the very AP the Queries page shows above each list
        assert d.ap_a[pos] == pytest.approx(browse.rank(emb, itq, row, 5).ap, abs=1e-12)
        assert d.ap_b[pos] == pytest.approx(browse.rank(emb, sign, row, 5).ap, abs=1e-12)
        assert d.position(row) == pos
    assert d.at(len(d.rows)) == d.at(0)
    better, equal, worse = d.counts
    assert better + equal + worse == len(d.rows) and better == int((d.gain > 1e-12).sum())
    assert browse.disagreement(emb, sign, sign).counts == (0, len(d.rows), 0)


def test_relevant_ranks_follow_the_displayed_order():
    emb = _clustered()
    sign = make_quantizer("sign", 8).fit(emb.part("train").z)
    row = int(np.flatnonzero(emb.split == 1)[3])
    ranks, n_rel = browse.relevant_ranks(emb, sign, row, "stable")
    codes = sign.encode(emb.z)
    db = browse.database_rows(emb, row)
    dist = [popcount_distance(codes[row], codes[i]) for i in db]
    order = sorted(range(len(db)), key=lambda i: (dist[i], i))                  # stable: database order
    literal = [p + 1 for p, i in enumerate(order) if emb.labels[db[i]] == emb.labels[row]]
    assert ranks.tolist() == literal and n_rel == len(literal)
    assert browse.relevant_ranks(emb, sign, row, "stable", limit=10)[0].tolist() == [r for r in literal if r <= 10]
    opt, _ = browse.relevant_ranks(emb, sign, row, "optimistic")
    assert np.all(opt <= ranks)                                                 # relevant first inside ties
