"""HQ: the Householder product, closed-form gradients, step 0 = sign, planted problem, losses, schedules."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from hashviz.codes import hamming_distances, unpack_bits
from hashviz.errors import InvalidInputError
from hashviz.quantize import HouseholderQuantizer, ITQQuantizer, SignQuantizer
from hashviz.quantize import objectives as ob
from hashviz.quantize.base import quantization_error
from hashviz.quantize.householder import householder_rotation
from hashviz.retrieval.metrics import mean_average_precision


def brute_product(V: np.ndarray) -> np.ndarray:
    """H_1 H_2 ... H_n by the definition."""
    n = V.shape[0]
    R = np.eye(n)
    for i in range(V.shape[1]):
        v = V[:, i]
        R = R @ (np.eye(n) - 2 * np.outer(v, v) / (v @ v))
    return R


def test_householder_product_matches_definition():
    rng = np.random.default_rng(0)
    for V in (np.eye(6), np.eye(7) + 0.5 * rng.standard_normal((7, 7)), rng.standard_normal((5, 5))):
        R = brute_product(V)
        np.testing.assert_allclose(ob.householder_product(torch.from_numpy(V)).numpy(), R, atol=1e-12)
        np.testing.assert_allclose(ob.householder_product_sequential(torch.from_numpy(V)).numpy(), R, atol=1e-12)
        np.testing.assert_allclose(householder_rotation(V), R, atol=1e-12)
    np.testing.assert_array_equal(ob.householder_product(torch.eye(4)).numpy(), -np.eye(4))


@pytest.mark.parametrize("loss", list(ob.LOSSES))
def test_closed_form_gradients_match_autograd(loss):
    g = torch.Generator().manual_seed(1)
    d = 9
    V = (torch.eye(d, dtype=torch.float64) + 0.4 * torch.randn(d, d, generator=g, dtype=torch.float64))
    X = torch.randn(40, d, generator=g, dtype=torch.float64)
    Va = V.clone().requires_grad_(True)
    L = ob.LOSSES[loss](X @ ob.householder_product(Va))
    (auto,) = torch.autograd.grad(L, Va)
    R, cache = ob.householder_forward(V)
    value, G_Z = ob.loss_and_grad(loss, X @ R)
    closed = ob.householder_vjp(V, cache, X.T @ G_Z)
    L = float(L.detach())
    assert float(value) == pytest.approx(L, rel=1e-12)
    np.testing.assert_allclose(closed.numpy(), auto.numpy(), atol=1e-12)
    if loss == "l2":
        value2, G_R = ob.l2_full_batch(R, X, X.T @ X, float(X.square().sum()))
        assert value2 == pytest.approx(L, rel=1e-10)
        np.testing.assert_allclose(G_R.numpy(), (X.T @ G_Z).numpy(), atol=1e-12)
        # the smoothed l2 of the default schedule: closed-form gradients against autograd, exact l2 reported
        for tau in (0.05, 0.7):
            Ra = ob.householder_product(Va)
            (auto_s,) = torch.autograd.grad(ob.smoothed_l2(X @ Ra, tau), Va)
            value3, G_R3 = ob.l2_full_batch(R, X, X.T @ X, float(X.square().sum()), tau=tau)
            assert value3 == pytest.approx(L, rel=1e-10)
            np.testing.assert_allclose(ob.householder_vjp(V, cache, G_R3).numpy(), auto_s.numpy(), atol=1e-12)
            G_Zs = ob.smoothed_l2_grad(X @ R, tau)
            np.testing.assert_allclose((X.T @ G_Zs).numpy(), G_R3.numpy(), atol=1e-12)


def test_losses_by_definition():
    Z = torch.tensor([[0.5, -2.0], [0.0, 1.0]], dtype=torch.float64)
    s = np.array([[1, -1], [1, 1]])
    z = Z.numpy()
    assert float(ob.l2(Z)) == pytest.approx(np.mean((z - s) ** 2))
    assert float(ob.l1(Z)) == pytest.approx(np.mean(np.abs(z - s)))
    sig = 1 / (1 + np.exp(-z))
    assert float(ob.bit_var(Z)) == pytest.approx(np.mean(sig * (1 - sig)))
    assert float(ob.min_entry(Z)) == pytest.approx(np.mean(np.log(np.exp(-z ** 2).sum(axis=1))))


def test_step_zero_is_minus_identity_and_sign_equivalent(labelled):
    X, y = labelled
    hq = HouseholderQuantizer(16, steps=0).fit(X)
    np.testing.assert_array_equal(hq.rotation_, -np.eye(16))
    np.testing.assert_array_equal(hq.householder_vectors_, np.eye(16))
    sign = SignQuantizer(16).fit(X)
    # every bit flipped ...
    np.testing.assert_array_equal(unpack_bits(hq.encode(X), 16), ~unpack_bits(sign.encode(X), 16))
    # ... so every Hamming distance and the mAP are the sign quantizer's
    c_hq, c_sign = hq.encode(X), sign.encode(X)
    np.testing.assert_array_equal(hamming_distances(c_hq, c_hq), hamming_distances(c_sign, c_sign))
    q, d = slice(0, 300, 5), np.setdiff1d(np.arange(300), np.arange(0, 300, 5))
    assert mean_average_precision(c_hq[q], c_hq[d], y[q], y[d]) == mean_average_precision(
        c_sign[q], c_sign[d], y[q], y[d])


@pytest.mark.parametrize("make", [lambda: HouseholderQuantizer(16), lambda: ITQQuantizer(16)], ids=["hq", "itq"])
def test_planted_rotation_is_recovered(planted, make):
    X, Xc, C, _ = planted
    sign_qe = SignQuantizer(16).fit(X).quantization_error_
    q = make().fit(X)
    assert q.quantization_error_ < 0.1 * sign_qe
    assert quantization_error(q.transform(X)) == pytest.approx(q.quantization_error_, rel=1e-4)
    # the noise-free corners get back their pairwise Hamming distances exactly
    codes, truth = q.encode(Xc), np.packbits(C > 0, axis=1)
    np.testing.assert_array_equal(hamming_distances(codes, codes), hamming_distances(truth, truth))
    # and R undoes Q up to a signed permutation
    P = planted[3] @ q.rotation_
    np.testing.assert_allclose(np.abs(P).max(axis=1), 1, atol=0.05)


@pytest.mark.parametrize("loss", ["l2", "l1", "bit_var", "min_entry"])
def test_every_loss_decreases_on_the_planted_problem(planted, loss):
    X = planted[0]
    q = HouseholderQuantizer(16, loss=loss, steps=60)
    steps = list(q.fit_steps(X))
    assert len(steps) == 60
    start = float(ob.LOSSES[loss](-torch.from_numpy(_sphere(X))))           # R = -I on sphere rows
    assert steps[-1].loss < start - 1e-3
    assert steps[-1].quantization_error < 0.5 * quantization_error(X)


def _sphere(X):
    return (X / np.linalg.norm(X, axis=1, keepdims=True) * 4).astype(np.float32)


def test_l2_loss_is_the_quantization_error(labelled):
    X, _ = labelled
    q = HouseholderQuantizer(16, steps=20)
    steps = list(q.fit_steps(X))
    for s in steps:
        assert s.loss == pytest.approx(s.quantization_error)
    assert steps[-1].quantization_error == pytest.approx(quantization_error(q.transform(X)), rel=1e-5)
    # the full-batch default decreases the loss at every step early on, and overall
    assert steps[-1].loss < steps[0].loss
    assert q.schedule_ == {"optimizer": "adam", "batch": 300, "lr": 0.01, "steps": 20}
    # the l2 steps follow a smoothed l2 whose width tau is annealed geometrically from 2 to 0.01
    taus = [s.terms["tau"] for s in steps]
    assert taus[0] == pytest.approx(2.0) and taus[-1] == pytest.approx(0.01)     # tau of the update made
    assert all(b < a for a, b in itertools.pairwise(taus))


def test_paper_schedule_runs(planted):
    X = planted[0]
    q = HouseholderQuantizer(16, schedule="paper", epochs=3)
    steps = list(q.fit_steps(X))
    assert len(steps) == 3 * 4                                 # 400 rows, batch 128 -> 4 batches per epoch
    assert q.schedule_ == {"optimizer": "sgd", "batch": 128, "lr": 0.1, "steps": 12}
    assert steps[-1].epoch == pytest.approx(3.0)
    assert [s.epoch for s in steps[:4]] == pytest.approx([128 / 400, 256 / 400, 384 / 400, 1.0])
    assert all(s.terms["lr"] == 0.1 for s in steps)
    assert HouseholderQuantizer(16, schedule="paper", loss="bit_var", steps=1).fit(X).schedule_["lr"] == 0.01
    R = q.rotation_
    assert np.abs(R.T @ R - np.eye(16)).max() < 1e-10
    assert steps[-1].loss < quantization_error(X)


def test_paper_sgd_step_by_hand():
    """One paper step is plain SGD on the v_i: V <- V - lr dL/dV (the gradient by autograd here)."""
    X = np.random.default_rng(4).standard_normal((10, 6)).astype(np.float32)
    q = HouseholderQuantizer(6, schedule="paper", batch_size=10, steps=1, loss="l1").fit(X)
    V = torch.eye(6).requires_grad_(True)
    Xs = torch.from_numpy(_sphere6(X))
    (grad,) = torch.autograd.grad(ob.l1(Xs @ ob.householder_product(V)), V)
    np.testing.assert_allclose(q.householder_vectors_, (V - 0.1 * grad).detach().numpy(), atol=1e-6)


def _sphere6(X):
    return (X / np.linalg.norm(X, axis=1, keepdims=True) * np.sqrt(6)).astype(np.float32)


def test_rotation_stays_orthogonal_over_many_steps(labelled):
    X, _ = labelled
    q = HouseholderQuantizer(16, lr=0.2, steps=40)                # large steps move the v_i far
    for _ in q.fit_steps(X):
        R = q.rotation_
        assert np.abs(R.T @ R - np.eye(16)).max() < 1e-10
    np.testing.assert_allclose(q.rotation_, brute_product(q.householder_vectors_), atol=1e-10)


def test_option_errors(labelled):
    X, _ = labelled
    cases = [({"loss": "l3"}, "valid losses: l2, l1, bit_var, min_entry"),
             ({"schedule": "slow"}, "valid schedules"),
             ({"epochs": 2, "steps": 3}, "not both"),
             ({"lr": 0.0}, "lr must be a positive"),
             ({"batch_size": 0}, "batch_size"),
             ({"steps": -1}, "steps must be a non-negative"),
             ({"preprocess": "unit"}, "preprocess")]
    for options, message in cases:
        with pytest.raises(InvalidInputError) as err:
            HouseholderQuantizer(16, **options).fit(X)
        assert message in str(err.value)


def test_preprocess_none_reports_rescaled_quantization_error(labelled):
    X, _ = labelled
    q = HouseholderQuantizer(16, preprocess="none", steps=10)
    steps = list(q.fit_steps(2 * X))
    assert steps[-1].quantization_error == pytest.approx(quantization_error(q.transform(X)), rel=1e-5)
    assert steps[-1].loss != pytest.approx(steps[-1].quantization_error)


def test_minibatch_default_schedule_is_seeded(labelled):
    X, _ = labelled
    a = HouseholderQuantizer(16, batch_size=64, steps=10, random_state=5).fit(X).rotation_
    b = HouseholderQuantizer(16, batch_size=64, steps=10, random_state=5).fit(X).rotation_
    c = HouseholderQuantizer(16, batch_size=64, steps=10, random_state=6).fit(X).rotation_
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert all(np.isfinite(x) for x in itertools.chain.from_iterable(a))
