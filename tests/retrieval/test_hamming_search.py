"""Packed codes, popcount, Hamming distances and top-k search against bin().count and stable argsort."""

import numpy as np
import pytest

from hashviz.codes import hamming_distances, pack_bits, popcount, unpack_bits
from hashviz.errors import InvalidInputError
from hashviz.retrieval.search import distance_counts, top_k
from tests.retrieval._reference import hamming_bits, popcount_bin

N_BITS = [1, 7, 8, 13, 64, 65, 128, 1024]


def _bits(rng, n, n_bits, p=0.5):
    return rng.random((n, n_bits)) < p


@pytest.mark.parametrize("n_bits", N_BITS)
def test_hamming_distances_match_bin_count(n_bits):
    rng = np.random.default_rng(n_bits)
    qb, db = _bits(rng, 6, n_bits), _bits(rng, 9, n_bits)
    qc, dc = pack_bits(qb), pack_bits(db)
    assert qc.shape == (6, (n_bits + 7) // 8)
    assert (unpack_bits(qc, n_bits) == qb).all()
    d = hamming_distances(qc, dc)
    brute = np.array([[popcount_bin(a, b) for b in dc] for a in qc])
    assert (d == brute).all()
    assert (d == hamming_bits(qb, db)).all()
    assert d.max() <= n_bits


@pytest.mark.parametrize("n_bits", N_BITS)
def test_popcount_matches_bin_count(n_bits):
    rng = np.random.default_rng(100 + n_bits)
    words = rng.integers(0, 2**63, size=50, dtype=np.uint64) | (np.uint64(1) << np.uint64(63))
    assert [int(c) for c in popcount(words)] == [bin(int(w)).count("1") for w in words]
    codes = pack_bits(_bits(rng, 4, n_bits))
    assert (popcount(codes).sum(1) == [sum(bin(int(x)).count("1") for x in row) for row in codes]).all()


def test_hamming_distances_chunked_equals_unchunked():
    rng = np.random.default_rng(3)
    qc, dc = pack_bits(_bits(rng, 40, 65)), pack_bits(_bits(rng, 70, 65))
    assert (hamming_distances(qc, dc, chunk_bytes=64) == hamming_distances(qc, dc)).all()
    qc, dc = pack_bits(_bits(rng, 40, 20)), pack_bits(_bits(rng, 70, 20))
    assert (hamming_distances(qc, dc, chunk_bytes=8) == hamming_bits(unpack_bits(qc, 20), unpack_bits(dc, 20))).all()


@pytest.mark.parametrize("n_bits", N_BITS)
def test_top_k_is_stable_argsort(n_bits):
    rng = np.random.default_rng(7 + n_bits)
    # few distinct codes -> many ties, so the tie order is really tested
    base = _bits(rng, 4, n_bits)
    db = base[rng.integers(0, 4, 60)] ^ _bits(rng, 60, n_bits, p=0.02)
    qb = base[rng.integers(0, 4, 5)]
    qc, dc = pack_bits(qb), pack_bits(db)
    d = hamming_bits(qb, db)
    for k in (1, 7, 60):
        idx, dist = top_k(qc, dc, k)
        ref = np.argsort(d, axis=1, kind="stable")[:, :k]
        assert idx.dtype == np.int64 and idx.shape == (5, k)
        assert (idx == ref).all()
        assert (dist == np.take_along_axis(d, ref, axis=1)).all()


def test_top_k_clips_k_to_database():
    rng = np.random.default_rng(0)
    qc, dc = pack_bits(_bits(rng, 3, 16)), pack_bits(_bits(rng, 5, 16))
    idx, dist = top_k(qc, dc, 1000)
    assert idx.shape == (3, 5) and dist.shape == (3, 5)
    assert (np.sort(idx, axis=1) == np.arange(5)).all()
    assert (np.diff(dist.astype(int), axis=1) >= 0).all()


def test_top_k_many_queries_threads_agree_with_reference():
    # large enough to be split over threads
    rng = np.random.default_rng(5)
    qb, db = _bits(rng, 300, 24, 0.5), _bits(rng, 20000, 24, 0.5)
    idx, dist = top_k(pack_bits(qb), pack_bits(db), 10)
    d = hamming_distances(pack_bits(qb), pack_bits(db))
    ref = np.argsort(d, axis=1, kind="stable")[:, :10]
    assert (idx == ref).all()


def test_distance_counts_match_brute_force():
    rng = np.random.default_rng(11)
    qb, db = _bits(rng, 7, 13), _bits(rng, 30, 13)
    ql, dl = rng.integers(0, 3, 7), rng.integers(0, 3, 30)
    c = distance_counts(pack_bits(qb), pack_bits(db), ql, dl)
    d = hamming_bits(qb, db)
    assert c.shape == (7, 2, 17)
    for i in range(7):
        for r in range(17):
            assert c[i, 0, r] == (d[i] == r).sum()
            assert c[i, 1, r] == ((d[i] == r) & (dl == ql[i])).sum()


def test_bad_codes_raise():
    rng = np.random.default_rng(0)
    a, b = pack_bits(_bits(rng, 3, 16)), pack_bits(_bits(rng, 4, 24))
    with pytest.raises(InvalidInputError, match="bytes"):
        top_k(a, b, 2)
    with pytest.raises(InvalidInputError, match="bytes"):
        hamming_distances(a, b)
    with pytest.raises(InvalidInputError, match="uint8"):
        top_k(a.astype(np.int64), a, 2)
    with pytest.raises(InvalidInputError, match="positive"):
        top_k(a, a, 0)
    with pytest.raises(InvalidInputError, match="empty"):
        top_k(a, a[:0], 1)
