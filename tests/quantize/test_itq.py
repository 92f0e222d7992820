"""ITQ: Procrustes orientation, monotone objective, objective values against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hashviz.quantize import ITQQuantizer, SignQuantizer
from hashviz.quantize.base import random_orthogonal, sphere_rows


def brute_objective(V, R):
    Z = V.astype(np.float64) @ R
    return float(np.mean((np.where(Z >= 0, 1.0, -1.0) - Z) ** 2))


def test_each_iteration_does_not_raise_the_quantization_error(labelled):
    X, _ = labelled
    q = ITQQuantizer(16, n_iter=30, random_state=4)
    it = q.fit_steps(X)
    V = sphere_rows(X)
    prev = brute_objective(V, q.rotation_)                   # the random start
    for s in it:
        now = brute_objective(V, q.rotation_)
        assert s.loss == pytest.approx(now, rel=1e-5, abs=1e-7)
        assert s.quantization_error == s.loss
        assert s.terms["before"] == pytest.approx(prev, rel=1e-5, abs=1e-7)
        # B-step then R-step: before >= procrustes >= loss
        assert s.terms["before"] + 1e-7 >= s.terms["procrustes"] >= s.loss - 1e-7
        assert now <= prev + 1e-7
        prev = now


def test_procrustes_update_orientation(labelled):
    """R = U W^T from svd(V^T B) beats every other orthogonal matrix tried, the transposed update included."""
    X, _ = labelled
    V = sphere_rows(X).astype(np.float64)
    rng = np.random.default_rng(0)
    R0 = random_orthogonal(16, rng)
    B = np.where(V @ R0 >= 0, 1.0, -1.0)
    U, _, Wt = np.linalg.svd(V.T @ B)
    best = U @ Wt

    def cost(R):
        return float(np.sum((B - V @ R) ** 2))

    assert cost(best) < cost(best.T) - 1e-6
    assert cost(best) <= cost(R0)
    for _ in range(200):
        assert cost(best) <= cost(random_orthogonal(16, rng)) + 1e-9
    # the quantizer's first iteration performs exactly this update
    q = ITQQuantizer(16, n_iter=1, random_state=0)
    it = q.fit_steps(X)
    np.testing.assert_array_equal(q.rotation_, random_orthogonal(16, np.random.default_rng(0)))
    Bq = np.where(V @ q.rotation_ >= 0, 1.0, -1.0)
    U, _, Wt = np.linalg.svd(V.T @ Bq)
    next(it)
    np.testing.assert_allclose(q.rotation_, U @ Wt, atol=1e-4)


def test_itq_improves_on_sign_and_counts_iterations(labelled):
    X, _ = labelled
    q = ITQQuantizer(16).fit(X)
    assert q.n_iter_ == 50
    assert q.quantization_error_ < SignQuantizer(16).fit(X).quantization_error_
    losses = [s.loss for s in ITQQuantizer(16, n_iter=20).fit_steps(X)]
    assert all(b <= a + 1e-7 for a, b in itertools.pairwise(losses))


def test_center_option(labelled):
    X, _ = labelled
    shifted = X + 3.0
    q = ITQQuantizer(16, n_iter=5, center=True).fit(shifted)
    np.testing.assert_allclose(q.mean_, shifted.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(q.transform(shifted), (shifted - q.mean_) @ q.rotation_, atol=1e-4)
    assert not ITQQuantizer(16, n_iter=5).fit(shifted).mean_.any()


def test_preprocess_none_objective(labelled):
    X, _ = labelled
    q = ITQQuantizer(16, n_iter=5, preprocess="none")
    steps = list(q.fit_steps(2 * X))
    assert steps[-1].loss == pytest.approx(brute_objective(2 * X, q.rotation_), rel=1e-5)
    assert steps[-1].quantization_error == pytest.approx(brute_objective(sphere_rows(X), q.rotation_), rel=1e-5)
