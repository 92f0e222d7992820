"""PR by radius, P@r<=2, relevance, quantization error, bit balance and correlation against brute force."""

import numpy as np
import pytest

from hashviz.codes import pack_bits
from hashviz.errors import InvalidInputError
from hashviz.retrieval.metrics import (
    bit_balance,
    bit_correlation,
    precision_recall_by_radius,
    precision_within_radius,
    quantization_error,
)
from hashviz.retrieval.relevance import iter_relevance, relevance
from tests.retrieval._reference import hamming_bits, relevance_brute


def _problem(seed=0, nq=9, ndb=50, n_bits=13, multi=False):
    rng = np.random.default_rng(seed)
    qb, db = rng.random((nq, n_bits)) < 0.5, rng.random((ndb, n_bits)) < 0.5
    if multi:
        return qb, db, rng.random((nq, 4)) < 0.3, rng.random((ndb, 4)) < 0.3
    return qb, db, rng.integers(0, 3, nq), rng.integers(0, 3, ndb)


def _brute_pr(qb, db, ql, dl, n_bits):
    d, rel = hamming_bits(qb, db), relevance_brute(ql, dl)
    prec, rec = np.zeros(n_bits + 1), np.zeros(n_bits + 1)
    for r in range(n_bits + 1):
        ps, rs = [], []
        for i in range(len(qb)):
            got = d[i] <= r
            hits = (got & rel[i]).sum()
            ps.append(hits / got.sum() if got.sum() else 0.0)
            if rel[i].sum():
                rs.append(hits / rel[i].sum())
        prec[r], rec[r] = np.mean(ps), np.mean(rs)
    return prec, rec


@pytest.mark.parametrize("multi", [False, True])
def test_pr_by_radius_matches_brute_force(multi):
    qb, db, ql, dl = _problem(1, multi=multi)
    prec, rec = precision_recall_by_radius(pack_bits(qb), pack_bits(db), ql, dl, n_bits=13)
    bp, br = _brute_pr(qb, db, ql, dl, 13)
    assert prec.shape == rec.shape == (14,)
    assert np.allclose(prec, bp, atol=1e-12) and np.allclose(rec, br, atol=1e-12)
    assert rec[-1] == pytest.approx(1.0) and np.all(np.diff(rec) >= -1e-15)
    # default n_bits = 8 x bytes: the same curve, padded with the last value
    p16, r16 = precision_recall_by_radius(pack_bits(qb), pack_bits(db), ql, dl)
    assert p16.shape == (17,) and np.allclose(p16[:14], prec) and np.allclose(p16[14:], prec[-1])


def test_pr_micro_average():
    qb, db, ql, dl = _problem(2)
    prec, rec = precision_recall_by_radius(pack_bits(qb), pack_bits(db), ql, dl, n_bits=13, average="micro")
    d, rel = hamming_bits(qb, db), relevance_brute(ql, dl)
    for r in (0, 3, 6, 13):
        got = d <= r
        assert prec[r] == pytest.approx((got & rel).sum() / got.sum() if got.sum() else 0.0)
        assert rec[r] == pytest.approx((got & rel).sum() / rel.sum())
    with pytest.raises(InvalidInputError, match="average"):
        precision_recall_by_radius(pack_bits(qb), pack_bits(db), ql, dl, average="weighted")


def test_precision_within_radius_brute_force_and_empty_balls():
    qb, db, ql, dl = _problem(3, n_bits=16)
    qc, dc = pack_bits(qb), pack_bits(db)
    d, rel = hamming_bits(qb, db), relevance_brute(ql, dl)
    for radius in (0, 1, 2, 5, 16, 40):
        ps = [((d[i] <= radius) & rel[i]).sum() / (d[i] <= radius).sum() if (d[i] <= radius).any() else 0.0
              for i in range(len(qb))]
        assert precision_within_radius(qc, dc, ql, dl, radius=radius) == pytest.approx(np.mean(ps))
    assert precision_within_radius(qc, dc, ql, dl) == pytest.approx(
        precision_recall_by_radius(qc, dc, ql, dl)[0][2])
    # nothing within radius 2 of an all-ones query when the database is all zeros -> 0, not NaN
    q1, d0 = pack_bits(np.ones((2, 16), bool)), pack_bits(np.zeros((4, 16), bool))
    assert precision_within_radius(q1, d0, np.array([0, 0]), np.zeros(4, int), radius=2) == 0.0
    with pytest.raises(InvalidInputError, match="radius"):
        precision_within_radius(qc, dc, ql, dl, radius=-1)


