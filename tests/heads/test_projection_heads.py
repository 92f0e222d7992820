"""Training-free heads (pca, lsh): the projection against a brute-force definition, no optimiser steps, and a
stored head + embeddings from prepare like any other head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashviz.errors import InvalidInputError
from hashviz.heads.losses import get_method, list_methods, method_options
from hashviz.heads.train import fit_head_steps, load_head


@pytest.fixture(scope="module")
def features():
    """300 rows × 40 features with a planted 8-dimensional structure plus noise; 3 classes."""
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((40, 8)))[0].T
    scales = np.array([12.0, 10.0, 9.0, 7.0, 5.0, 4.0, 3.0, 2.0])
    x = (rng.standard_normal((300, 8)) * scales) @ basis + 0.3 * rng.standard_normal((300, 40)) + 5.0
    return x.astype(np.float32), rng.integers(0, 3, 300), basis


def test_registered_training_free_with_their_options():
    assert {"pca", "lsh"} <= set(list_methods())
    assert not get_method("pca").trainable and not get_method("lsh").trainable and get_method("cel").trainable
    assert method_options("pca") == {"whiten": False} and method_options("lsh") == {}
    assert get_method("pca").quantization_option is None


def test_pca_is_the_top_principal_directions(features):
    x, y, basis = features
    run = fit_head_steps(x, y, method="pca", n_bits=8, seed=0, epochs=99, hidden=(64,))  # settings ignored
    assert list(run) == [] and run.total_steps == 0
    res = run.result()
    assert res.completed and res.curve == [] and res.head.hidden == () and res.settings["trainable"] is False
    z = res.embed(x)
    # brute force: eigenvectors of the sample covariance, largest eigenvalues first
    xc = x.astype(np.float64) - x.mean(axis=0, dtype=np.float64)
    evals, evecs = np.linalg.eigh(xc.T @ xc / (len(x) - 1))
    top = evecs[:, ::-1][:, :8]
    want = xc @ top
    for k in range(8):                      # equal up to each direction's sign
        sign = np.sign(want[:, k] @ z[:, k])
        np.testing.assert_allclose(z[:, k], sign * want[:, k], rtol=1e-3, atol=1e-3)
        w = res.head.net[0].weight.detach().numpy()[k]
        assert w[np.abs(w).argmax()] > 0    # the documented sign rule
    np.testing.assert_allclose(z.var(axis=0, ddof=1), evals[::-1][:8], rtol=1e-3)
    ratio = res.extra()["explained_variance_ratio"]
    assert ratio == pytest.approx(evals[::-1][:8].sum() / evals.sum(), rel=1e-6) and ratio > 0.9
    # the planted subspace is recovered: the head's rows lie in it
    w = res.head.net[0].weight.detach().double().numpy()
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    assert np.linalg.norm(w @ basis.T, axis=1) == pytest.approx(np.ones(8), abs=0.01)


def test_pca_whiten_gives_unit_variance_and_the_same_signs(features):
    x, y, _ = features
    plain = fit_head_steps(x, y, method="pca", n_bits=8).result().embed(x)
    white = fit_head_steps(x, y, method="pca", n_bits=8, options={"whiten": True}).result().embed(x)
    np.testing.assert_allclose(white.var(axis=0, ddof=1), np.ones(8), rtol=1e-3)
    np.testing.assert_array_equal(plain >= 0, white >= 0)


def test_pca_needs_enough_directions(features):
    x, y, _ = features
    with pytest.raises(InvalidInputError, match="40 columns") as e:
        fit_head_steps(x, y, method="pca", n_bits=64)
    assert "lsh" in e.value.hint
    with pytest.raises(InvalidInputError, match="whiten"):
        fit_head_steps(x, y, method="pca", n_bits=8, options={"whiten": "yes"})


def test_lsh_is_a_seeded_gaussian_projection_of_centred_features(features):
    x, y, _ = features
    a = fit_head_steps(x, y, method="lsh", n_bits=64, seed=3).result()
    b = fit_head_steps(x, y, method="lsh", n_bits=64, seed=3).result()
    c = fit_head_steps(x, y, method="lsh", n_bits=64, seed=4).result()
    wa = a.head.net[0].weight.detach().numpy()
    np.testing.assert_array_equal(wa, b.head.net[0].weight.detach().numpy())
    assert not np.allclose(wa, c.head.net[0].weight.detach().numpy())
    assert abs(wa.mean()) < 4 / np.sqrt(wa.size) and wa.std() == pytest.approx(1.0, abs=0.05)
    xc = x.astype(np.float64) - x.mean(axis=0, dtype=np.float64)
    np.testing.assert_allclose(a.embed(x), xc @ wa.T.astype(np.float64), rtol=1e-4, atol=1e-3)
    assert np.abs(a.embed(x).mean(axis=0)).max() < 1e-3 * np.abs(a.embed(x)).mean()   # centred on the train mean


def test_saved_projection_head_loads_back(features):
    x, y, _ = features
    res = fit_head_steps(x, y, method="pca", n_bits=8).result()
    head, loss = load_head(res.state_dict(), head_config=res.head.config(), method="pca", n_classes=3)
    with torch.no_grad():
        again = loss.embed(head(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(again, res.embed(x), rtol=1e-6, atol=1e-6)
    with pytest.raises(InvalidInputError, match="training-free"):
        loss(torch.zeros(2, 8), torch.zeros(2, 3), torch.arange(2))


@pytest.mark.slow
def test_prepare_stores_a_training_free_head_and_ignores_training_settings(tmp_path):
    from hashviz.pipeline import prepare
    from hashviz.store import RunStore

    store = RunStore(tmp_path)
    seen = []
    a = prepare("digits", "mnist_cnn", "pca", (16,), store=store, quantizers=("sign", "rr"),
                head_options={"epochs": 3}, progress=lambda s, d, n: seen.append(s))
    b = prepare("digits", "mnist_cnn", "pca", (16,), store=store, quantizers=("sign", "rr"),
                head_options={"epochs": 7, "hidden": (32,)})
    assert b.cached and b.key == a.key            # the training settings do not enter a training-free key
    entry = store.get_key("heads", a.run(16).head_key)
    assert entry.extra["final_loss"] is None and entry.extra["train_seconds"] >= 0
    assert entry.config["epochs"] == 0 and list(entry.config["hidden"]) == []
    assert 0 < a.run(16).map["sign"] < a.run(16).map["rr"] <= 1   # PCA-RR beats PCA-direct here
    assert "quantizers" in seen
