"""AP / mAP / P@k under every tie policy against literal loops, enumeration, Monte Carlo and sklearn."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from hashviz.codes import pack_bits
from hashviz.errors import InvalidInputError
from hashviz.retrieval.metrics import (
    average_precisions,
    mean_average_precision,
    normalized_euclidean_distances,
    precision_at_k,
    retrieval_report,
)
from tests.retrieval._reference import (
    ap_of_ranking,
    expected_by_enumeration,
    hamming_bits,
    order_with_ties,
    relevance_brute,
)


def _tied_problem(seed, nq=6, ndb=7, n_bits=3, n_classes=2, multi=False):
    """Few bits -> big tie groups. ndb <= 7 keeps enumeration of all tie orders small."""
    rng = np.random.default_rng(seed)
    qb, db = rng.random((nq, n_bits)) < 0.5, rng.random((ndb, n_bits)) < 0.5
    if multi:
        ql, dl = rng.random((nq, n_classes)) < 0.4, rng.random((ndb, n_classes)) < 0.4
    else:
        ql, dl = rng.integers(0, n_classes, nq), rng.integers(0, n_classes, ndb)
    return qb, db, ql, dl


def test_ap_literal_loop_on_hand_made_ranking():
    # database distances to the single query: 0, 1, 1, 2, 3 ; relevant items: 0, 2, 4
    q = np.array([[0, 0, 0, 0]], bool)
    db = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]], bool)
    ql, dl = np.array([1]), np.array([1, 0, 1, 0, 1])
    qc, dc = pack_bits(q), pack_bits(db)
    # stable order: items 0,1,2,3,4 -> rel 1,0,1,0,1 -> AP = (1/1 + 2/3 + 3/5) / 3
    stable = (1 + 2 / 3 + 3 / 5) / 3
    assert ap_of_ranking([1, 0, 1, 0, 1]) == pytest.approx(stable)
    assert average_precisions(qc, dc, ql, dl, ties="stable")[0] == pytest.approx(stable, abs=1e-15)
    # optimistic swaps items 1 and 2: rel 1,1,0,0,1
    assert mean_average_precision(qc, dc, ql, dl, ties="optimistic") == pytest.approx((1 + 1 + 3 / 5) / 3)
    # expected: average of the two orders of the tie {1, 2}
    assert mean_average_precision(qc, dc, ql, dl) == pytest.approx(((1 + 1 + 3 / 5) / 3 + stable) / 2)
    # AP@2 cuts the tie group: orders (1,2) -> rel 1,0 -> 1 ; (2,1) -> rel 1,1 -> 1 ; AP@3 stable: (1 + 2/3)/2
    assert mean_average_precision(qc, dc, ql, dl, top_k=2) == pytest.approx(1.0)
    assert mean_average_precision(qc, dc, ql, dl, top_k=3, ties="stable") == pytest.approx((1 + 2 / 3) / 2)
    assert precision_at_k(qc, dc, ql, dl, 2) == pytest.approx(0.75)  # 1 + E[rel among 1 of {1,2}] = 1.5
    assert precision_at_k(qc, dc, ql, dl, 2, ties="pessimistic") == pytest.approx(0.5)


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_expected_equals_mean_over_all_tie_orders(seed, multi):
    qb, db, ql, dl = _tied_problem(seed, multi=multi)
    qc, dc = pack_bits(qb), pack_bits(db)
    d, rel = hamming_bits(qb, db), relevance_brute(ql, dl)
    for k in (None, 1, 2, 3, 4, 5, 6):   # small k cut tie groups
        ap = average_precisions(qc, dc, ql, dl, top_k=k)
        pk = precision_at_k(qc, dc, ql, dl, 7 if k is None else k)
        ref_pk = []
        for i in range(len(qb)):
            ref_pk.append(expected_by_enumeration(d[i], rel[i], k, stat="precision"))
            if not rel[i].any():
                assert np.isnan(ap[i])
                continue
            assert ap[i] == pytest.approx(expected_by_enumeration(d[i], rel[i], k), abs=1e-12)
        assert pk == pytest.approx(np.mean(ref_pk), abs=1e-12)


def test_expected_when_k_cuts_a_big_tie_group():
    # one query, 7 items all at the same distance, 3 relevant: AP@k over all 7! orders
    q = np.zeros((1, 8), bool)
    db = np.zeros((7, 8), bool)
    ql, dl = np.array([0]), np.array([0, 1, 0, 1, 1, 0, 1])
    rel = dl == 0
    for k in range(1, 8):
        ref = expected_by_enumeration(np.zeros(7), rel, k)
        assert average_precisions(pack_bits(q), pack_bits(db), ql, dl, top_k=k)[0] == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("multi", [False, True])
def test_expected_matches_monte_carlo_of_random(multi):
    rng = np.random.default_rng(1)
    n_bits, nq, ndb = 6, 20, 400
    centers = rng.random((4, n_bits)) < 0.5
    dcls, qcls = rng.integers(0, 4, ndb), rng.integers(0, 4, nq)
    db = centers[dcls] ^ (rng.random((ndb, n_bits)) < 0.15)
    qb = centers[qcls] ^ (rng.random((nq, n_bits)) < 0.15)
    if multi:
        dl, ql = np.eye(4, dtype=bool)[dcls] | (rng.random((ndb, 4)) < 0.1), np.eye(4, dtype=bool)[qcls]
    else:
        dl, ql = dcls, qcls
    qc, dc = pack_bits(qb), pack_bits(db)
    for k in (None, 37):
        exact = average_precisions(qc, dc, ql, dl, top_k=k)
        draws = np.array([average_precisions(qc, dc, ql, dl, top_k=k, ties="random", seed=s) for s in range(300)])
        mc, se = draws.mean(0), draws.std(0) / np.sqrt(len(draws))
        assert np.all(np.abs(mc - exact) <= 5 * se + 1e-9)
        # ties really matter here, so the test has power
        assert draws.std(0).max() > 1e-3


def test_random_ties_deterministic_for_a_seed_and_tuple_form():
    qb, db, ql, dl = _tied_problem(3, nq=10, ndb=40, n_bits=4, n_classes=3)
    qc, dc = pack_bits(qb), pack_bits(db)
    a = average_precisions(qc, dc, ql, dl, ties="random", seed=5)
    assert np.array_equal(a, average_precisions(qc, dc, ql, dl, ties="random", seed=5), equal_nan=True)
    assert np.array_equal(a, average_precisions(qc, dc, ql, dl, ties=("random", 5)), equal_nan=True)
    # it is the stable ranking of the database shuffled by default_rng(seed).permutation
    perm = np.random.default_rng(5).permutation(40)
    b = average_precisions(qc, dc[perm], ql, dl[perm], ties="stable")
    assert np.allclose(a, b, equal_nan=True)


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("policy", ["stable", "optimistic", "pessimistic"])
def test_ordered_policies_match_argsort_reference(policy, multi):
    rng = np.random.default_rng(2)
    qb, db, ql, dl = _tied_problem(4, nq=15, ndb=300, n_bits=5, n_classes=4, multi=multi)
    qc, dc = pack_bits(qb), pack_bits(db)
    d, rel = hamming_bits(qb, db), relevance_brute(ql, dl)
    for k in (None, 1, 10, 50, 299, 300, 1000):
        ap = average_precisions(qc, dc, ql, dl, top_k=k, ties=policy)
        pk = precision_at_k(qc, dc, ql, dl, 1000 if k is None else k, ties=policy)
        kk = 300 if k is None else min(k, 300)
        ref_pk = []
        for i in range(len(qb)):
            r = rel[i][order_with_ties(d[i], rel[i], policy)]
            ref_pk.append(r[:kk].sum() / kk)
            if not rel[i].any():
                assert np.isnan(ap[i])
            else:
                assert ap[i] == pytest.approx(ap_of_ranking(r, kk), abs=1e-12)
        assert pk == pytest.approx(np.mean(ref_pk), abs=1e-12)
    del rng


def test_secondary_distances_break_ties_and_match_sklearn():
    rng = np.random.default_rng(8)
    n_bits, nq, ndb = 8, 12, 250
    zq, zdb = rng.standard_normal((nq, n_bits)), rng.standard_normal((ndb, n_bits))
    ql, dl = rng.integers(0, 3, nq), rng.integers(0, 3, ndb)
    qc, dc = pack_bits(zq >= 0), pack_bits(zdb >= 0)
    sec = normalized_euclidean_distances(zq, zdb, dtype=np.float64)
    ref_sec = np.linalg.norm(zq[:, None] / np.linalg.norm(zq, axis=1)[:, None, None]
                             - zdb[None] / np.linalg.norm(zdb, axis=1)[None, :, None], axis=2)
    assert np.allclose(sec, ref_sec, atol=1e-7)
    ap = average_precisions(qc, dc, ql, dl, ties=sec)
    d = hamming_bits(zq >= 0, zdb >= 0)
    for i in range(nq):
        # a strictly decreasing score without ties: -(hamming + secondary / 3); secondary < 2 keeps hamming first
        score = -(d[i] + sec[i] / 3.0)
        assert len(np.unique(score)) == ndb
        assert ap[i] == pytest.approx(average_precision_score(dl == ql[i], score), abs=1e-12)
        order = order_with_ties(d[i], dl == ql[i], "secondary", sec[i])
        assert ap[i] == pytest.approx(ap_of_ranking((dl == ql[i])[order]), abs=1e-12)


def test_no_ties_all_policies_agree_with_sklearn():
    # distinct distances: 0..15 with 16 bits, each item its own distance
    n_bits = 16
    db = np.tril(np.ones((n_bits, n_bits), bool))   # item j has j+1 ones
    q = np.zeros((2, n_bits), bool)
    ql, dl = np.array([0, 1]), np.array([0, 1] * 8)
    qc, dc = pack_bits(q), pack_bits(db)
    for ties in ("expected", "stable", "optimistic", "pessimistic", "random"):
        ap = average_precisions(qc, dc, ql, dl, ties=ties)
        for i in range(2):
            assert ap[i] == pytest.approx(average_precision_score(dl == ql[i], -np.arange(n_bits)), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), n_bits=st.integers(1, 6), ndb=st.integers(1, 40), top=st.booleans())
def test_optimistic_ge_expected_ge_pessimistic(seed, n_bits, ndb, top):
    qb, db, ql, dl = _tied_problem(seed, nq=4, ndb=ndb, n_bits=n_bits, n_classes=3)
    qc, dc = pack_bits(qb), pack_bits(db)
    d = hamming_bits(qb, db)
    if top:   # a k that ends exactly on a tie-group boundary keeps AP@k monotone in the order
        k = int((d[0] <= np.median(d[0])).sum())
    else:
        k = None
    vals = {t: average_precisions(qc, dc, ql, dl, top_k=k, ties=t) for t in
            ("optimistic", "expected", "stable", "pessimistic")}
    ok = ~np.isnan(vals["expected"])
    if top:
        ok[1:] = False   # k is a boundary for query 0 only
    eps = 1e-12
    assert np.all(vals["optimistic"][ok] >= vals["expected"][ok] - eps)
    assert np.all(vals["expected"][ok] >= vals["pessimistic"][ok] - eps)
    assert np.all(vals["optimistic"][ok] >= vals["stable"][ok] - eps)
    assert np.all(vals["stable"][ok] >= vals["pessimistic"][ok] - eps)
    kk = ndb if k is None else k
    p = {t: precision_at_k(qc, dc, ql, dl, kk // 2 + 1, ties=t) for t in ("optimistic", "expected", "pessimistic")}
    assert p["optimistic"] >= p["expected"] - eps
    assert p["expected"] >= p["pessimistic"] - eps


def test_ap_at_k_convention_is_not_monotone_when_k_cuts_a_tie():
    # documented: one relevant at rank 1, then a tie group of 3 with 1 relevant, k = 3 cuts it.
    q = np.zeros((1, 4), bool)
    db = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], bool)
    ql, dl = np.array([0]), np.array([0, 1, 1, 0])
    qc, dc = pack_bits(q), pack_bits(db)
    pess = mean_average_precision(qc, dc, ql, dl, top_k=3, ties="pessimistic")
    exp = mean_average_precision(qc, dc, ql, dl, top_k=3)
    assert pess == pytest.approx(1.0)                      # relevant one pushed out of the top 3
    assert exp == pytest.approx((1 / 3) * ((1 + 2 / 2) / 2 + (1 + 2 / 3) / 2 + 1))
    assert exp < pess


def test_top_k_larger_than_database_equals_all():
    qb, db, ql, dl = _tied_problem(9, nq=8, ndb=30, n_bits=4, n_classes=3)
    qc, dc = pack_bits(qb), pack_bits(db)
    for ties in ("expected", "stable", "optimistic", "pessimistic"):
        a = average_precisions(qc, dc, ql, dl, ties=ties)
        b = average_precisions(qc, dc, ql, dl, top_k=10_000, ties=ties)
        assert np.array_equal(a, b, equal_nan=True)
        assert precision_at_k(qc, dc, ql, dl, 10_000, ties=ties) == pytest.approx(
            np.mean([(dl == c).sum() / 30 for c in ql]))


def test_queries_without_relevant_items_are_left_out_and_counted():
    rng = np.random.default_rng(0)
    qc, dc = pack_bits(rng.random((5, 8)) < 0.5), pack_bits(rng.random((20, 8)) < 0.5)
    ql, dl = np.array([0, 1, 7, 8, 0]), rng.integers(0, 2, 20)
    ap = average_precisions(qc, dc, ql, dl)
    assert np.isnan(ap[[2, 3]]).all() and np.isfinite(ap[[0, 1, 4]]).all()
    assert mean_average_precision(qc, dc, ql, dl) == pytest.approx(ap[[0, 1, 4]].mean())
    rep = retrieval_report(qc, dc, ql, dl, top_k=5)
    assert rep.n_no_relevant == 2 and rep.n_query == 5 and rep.top_k == 5
    assert rep.map == pytest.approx(ap[[0, 1, 4]].mean())
    assert rep.map_at_k == pytest.approx(mean_average_precision(qc, dc, ql, dl, top_k=5))
    assert rep.p_at_k == pytest.approx(precision_at_k(qc, dc, ql, dl, 5))
    assert np.isnan(mean_average_precision(qc, dc, np.array([9] * 5), dl))


def test_multi_label_relevance_shares_one_label():
    q = np.zeros((1, 8), bool)
    db = np.array([[0] * 8, [1] + [0] * 7, [1, 1] + [0] * 6], bool)
    ql = np.array([[1, 0, 1]])
    dl = np.array([[0, 0, 1], [0, 1, 0], [1, 1, 1]])
    # relevant: items 0 and 2 (share class 2 / classes 0,2); ranking 0,1,2 -> AP = (1 + 2/3)/2
    assert mean_average_precision(pack_bits(q), pack_bits(db), ql, dl) == pytest.approx((1 + 2 / 3) / 2)


def test_large_problem_threads_match_single_block_reference():
    # big enough for the threaded path; compare with the literal stable reference on a few queries
    rng = np.random.default_rng(4)
    qb, db = rng.random((200, 16)) < 0.5, rng.random((30000, 16)) < 0.5
    ql, dl = rng.integers(0, 10, 200), rng.integers(0, 10, 30000)
    qc, dc = pack_bits(qb), pack_bits(db)
    ap = average_precisions(qc, dc, ql, dl, top_k=100, ties="stable")
    d = hamming_bits(qb[:5], db)
    for i in range(5):
        r = (dl == ql[i])[np.argsort(d[i], kind="stable")]
        assert ap[i] == pytest.approx(ap_of_ranking(r, 100), abs=1e-12)
    e = average_precisions(qc, dc, ql, dl, top_k=100)
    e_small = average_precisions(qc[:5], dc, ql[:5], dl, top_k=100)
    assert np.allclose(e[:5], e_small, rtol=0, atol=1e-13)


@pytest.mark.parametrize("bad", ["best", "Expected", 3, None, ("random", "x")])
def test_unknown_ties_raise(bad):
    qb, db, ql, dl = _tied_problem(0)
    with pytest.raises(InvalidInputError):
        mean_average_precision(pack_bits(qb), pack_bits(db), ql, dl, ties=bad)


def test_bad_inputs_raise_with_hints():
    qb, db, ql, dl = _tied_problem(0)
    qc, dc = pack_bits(qb), pack_bits(db)
    cases = [
        ((qc, pack_bits(np.zeros((7, 9), bool)), ql, dl), {}, "bytes"),
        ((qc, dc, ql[:-1], dl), {}, "labels"),
        ((qc, dc, ql, dl[:3]), {}, "labels"),
        ((qc, dc, ql, np.eye(2)[dl]), {}, "-D"),
        ((qc, dc, np.eye(3)[ql], np.eye(2)[dl]), {}, "classes"),
        ((qc, dc, ql + 0.5, dl), {}, "integer"),
        ((qc, dc, ql, dl), {"top_k": 0}, "top_k"),
        ((qc, dc, ql, dl), {"ties": np.zeros((2, 2))}, "shape"),
        ((qc, dc, ql, dl), {"ties": np.full((6, 7), np.nan)}, "NaN"),
        ((qc.astype(np.int32), dc, ql, dl), {}, "uint8"),
    ]
    for args, kw, msg in cases:
        with pytest.raises(InvalidInputError, match=msg) as e:
            mean_average_precision(*args, **kw)
        assert e.value.hint
    with pytest.raises(InvalidInputError, match="k must"):
        precision_at_k(qc, dc, ql, dl, -1)


@pytest.mark.parametrize("n_bits", [1, 13, 64, 65, 130])
@pytest.mark.parametrize("ties", ["stable", "random", "expected"])
def test_any_code_length_matches_reference(n_bits, ties):
    # single- and multi-word codes through every kernel path
    rng = np.random.default_rng(n_bits)
    base = rng.random((3, n_bits)) < 0.5
    db = base[rng.integers(0, 3, 80)] ^ (rng.random((80, n_bits)) < 0.05)
    qb = base[rng.integers(0, 3, 6)]
    ql, dl = rng.integers(0, 2, 6), rng.integers(0, 2, 80)
    qc, dc = pack_bits(qb), pack_bits(db)
    d, rel = hamming_bits(qb, db), relevance_brute(ql, dl)
    perm = np.random.default_rng(0).permutation(80)
    for k in (None, 5, 40):
        ap = average_precisions(qc, dc, ql, dl, top_k=k, ties=ties, seed=0)
        for i in range(6):
            if ties == "expected":
                # groups are big here: compare with the stable-order formula only through the bounds
                lo = average_precisions(qc, dc, ql, dl, top_k=None, ties="pessimistic")[i]
                hi = average_precisions(qc, dc, ql, dl, top_k=None, ties="optimistic")[i]
                if k is None:
                    assert lo - 1e-12 <= ap[i] <= hi + 1e-12
                continue
            if ties == "stable":
                order = np.argsort(d[i], kind="stable")
            else:   # database visited in the seeded permutation, ties in that order
                order = perm[np.argsort(d[i][perm], kind="stable")]
            assert ap[i] == pytest.approx(ap_of_ranking(rel[i][order], k), abs=1e-12)
