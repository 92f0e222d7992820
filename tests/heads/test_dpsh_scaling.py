"""docs/methods.md, DPSH: DeepHash-pytorch averages both terms (likelihood over B·n pairs, penalty over B·K
entries); with λ = α·n/K our loss (both sums divided by B·n) is the same function, values and gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hashviz.heads.losses import get_loss


def deephash_style_dpsh(u, y, ind, memory_u, memory_y, alpha):
    """DeepHash-pytorch's DPSHLoss as it is described (its memory updated with the batch first)."""
    memory_u[ind] = u.detach()
    memory_y[ind] = y
    s = (y @ memory_y.T > 0).float()
    theta = 0.5 * u @ memory_u.T
    likelihood = (F.softplus(theta) - s * theta).mean()
    return likelihood + alpha * (u - u.sign()).pow(2).mean()


def test_the_losses_match_when_lambda_is_alpha_n_over_k():
    g = torch.Generator().manual_seed(0)
    n, k_bits, n_classes, alpha = 50, 16, 3, 0.1
    labels = torch.nn.functional.one_hot(torch.randint(0, n_classes, (n,), generator=g), n_classes).float()
    ours = get_loss("dpsh", k_bits, n_classes, lambda_q=alpha * n / k_bits)
    ours.setup(None, labels)
    memory_u, memory_y = torch.zeros(n, k_bits), torch.zeros(n, n_classes)
    for ind in (torch.arange(0, 8), torch.arange(8, 20), torch.arange(3, 11)):  # later batches see the memory
        h = torch.randn(len(ind), k_bits, generator=g, requires_grad=True)
        loss, _ = ours(h, labels[ind], ind)
        (grad,) = torch.autograd.grad(loss, h)
        h2 = h.detach().clone().requires_grad_(True)
        ref = deephash_style_dpsh(h2, labels[ind], ind, memory_u, memory_y, alpha)
        (grad_ref,) = torch.autograd.grad(ref, h2)
        torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(grad, grad_ref, rtol=1e-5, atol=1e-8)
    # at equal coefficient (λ = α) their penalty weighs n/K times more than ours
    same_coefficient = get_loss("dpsh", k_bits, n_classes, lambda_q=alpha)
    same_coefficient.setup(None, labels)
    h = torch.full((4, k_bits), 0.5)
    _, terms = same_coefficient(h, labels[:4], torch.arange(4))
    ours_penalty = alpha * terms["quantization"] * 4 / (4 * n)  # λ Σ(b − u)² / (B·n)
    theirs_penalty = alpha * float((h - h.sign()).pow(2).mean())  # α Σ(b − u)² / (B·K)
    assert abs(theirs_penalty / ours_penalty - n / k_bits) < 1e-6
