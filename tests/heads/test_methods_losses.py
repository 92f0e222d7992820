"""Each head-method loss against a value computed here by a literal formula/loop in numpy (3–5 embeddings)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hashviz.errors import InvalidInputError, NotFittedError
from hashviz.heads.losses import get_loss, get_method, list_methods

H = np.array([[0.5, -1.2, 0.3, 2.0, -0.7, 0.1, 1.5, -0.4],
              [-0.3, 0.8, 1.1, -0.6, 0.2, -1.4, 0.9, 0.6],
              [1.3, -0.2, -0.9, 0.4, 1.0, 0.7, -0.5, -1.1],
              [0.2, 0.9, -0.4, -1.5, 0.6, 0.3, 0.8, 1.2]])
LAB = np.array([0, 1, 0, 2])
C = 3


def onehot(lab, c=C):
    out = np.zeros((len(lab), c))
    out[np.arange(len(lab)), lab] = 1
    return out


def t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float32)


def softplus(x):
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def test_every_method_is_registered_and_unknown_names_are_refused():
    for name in ("cel", "orthohash", "csq", "shc", "shrewd", "dpsh", "hashnet", "spherical", "pca", "lsh"):
        assert name in list_methods()
        assert get_loss(name, 16, 4).name == name
    assert get_method("SDSH").name == "spherical"
    with pytest.raises(InvalidInputError) as e:
        get_loss("orthohsh", 16, 4)
    assert "orthohash" in e.value.hint and "spherical" in e.value.hint


def test_orthohash_matches_literal_cross_entropy_single_and_multilabel():
    centers = np.array([[1, 1, 1, 1, -1, -1, -1, -1], [1, -1, 1, -1, 1, -1, 1, -1], [1, 1, -1, -1, 1, 1, -1, -1]])
    for multi in (False, True):
        y = onehot(LAB) if not multi else np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1]], float)
        loss = get_loss("orthohash", 8, C, multilabel=multi)
        loss.centers.copy_(t(centers))
        loss.train()
        value, terms = loss(t(H), t(y), torch.arange(4))
        # literal: BatchNorm in training mode (biased variance, eps 1e-5, weight 1, bias 0)
        mean, var = H.mean(0), H.var(0)
        v = (H - mean) / np.sqrt(var + 1e-5)
        s, m = math.sqrt(8), 0.2
        total = 0.0
        for i in range(4):
            logits = [s * (v[i] @ centers[c] / (np.linalg.norm(v[i]) * np.linalg.norm(centers[c])) - m * y[i, c])
                      for c in range(C)]
            lse = math.log(sum(math.exp(x) for x in logits))
            total += sum(y[i, c] / y[i].sum() * -(logits[c] - lse) for c in range(C))
        assert float(value.detach()) == pytest.approx(total / 4, rel=1e-5)
        # codebook accuracy of the batch: nearest centre (Hamming) of sign(v) is one of the item's classes
        hits = [y[i, int(np.argmax([(np.where(v[i] >= 0, 1, -1) == centers[c]).sum() for c in range(C)]))] > 0
                for i in range(4)]
        assert terms["codebook_acc"] == pytest.approx(np.mean(hits))


def test_orthohash_embed_uses_running_statistics_and_extra_reports_codebook_accuracy():
    loss = get_loss("orthohash", 8, C)
    loss.setup(t(H), t(onehot(LAB)), generator=torch.Generator().manual_seed(0))
    loss.train()
    loss(t(H), t(onehot(LAB)), torch.arange(4))
    rm, rv = loss.bn.running_mean.numpy(), loss.bn.running_var.numpy()
    loss.eval()
    z = loss.embed(t(H)).detach().numpy()
    assert np.allclose(z, (H - rm) / np.sqrt(rv + 1e-5), atol=1e-5)
    ex = loss.extra()
    assert 0.0 <= ex["codebook_accuracy"] <= 1.0 and ex["scale"] == pytest.approx(math.sqrt(8))
    assert loss.state_arrays()["centers"].shape == (C, 8)


def test_csq_matches_literal_bce_plus_quantization_and_multilabel_centres():
    centers = np.array([[1, -1, 1, -1, 1, -1, 1, -1], [1, 1, -1, -1, 1, 1, -1, -1], [-1, -1, -1, -1, 1, 1, 1, 1]])
    ties = np.array([1, -1, -1, 1, 1, 1, -1, -1])
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1], [1, 1, 1]], float)
    for quant in ("l2", "logcosh"):
        loss = get_loss("csq", 8, C, multilabel=True, lambda_q=0.5, quantization=quant)
        loss.centers.copy_(t(centers))
        loss.tie_breaker.copy_(t(ties))
        value, terms = loss(t(H), t(y), torch.arange(4))
        bce = q = 0.0
        for i in range(4):
            ssum = y[i] @ centers
            ci = np.where(ssum > 0, 1, np.where(ssum < 0, -1, ties))
            for k in range(8):
                u = math.tanh(H[i, k])
                p, tt = (u + 1) / 2, (ci[k] + 1) / 2
                bce += -(tt * math.log(p) + (1 - tt) * math.log(1 - p))
                q += (abs(u) - 1) ** 2 if quant == "l2" else math.log(math.cosh(abs(u) - 1))
        assert terms["center"] == pytest.approx(bce / 32, rel=1e-5)
        assert terms["quantization"] == pytest.approx(q / 32, rel=1e-4)
        assert float(value.detach()) == pytest.approx(bce / 32 + 0.5 * q / 32, rel=1e-5)
    assert np.allclose(get_loss("csq", 8, C).embed(t(H)).numpy(), np.tanh(H), atol=1e-6)


def test_dpsh_uses_memory_of_all_train_rows_and_literal_likelihood():
    y_train = onehot(np.array([0, 1, 0, 2, 1]))
    lam = 2.0
    loss = get_loss("dpsh", 8, C, lambda_q=lam)
    with pytest.raises(NotFittedError):
        loss(t(H), t(y_train[:4]), torch.arange(4))
    loss.setup(torch.zeros(5, 3), t(y_train))
    loss.train()
    # first batch: rows 0..3 (row 4 still zero in the memory)
    value, _ = loss(t(H), t(y_train[:4]), torch.arange(4))
    u_mem = np.vstack([H, np.zeros(8)])
    total = 0.0
    for i in range(4):
        for j in range(5):
            th = 0.5 * H[i] @ u_mem[j]
            s = float(y_train[i] @ y_train[j] > 0)
            total += -(s * th - softplus(th))
        b = np.where(H[i] >= 0, 1.0, -1.0)
        total += lam * ((b - H[i]) ** 2).sum()
    assert float(value.detach()) == pytest.approx(total / (4 * 5), rel=1e-5)
    # second batch updates only its rows of the memory
    loss(t(H[:2] * 2), t(y_train[[4, 0]]), torch.tensor([4, 0]))
    assert np.allclose(loss.memory.numpy(), np.vstack([H[:2][1] * 2, H[1:4], H[:2][0] * 2]), atol=1e-6)
    with pytest.raises(InvalidInputError):
        loss(t(H[:1]), t(y_train[:1]), torch.tensor([7]))
    assert get_loss("dpsh", 8, C, lambda_q=0).lambda_q == 0.0


def test_hashnet_matches_literal_weighted_likelihood_and_beta_grows_with_steps():
    loss = get_loss("hashnet", 8, C, multilabel=True)
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 0]], float)
    alpha = 10 / 8
    for step in range(3):
        loss.train()
        beta = (1 + 0.005 * step) ** 0.5
        assert loss.beta == pytest.approx(beta)
        value, terms = loss(t(H), t(y), torch.arange(4))
        z = np.tanh(beta * H)
        pairs = [(i, j) for i in range(4) for j in range(4) if i != j]
        sim = {p: float(y[p[0]] @ y[p[1]] > 0) for p in pairs}
        n1 = sum(sim.values())
        n0 = len(pairs) - n1
        total = 0.0
        for i, j in pairs:
            x = alpha * z[i] @ z[j]
            cij = y[i] @ y[j] / (np.linalg.norm(y[i]) * np.linalg.norm(y[j]))
            w = cij * len(pairs) / n1 if sim[(i, j)] else len(pairs) / n0
            total += w * (softplus(x) - sim[(i, j)] * x)
        assert float(value.detach()) == pytest.approx(total / len(pairs), rel=1e-5)
        assert terms["beta"] == pytest.approx(beta)
    loss.eval()
    loss(t(H), t(y), torch.arange(4))
    assert int(loss.step) == 3  # eval-mode calls do not advance the schedule
    assert np.allclose(loss.embed(t(H)).numpy(), np.tanh((1 + 0.015) ** 0.5 * H), atol=1e-6)
    assert get_loss("hashnet", 8, C, beta_step=200).beta == 1.0


def test_spherical_spring_loss_matches_literal_triplet_loop():
    y = onehot(np.array([0, 0, 1, 1]))
    loss = get_loss("sdsh", 8, 2)
    value, terms = loss(t(H), t(y), torch.arange(4))
    q = H / np.linalg.norm(H, axis=1, keepdims=True)
    es = []
    for a in range(4):
        for p in range(4):
            for n in range(4):
                if p != a and y[a] @ y[p] > 0 and y[a] @ y[n] == 0:
                    delta = ((q[a] - q[p]) ** 2).sum() - ((q[a] - q[n]) ** 2).sum()
                    es.append((math.sqrt(8) - math.sqrt(4 - delta + 1e-8)) ** 2)
    assert terms["triplets"] == len(es) == 8
    assert float(value.detach()) == pytest.approx(np.mean(es), rel=1e-5)
    assert np.allclose(np.linalg.norm(loss.embed(t(H)).numpy(), axis=1), 1, atol=1e-6)
    # perfect configuration: positives identical, negatives antipodal → zero energy
    perfect = np.array([[1.0, 0, 0], [1.0, 0, 0], [-1.0, 0, 0], [-1.0, 0, 0]])
    assert float(get_loss("spherical", 3, 2)(t(perfect), t(y), torch.arange(4))[0]) == pytest.approx(0, abs=1e-6)
    # no valid triplet (one class) → 0
    assert float(loss(t(H), t(onehot(np.zeros(4, int), 2)), torch.arange(4))[0]) == 0.0


def test_shrewd_similarity_term_matches_literal_pairs_and_needs_a_hierarchy():
    hierarchy = ("animal", "animal", "vehicle")  # classes 0, 1 are siblings
    loss = get_loss("shrewd", 8, C, kl_weight=0.0)
    with pytest.raises(NotFittedError):
        loss(t(H), t(onehot(LAB)), torch.arange(4))
    with pytest.raises(InvalidInputError) as e:
        loss.setup(t(H), t(onehot(LAB)), hierarchy=None)
    assert "hierarchy" in e.value.message
    loss.setup(t(H), t(onehot(LAB)), hierarchy=hierarchy)
    value, _ = loss(t(H), t(onehot(LAB)), torch.arange(4))
    dist = {(0, 0): 0, (1, 1): 0, (2, 2): 0, (0, 1): 0.5, (1, 0): 0.5}
    total, n = 0.0, 0
    for i in range(4):
        for j in range(i + 1, 4):
            delta = dist.get((LAB[i], LAB[j]), 1.0)
            d = np.abs(H[i] - H[j]).sum() / 16
            total += (d - 0.5 * delta) ** 2
            n += 1
    assert float(value.detach()) == pytest.approx(total / n, rel=1e-5)
    assert loss.extra()["class_distance"][0][1] == pytest.approx(0.5)


def test_shrewd_item_distance_is_the_closest_label_pair():
    from hashviz.heads.losses.shrewd import item_distances

    d = t([[0, 0.5, 1], [0.5, 0, 1], [1, 1, 0]])
    y = t([[1, 0, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1]])
    out = item_distances(y, d).numpy()
    for i in range(4):
        for j in range(4):
            li, lj = np.flatnonzero(y[i].numpy()), np.flatnonzero(y[j].numpy())
            assert out[i, j] == pytest.approx(min(float(d[a, b]) for a in li for b in lj))


def test_knn_kl_estimator_matches_literal_formula():
    from hashviz.heads.losses.shrewd import knn_kl

    rng = np.random.default_rng(0)
    x, tt = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    rho = [min(np.linalg.norm(x[i] - x[j]) for j in range(5) if j != i) for i in range(5)]
    nu = [min(np.linalg.norm(x[i] - tt[j]) for j in range(4)) for i in range(5)]
    want = 3 / 5 * sum(math.log((nu[i] + 1e-6) / (rho[i] + 1e-6)) for i in range(5)) + math.log(4 / 4)
    assert float(knn_kl(t(x), t(tt))) == pytest.approx(want, rel=1e-5)
    # the SHREWD term is lower for binary, balanced codes than for codes stuck near zero
    loss = get_loss("shrewd", 16, C)
    loss.setup(t(H), t(onehot(LAB)), hierarchy=("a", "a", "b"))
    binary = np.where(rng.random((64, 16)) < 0.5, -1.0, 1.0) + 0.05 * rng.standard_normal((64, 16))
    assert float(loss.kl_term(t(binary))) < float(loss.kl_term(t(0.05 * rng.standard_normal((64, 16)))))


def test_shc_masked_softmax_similarity_is_literal():
    from hashviz.heads.losses.shc import masked_softmax_similarity

    logits = np.array([[2.0, 1.0, 0.0], [0.5, 1.5, 0.2], [1.0, 0.3, 2.5], [0.1, 2.0, 0.4]])
    y = onehot(np.array([0, 1, 2, 1]))
    s = masked_softmax_similarity(t(logits), t(y))
    p = np.zeros((3, 3))
    for a in range(3):
        rows = [i for i in range(4) if y[i, a]]
        for i in rows:
            e = np.array([0.0 if y[i, b] else math.exp(logits[i, b]) for b in range(3)])
            p[a] += e / e.sum() / len(rows)
    sym = (p + p.T) / 2
    want = sym / sym.sum(axis=1, keepdims=True)
    np.fill_diagonal(want, 1.0)
    assert np.allclose(s, want, atol=1e-6)


def test_options_are_validated():
    with pytest.raises(InvalidInputError):
        get_loss("orthohash", 16, 4, codebook="nope")
    with pytest.raises(InvalidInputError):
        get_loss("csq", 16, 4, quantization="l7")
    with pytest.raises(InvalidInputError):
        get_loss("hashnet", 16, 4, not_an_option=1)
    with pytest.raises(InvalidInputError):
        get_loss("shrewd", 16, 4, kl="both")
