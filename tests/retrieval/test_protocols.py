"""Each evaluation protocol against an independent reimplementation of that paper's evaluator, written here from
its documented rules (±1 codes, inner-product Hamming distance, literal loops), on codes with heavy ties and
queries that have no relevant database item."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hashviz.codes import encode
from hashviz.errors import InvalidInputError
from hashviz.retrieval.protocols import PROTOCOL_NAMES, dataset_family, get_protocol, parse_protocol_k
from hashviz.retrieval.report import Evaluation, score_codes, score_protocols


def _problem(seed=0, nq=14, ndb=70, n_bits=5, n_classes=4, multi=False):
    """Few bits → many items per Hamming distance. Queries 0 and 1 have labels absent from the database."""
    rng = np.random.default_rng(seed)
    qz = rng.standard_normal((nq, n_bits))
    dz = rng.standard_normal((ndb, n_bits))
    if multi:
        ql = (rng.random((nq, n_classes + 1)) < 0.35).astype(int)
        dl = (rng.random((ndb, n_classes + 1)) < 0.35).astype(int)
        dl[:, -1] = 0                                   # class n_classes: only queries have it
        ql[:2] = 0
        ql[:2, -1] = 1                                  # queries 0, 1 share nothing with the database
    else:
        ql = rng.integers(0, n_classes, nq)
        dl = rng.integers(0, n_classes, ndb)
        ql[:2] = n_classes                              # a class with no database item
    return qz, dz, ql, dl


def _pm1(z):
    return np.where(z >= 0, 1.0, -1.0)


def _onehot(y, c):
    y = np.asarray(y)
    return y if y.ndim == 2 else np.eye(c, dtype=int)[y]


# ---- the published evaluators, rewritten from their rules --------------------------------------------------
def calc_top_map(rB, qB, retrievalL, queryL, topk):
    """DeepHash-pytorch CalcTopMap with the sort made stable: relevance by label dot product > 0, database
    sorted by Hamming distance, the slice gnd[0:topk] (topk=-1 drops the last item), queries with nothing
    relevant in it add 0, divided by the number of queries."""
    total = 0.0
    for i in range(queryL.shape[0]):
        gnd = (queryL[i] @ retrievalL.T > 0).astype(float)
        hamm = 0.5 * (rB.shape[1] - qB[i] @ rB.T)
        gnd = gnd[np.argsort(hamm, kind="stable")][0:topk]
        tsum = int(gnd.sum())
        if tsum == 0:
            continue
        count = np.arange(1, tsum + 1)
        pos = np.flatnonzero(gnd == 1) + 1.0
        total += np.mean(count / pos)
    return total / queryL.shape[0]


def h2q_map_at_k(q_feat, db_feat, ql, dl, k):
    """The HQ authors' mAP_at_many for one k: features L2-normalised, hashes = their signs, order = argsort of
    10·Hamming + squared Euclidean distance, AP over the first k, no-relevant queries add 0."""
    qf = q_feat / np.linalg.norm(q_feat, axis=1)[:, None]
    df = db_feat / np.linalg.norm(db_feat, axis=1)[:, None]
    qh, dh = np.sign(qf), np.sign(df)
    total = 0.0
    for i in range(ql.shape[0]):
        rel = (ql[i] @ dl.T > 0).astype(float)
        if rel.sum() == 0:
            continue
        hamm = 0.5 * (dh.shape[1] - qh[i] @ dh.T)
        eucl = np.sum((qf[i] - df) ** 2, axis=1)
        rel = rel[np.argsort(10 * hamm + eucl, kind="stable")]
        pos = np.flatnonzero(rel[:k] == 1) + 1.0
        if len(pos):
            total += np.sum(np.arange(1, len(pos) + 1) / pos) / len(pos)
    return total / ql.shape[0]


def orthohash_map(db_codes, db_labels, test_codes, test_labels, R):
    """OrthoHash calculate_mAP with a stable top-R: labels with 0 → −1 so 'equal somewhere' means a shared
    positive label; AP = Σ P(i)·match(i) / matches in the top R, 0 when none; mean over every query."""
    nbit = db_codes.shape[1]
    dist = 0.5 * (nbit - test_codes @ db_codes.T)
    aps = []
    for i in range(dist.shape[0]):
        label = test_labels[i].copy()
        label[label == 0] = -1
        idx = np.argsort(dist[i], kind="stable")[:R]
        imatch = np.sum(np.equal(db_labels[idx], label), 1) > 0
        rel = imatch.sum()
        px = np.cumsum(imatch) / np.arange(1, len(idx) + 1)
        aps.append(np.sum(px * imatch) / rel if rel else 0.0)
    return float(np.mean(aps))


def expected_ap_by_enumeration(qB, dB, rel):
    """hashviz's rule: the mean over every database order (stable sort by Hamming distance after permuting)
    of AP@all, per query; NaN for a query with no relevant item."""
    ndb = dB.shape[0]
    out = np.zeros(qB.shape[0])
    perms = list(itertools.permutations(range(ndb)))
    for i in range(qB.shape[0]):
        if not rel[i].any():
            out[i] = np.nan
            continue
        hamm = 0.5 * (dB.shape[1] - qB[i] @ dB.T)
        s = 0.0
        for perm in perms:
            perm = np.array(perm)
            r = rel[i][perm][np.argsort(hamm[perm], kind="stable")]
            pos = np.flatnonzero(r) + 1.0
            s += np.mean(np.arange(1, len(pos) + 1) / pos)
        out[i] = s / len(perms)
    return out


def _bound_ap(hamm, rel, first):
    """AP@all with relevant items first (or last) inside every tie group: a literal sort by (distance, key)."""
    key = np.where(rel, 0, 1) if first else np.where(rel, 1, 0)
    r = rel[np.lexsort((key, hamm))]
    pos = np.flatnonzero(r) + 1.0
    return np.mean(np.arange(1, len(pos) + 1) / pos)


# ---- tests ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("family, topk", [("cifar10", -1), ("coco", 5000), ("imagenet", 1000), ("", -1)])
def test_deephash_is_calc_top_map(multi, family, topk):
    qz, dz, ql, dl = _problem(seed=1, multi=multi)
    c = 5
    ref = calc_top_map(_pm1(dz), _pm1(qz), _onehot(dl, c), _onehot(ql, c), topk)
    ev = score_codes(encode(qz), encode(dz), ql, dl, protocol="deephash", family=family)
    assert ev.map == pytest.approx(ref, abs=1e-12)
    assert ev.map_k == (len(dz) - 1 if topk == -1 else len(dz)) and ev.ties == "stable"
    no_rel = int((~(_onehot(ql, c) @ _onehot(dl, c).T > 0).any(axis=1)).sum())
    assert ev.n_no_relevant == no_rel >= 2 and ev.protocol == "deephash"
    # the ties are heavy here: the order does matter
    assert ev.map_pessimistic < ev.map < ev.map_optimistic


def test_deephash_top_k_cuts_and_protocol_k_override():
    qz, dz, ql, dl = _problem(seed=2)
    c = 5
    for k in (7, 30):
        ref = calc_top_map(_pm1(dz), _pm1(qz), _onehot(dl, c), _onehot(ql, c), k)
        assert score_codes(encode(qz), encode(dz), ql, dl, protocol="deephash", protocol_k=k).map == \
            pytest.approx(ref, abs=1e-12)
        # the same depth through top_k: mAP@k under the protocol's rules
        ev = score_codes(encode(qz), encode(dz), ql, dl, protocol="deephash", top_k=k)
        assert ev.map_at_k == pytest.approx(ref, abs=1e-12) and ev.top_k == k


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("family, k", [("cifar10", 5000), ("imagenet", 1000), ("nuswide", 5000)])
def test_h2q_is_map_at_many(multi, family, k):
    qz, dz, ql, dl = _problem(seed=3, multi=multi)
    c = 5
    ref = h2q_map_at_k(qz, dz, _onehot(ql, c), _onehot(dl, c), k)
    ev = score_codes(encode(qz), encode(dz), ql, dl, protocol="h2q", family=family, q_z=qz, db_z=dz)
    assert ev.map == pytest.approx(ref, abs=1e-12) and ev.ties == "euclidean"
    for kk in (10, 25):
        ref_k = h2q_map_at_k(qz, dz, _onehot(ql, c), _onehot(dl, c), kk)
        got = score_codes(encode(qz), encode(dz), ql, dl, protocol="h2q", protocol_k=kk, q_z=qz, db_z=dz).map
        assert got == pytest.approx(ref_k, abs=1e-12)
    # ties broken by the embeddings differ from index order on these tied codes
    stable = score_codes(encode(qz), encode(dz), ql, dl, protocol="h2q", ties="stable").map
    assert stable != pytest.approx(ev.map, abs=1e-6)


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("family, R", [("cifar10", None), ("coco", 5000), ("imagenet", 1000), ("", None)])
def test_orthohash_is_calculate_map(multi, family, R):
    qz, dz, ql, dl = _problem(seed=4, multi=multi)
    c = 5
    ref = orthohash_map(_pm1(dz), _onehot(dl, c), _pm1(qz), _onehot(ql, c), len(dz) if R is None else R)
    ev = score_codes(encode(qz), encode(dz), ql, dl, protocol="orthohash", family=family)
    assert ev.map == pytest.approx(ref, abs=1e-12) and ev.map_k == len(dz)
    ref20 = orthohash_map(_pm1(dz), _onehot(dl, c), _pm1(qz), _onehot(ql, c), 20)
    assert score_codes(encode(qz), encode(dz), ql, dl, protocol="orthohash", protocol_k=20).map == \
        pytest.approx(ref20, abs=1e-12)


def test_hashviz_is_the_mean_over_every_database_order_and_leaves_out_no_relevant_queries():
    rng = np.random.default_rng(5)
    qz, dz = rng.standard_normal((6, 3)), rng.standard_normal((7, 3))   # 3 bits, 7 items: 5040 orders
    ql, dl = np.array([3, 0, 1, 2, 0, 1]), rng.integers(0, 3, 7)
    rel = ql[:, None] == dl[None, :]
    ap = expected_ap_by_enumeration(_pm1(qz), _pm1(dz), rel)
    ev = score_codes(encode(qz), encode(dz), ql, dl, protocol="hashviz")
    assert ev.n_no_relevant == 1 + int((~rel[1:].any(axis=1)).sum())
    assert ev.map == pytest.approx(np.nanmean(ap), abs=1e-12) and ev.map_k == 7
    np.testing.assert_allclose(ev.average_precisions, ap, atol=1e-12)     # NaN where left out
    hamm = [0.5 * (3 - _pm1(qz)[i] @ _pm1(dz).T) for i in range(6)]
    keep = [i for i in range(6) if rel[i].any()]
    first = np.mean([_bound_ap(hamm[i], rel[i], True) for i in keep])
    last = np.mean([_bound_ap(hamm[i], rel[i], False) for i in keep])
    assert ev.map_optimistic == pytest.approx(first, abs=1e-12)
    assert ev.map_pessimistic == pytest.approx(last, abs=1e-12)
    # the published evaluators count the same query as 0 instead
    zero = score_codes(encode(qz), encode(dz), ql, dl, protocol="orthohash")
    assert zero.n_no_relevant == ev.n_no_relevant and np.all(zero.average_precisions[~rel.any(axis=1)] == 0)


def test_every_protocol_at_once_equals_each_alone():
    qz, dz, ql, dl = _problem(seed=6, multi=True)
    both = score_protocols(encode(qz), encode(dz), ql, dl, "all", q_z=qz, db_z=dz, top_k=20)
    assert [e.protocol for e in both] == list(PROTOCOL_NAMES)
    for e in both:
        alone = score_codes(encode(qz), encode(dz), ql, dl, protocol=e.protocol, q_z=qz, db_z=dz, top_k=20)
        for f in ("map", "map_k", "map_optimistic", "map_pessimistic", "map_at_k", "p_at_k", "p_within_radius",
                  "n_no_relevant"):
            assert getattr(e, f) == pytest.approx(getattr(alone, f), abs=1e-12), (e.protocol, f)
    assert len({round(e.map, 9) for e in both}) > 1          # the protocols disagree on these codes


def test_labels_name_the_protocol_and_records_round_trip():
    qz, dz, ql, dl = _problem(seed=7)
    ev = score_codes(encode(qz), encode(dz), ql, dl, protocol="deephash")
    assert ev.map_label == "mAP@69 (deephash)"
    assert score_codes(encode(qz), encode(dz), ql, dl).map_label == "mAP@all (hashviz)"
    assert score_codes(encode(qz), encode(dz), ql, dl, ties="stable").map_label == "mAP@all (hashviz, ties stable)"
    d = ev.to_dict()
    assert "average_precisions" not in d and d["map_label"] == ev.map_label and d["protocol"] == "deephash"
    back = Evaluation.from_dict(d)
    assert back == ev and Evaluation.from_dict({"map": None, "quantizer": "sign"}).map != 0.5  # NaN, not an error


def test_families_protocol_k_and_errors():
    assert dataset_family("mnist5k") == "cifar10" and dataset_family("cifar10") == "cifar10"
    assert dataset_family("embeddings") == "" and dataset_family("nope") == ""
    assert get_protocol("deephash").resolve_k(100, "nuswide") == 100          # 5000 clipped to the database
    assert get_protocol("deephash").resolve_k(10000, "coco") == 5000
    assert get_protocol("h2q").resolve_k(10000, "imagenet") == 1000
    assert get_protocol("h2q").resolve_k(10000, "") == 5000
    assert parse_protocol_k("-1") == "all_but_last" and parse_protocol_k("all") == "all"
    assert parse_protocol_k(" 250 ") == 250
    for bad in ("0", "x", 0, -2, 2.5, True):
        with pytest.raises(InvalidInputError, match="protocol k"):
            parse_protocol_k(bad)
    with pytest.raises(InvalidInputError, match="unknown protocol 'nope'") as e:
        get_protocol("nope")
    assert "deephash" in e.value.hint
    qz, dz, ql, dl = _problem()
    with pytest.raises(InvalidInputError, match="continuous embeddings") as e:
        score_codes(encode(qz), encode(dz), ql, dl, protocol="h2q")
    assert "q_z" in e.value.hint