def test_n_bits_checks():
    qb, db, ql, dl = _problem(4)
    qc, dc = pack_bits(qb), pack_bits(db)
    with pytest.raises(InvalidInputError, match="n_bits"):
        precision_recall_by_radius(qc, dc, ql, dl, n_bits=20)
    with pytest.raises(InvalidInputError, match="padding"):
        precision_recall_by_radius(~dc[:2], dc, ql[:2], dl, n_bits=13)   # ~ sets the 3 padding bits


@pytest.mark.parametrize("multi", [False, True])
def test_relevance_matches_brute_force(multi):
    _, _, ql, dl = _problem(5, multi=multi)
    ref = relevance_brute(ql, dl)
    assert (relevance(ql, dl) == ref).all()
    blocks = list(iter_relevance(ql, dl, block_bytes=1))
    assert len(blocks) == len(ql)
    assert (np.concatenate([b for _, b in blocks]) == ref).all()
    # multi-hot given as 0/1 ints and single labels given as whole floats are accepted
    if multi:
        assert (relevance(ql.astype(np.int8), dl.astype(float)) == ref).all()
    else:
        assert (relevance(ql.astype(float), dl) == ref).all()


def test_relevance_bad_labels():
    with pytest.raises(InvalidInputError, match="multi-hot"):
        relevance(np.array([[0, 2]]), np.array([[1, 0]]))
    with pytest.raises(InvalidInputError):
        relevance(np.array(["a", "b"], dtype=object), np.array([1]))


def test_quantization_error_definition():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((30, 8)).astype(np.float32)
    u = z / np.linalg.norm(z, axis=1, keepdims=True) * np.sqrt(8)
    assert quantization_error(z) == pytest.approx(np.mean((u - np.sign(u)) ** 2), rel=1e-6)
    assert quantization_error(z, rescale=False) == pytest.approx(np.mean((np.abs(z) - 1) ** 2), rel=1e-6)
    # corners of the hypercube, at any scale, have zero error; a zero row counts 1 per entry
    corners = np.sign(rng.standard_normal((5, 8))) * 3.0
    assert quantization_error(corners) == pytest.approx(0.0, abs=1e-12)
    assert quantization_error(np.zeros((2, 4))) == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match="NaN"):
        quantization_error(np.array([[np.nan, 1.0]]))
    with pytest.raises(InvalidInputError, match="2-D"):
        quantization_error(np.ones(3))


def test_quantization_error_per_row_is_one_function_for_quantizers_and_metrics():
    from hashviz.quantize import base

    rng = np.random.default_rng(1)
    z = rng.standard_normal((12, 6))
    rows = quantization_error(z, axis=1)
    for i in range(len(z)):  # brute force, row by row: the definition written out
        u = z[i] / np.sqrt(np.sum(z[i] ** 2)) * np.sqrt(6)
        assert rows[i] == pytest.approx(sum((abs(v) - 1) ** 2 for v in u) / 6, rel=1e-12)
    assert rows.mean() == pytest.approx(quantization_error(z), rel=1e-12)
    assert quantization_error(z, rescale=False, axis=1) == pytest.approx(np.mean((np.abs(z) - 1) ** 2, axis=1))
    assert base.quantization_error is quantization_error  # the quantizers' curves use the same definition


def test_bit_balance_from_codes_and_bits():
    rng = np.random.default_rng(1)
    bits = rng.random((40, 13)) < np.linspace(0.05, 0.95, 13)
    ref = bits.mean(0)
    assert np.allclose(bit_balance(bits), ref)
    assert np.allclose(bit_balance(pack_bits(bits), 13), ref)
    assert np.allclose(bit_balance(np.where(bits, 1, -1)), ref)
    assert np.allclose(bit_balance(bits.astype(np.int64)), ref)
    assert bit_balance(pack_bits(bits)).shape == (16,)
    with pytest.raises(InvalidInputError):
        bit_balance(np.full((3, 4), 0.5))
    with pytest.raises(InvalidInputError, match="n_bits"):
        bit_balance(bits, 12)


def test_bit_correlation_pearson_and_constant_bits():
    rng = np.random.default_rng(2)
    bits = rng.random((200, 6)) < 0.5
    bits[:, 1] = bits[:, 0]          # perfectly correlated
    bits[:, 2] = ~bits[:, 0]         # anti-correlated
    bits[:, 5] = True                # constant
    c = bit_correlation(pack_bits(bits), 6)
    s = np.where(bits, 1.0, -1.0)
    ref = np.corrcoef(s[:, :5], rowvar=False)
    assert c.shape == (6, 6)
    assert np.allclose(c[:5, :5], ref, atol=1e-12)
    assert c[0, 1] == pytest.approx(1.0) and c[0, 2] == pytest.approx(-1.0)
    assert np.all(c[5, :5] == 0) and np.all(c[:5, 5] == 0) and c[5, 5] == 1.0
    assert np.isfinite(c).all() and np.allclose(c, c.T)
