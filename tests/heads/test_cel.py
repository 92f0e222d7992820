"""CEL loss: hand-computed values, weighting, invariances and the registry contract."""

from __future__ import annotations

import math

import pytest
import torch

from hashviz.errors import InvalidInputError
from hashviz.heads.losses import HEAD_METHODS, HeadLoss, get_loss, get_method, list_methods, register

# four 2-D embeddings, classes 0 0 1 1
H = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
Y = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
IDX = torch.arange(4)
R = 1 / math.sqrt(2)
# pairs i<j: (0,1) pos cos=R; (2,3) pos cos=0; negatives (0,2) 0, (0,3) -1, (1,2) R, (1,3) -R
POS = [1 - R, 1 - 0.0]
NEG = [max(0.0, c - 0.1) for c in (0.0, -1.0, R, -R)]


def test_hand_computed_balanced():
    loss, terms = get_loss("cel", 2, 2)(H, Y, IDX)
    pos, neg = sum(POS) / 2, sum(NEG) / 4
    assert loss.item() == pytest.approx(0.5 * pos + 0.5 * neg, abs=1e-6)
    assert loss.item() == pytest.approx(0.3991117, abs=1e-6)
    assert terms["positive"] == pytest.approx(pos, abs=1e-6)
    assert terms["negative"] == pytest.approx(neg, abs=1e-6)


def test_hand_computed_plain_mean_and_margin():
    loss, _ = get_loss("cel", 2, 2, balance=False)(H, Y, IDX)
    assert loss.item() == pytest.approx((sum(POS) + sum(NEG)) / 6, abs=1e-6)
    loss0, _ = get_loss("cel", 2, 2, margin=0.0, balance=False)(H, Y, IDX)
    neg0 = [max(0.0, c) for c in (0.0, -1.0, R, -R)]
    assert loss0.item() == pytest.approx((sum(POS) + sum(neg0)) / 6, abs=1e-6)
    loss_w, _ = get_loss("cel", 2, 2, pos_weight=0.8)(H, Y, IDX)
    assert loss_w.item() == pytest.approx(0.8 * sum(POS) / 2 + 0.2 * sum(NEG) / 4, abs=1e-6)


def test_brute_force_random_batch():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(9, 8, generator=g)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 1]), 3).float()
    pos, neg = [], []
    for i in range(9):
        for j in range(i + 1, 9):
            c = float(h[i] @ h[j] / (h[i].norm() * h[j].norm()))
            (pos if float(y[i] @ y[j]) > 0 else neg).append(c)
    expect = 0.5 * sum(1 - c for c in pos) / len(pos) + 0.5 * sum(max(0, c - 0.1) for c in neg) / len(neg)
    assert get_loss("cel", 8, 3)(h, y, torch.arange(9))[0].item() == pytest.approx(expect, abs=1e-5)


def test_multilabel_pairs_share_a_label():
    y = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])  # 0~1, 1~2 positive; 0,2 negative
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    loss, terms = get_loss("cel", 2, 3, multilabel=True)(h, y, torch.arange(3))
    assert terms["positive"] == pytest.approx(1.0)  # both positive pairs are orthogonal
    assert terms["negative"] == pytest.approx(0.9)  # the negative pair has cosine 1
    assert loss.item() == pytest.approx(0.95)


def test_scale_invariant_and_only_one_kind_of_pair():
    cel = get_loss("cel", 2, 2)
    assert cel(3.5 * H, Y, IDX)[0].item() == pytest.approx(cel(H, Y, IDX)[0].item(), abs=1e-6)
    only_pos, _ = cel(H, torch.tensor([[1.0, 0.0]] * 4), IDX)
    assert only_pos.item() > 0
    h = torch.randn(2, 2, requires_grad=True)
    loss, _ = cel(h, Y[:2], IDX[:2])  # one positive pair only
    loss.backward()
    assert h.grad is not None and torch.isfinite(h.grad).all()


def test_perfect_embedding_has_zero_loss():
    h = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    assert get_loss("cel", 2, 2)(h, Y, IDX)[0].item() == pytest.approx(0.0, abs=1e-6)


def test_registry_and_errors():
    assert "cel" in list_methods()
    assert get_method("CEL") is HEAD_METHODS["cel"]
    cel = get_loss("cel", 16, 10)
    assert isinstance(cel, HeadLoss) and cel.n_bits == 16 and cel.n_classes == 10
    assert torch.equal(cel.embed(H), H) and cel.extra() == {} and cel.state_arrays() == {}
    with pytest.raises(InvalidInputError, match="unknown head method 'nope'") as e:
        get_loss("nope", 16, 10)
    assert "cel" in e.value.hint
    with pytest.raises(InvalidInputError, match="unknown option"):
        get_loss("cel", 16, 10, marginn=0.2)
    with pytest.raises(InvalidInputError, match="margin"):
        get_loss("cel", 16, 10, margin=1.5)
    with pytest.raises(InvalidInputError, match="at least 2 classes"):
        get_loss("cel", 16, 1)


def test_register_rejects_non_losses():
    with pytest.raises(TypeError):
        register(type("NotALoss", (), {"name": "x"}))

    class NoName(HeadLoss):
        pass

    with pytest.raises(TypeError):
        register(NoName)
