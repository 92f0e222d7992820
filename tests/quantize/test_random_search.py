"""Random search (Pidhorskyi et al. 2018): greedy, labelled, seeded."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hashviz.codes import encode
from hashviz.errors import InvalidInputError
from hashviz.quantize import RandomSearchQuantizer, SignQuantizer
from hashviz.quantize.random_search import RandomSearchQuantizer as RS
from hashviz.retrieval.metrics import mean_average_precision


def subset_map(q, X, y, R):
    qi, di = q.search_rows_
    codes = encode(X @ R.astype(np.float32))
    return mean_average_precision(codes[qi], codes[di], y[qi], y[di], ties="expected")


def test_map_never_decreases_and_beats_sign(labelled):
    X, y = labelled
    q = RandomSearchQuantizer(16, steps=80, random_state=0)
    it = q.fit_steps(X, y)
    start = subset_map(q, X, y, np.eye(16))
    maps, accepted = [start], 0
    for s in it:
        assert s.loss == -s.terms["map"]
        assert s.terms["accepted"] in (0.0, 1.0)
        if s.terms["accepted"]:
            accepted += 1
            assert s.terms["map"] > maps[-1]               # kept only when the mAP rises
            assert s.terms["proposal_map"] == s.terms["map"]
        else:
            assert s.terms["map"] == maps[-1] and s.terms["proposal_map"] <= maps[-1]
        maps.append(s.terms["map"])
        assert abs(s.terms["angle"]) == pytest.approx((80 - s.step + 1) / 80)
    assert all(b >= a for a, b in itertools.pairwise(maps))
    assert accepted >= 1
    assert maps[-1] == pytest.approx(subset_map(q, X, y, q.rotation_))
    # on the whole labelled set too, at least as good as sign
    sign_codes, codes = SignQuantizer(16).fit(X).encode(X), q.encode(X)
    assert mean_average_precision(codes, codes, y, y) >= mean_average_precision(sign_codes, sign_codes, y, y) - 0.01
    assert maps[-1] > start


def test_labels_are_required(labelled):
    X, y = labelled
    with pytest.raises(InvalidInputError, match="needs labels: call fit"):
        RandomSearchQuantizer(16).fit(X)
    with pytest.raises(InvalidInputError, match="one label"):
        RandomSearchQuantizer(16).fit(X, y[:-1])
    with pytest.raises(InvalidInputError, match="steps"):
        RandomSearchQuantizer(16, steps=-2).fit(X, y)


def test_subsets_are_disjoint_and_bounded(labelled):
    X, y = labelled
    q = RandomSearchQuantizer(16, steps=1, n_queries=20, n_database=100).fit(X, y)
    qi, di = q.search_rows_
    assert len(qi) == 20 and len(di) == 100 and not set(qi) & set(di)
    q = RandomSearchQuantizer(16, steps=1).fit(X, y)                       # fewer rows than 2,000 + 16,000
    qi, di = q.search_rows_
    assert len(qi) == round(300 / 9) and len(qi) + len(di) == 300 and not set(qi) & set(di)


def test_multi_label(labelled):
    X, y = labelled
    Y = np.zeros((len(y), 6), dtype=bool)
    Y[np.arange(len(y)), y] = True
    Y[::7, 5] = True
    q = RandomSearchQuantizer(16, steps=10).fit(X, Y)
    assert q.map_ >= subset_map(q, X, Y, np.eye(16))


def test_plane_rotation_is_a_givens_rotation_in_a_random_plane():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    G = RS._plane_rotation(Q, 0.3)
    np.testing.assert_allclose(G.T @ G, np.eye(6), atol=1e-12)
    Givens = np.eye(6)
    Givens[:2, :2] = [[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]]
    np.testing.assert_allclose(G, Q.T @ Givens @ Q, atol=1e-12)
    # it fixes the orthogonal complement of the plane of Q's first two rows
    v = Q[2:].T @ rng.standard_normal(4)
    np.testing.assert_allclose(G @ v, v, atol=1e-12)
