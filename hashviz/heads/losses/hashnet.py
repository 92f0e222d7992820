"""HashNet — weighted pairwise likelihood on tanh(β h) with a continuation schedule for β.

Paper: Z. Cao, M. Long, J. Wang, P. S. Yu, "HashNet: Deep Learning to Hash by Continuation", ICCV 2017.

Formulas implemented, for the raw head outputs h of a mini-batch and every ordered pair i ≠ j:

    z_i   = tanh(β_t h_i)                               continuation: β_t = (1 + γ·t)^p, γ = 0.005, p = 0.5
    x_ij  = α ⟨z_i, z_j⟩                                α = 10 / K (the authors' code; the paper's "adaptive
                                                         sigmoid" bandwidth), K = n_bits
    s_ij  = 1 if i and j share a label, else 0
    w_ij  = c_ij · |S| / |S₁|  if s_ij = 1,   |S| / |S₀|  if s_ij = 0
            (S₁/S₀ the similar/dissimilar pairs of the batch, S = all pairs; c_ij = cos(y_i, y_j), which is 1
             for single-label data — the paper's continuous similarity for multi-label data)
    L = (1/|S|) Σ_{i≠j} w_ij ( log(1 + e^{x_ij}) − s_ij x_ij )               (softplus, stable)

β schedule: the loss counts its own training steps (each ``forward`` in training mode is one step, stored in the
``step`` buffer) and uses t = ``beta_step`` · ⌊step / ``beta_step``⌋ — the authors' code raises β every 200
iterations; ``beta_step=1`` (default) raises it every step. No call from the trainer is needed.
``embed(h)`` = tanh(β h) with the β reached at the end of training (its sign is sign(h)).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from hashviz.errors import InvalidInputError
from hashviz.heads.losses import register
from hashviz.heads.losses.base import HeadLoss, shared_label_similarity


def label_cosine(y: torch.Tensor) -> torch.Tensor:
    y = y.float()
    n = y.norm(dim=1, keepdim=True).clamp(min=1e-12)
    return (y / n) @ (y / n).T


@register
class HashNetLoss(HeadLoss):
    """Pair-balanced weighted likelihood on tanh(β h), β growing with the training step."""

    name: ClassVar[str] = "hashnet"
    paper: ClassVar[str] = "Cao et al., HashNet: Deep Learning to Hash by Continuation, ICCV 2017"
    supports_multilabel: ClassVar[bool] = True
    quantization_option: ClassVar[str | None] = "beta_gamma"

    def __init__(self, n_bits: int, n_classes: int, *, multilabel: bool = False, alpha: float | None = None,
                 beta_gamma: float = 0.005, beta_power: float = 0.5, beta_step: int = 1, **options: Any) -> None:
        super().__init__(n_bits, n_classes, multilabel=multilabel, **options)
        if alpha is not None and float(alpha) <= 0:
            raise InvalidInputError(f"alpha must be > 0, got {alpha}", "leave it unset for 10 / n_bits")
        if int(beta_step) < 1:
            raise InvalidInputError(f"beta_step must be >= 1, got {beta_step}", "the authors' code uses 200")
        self.alpha = float(alpha) if alpha is not None else 10.0 / self.n_bits
        self.beta_gamma = float(beta_gamma)
        self.beta_power = float(beta_power)
        self.beta_step = int(beta_step)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    @property
    def beta(self) -> float:
        t = (int(self.step) // self.beta_step) * self.beta_step
        return float((1.0 + self.beta_gamma * t) ** self.beta_power)

    def forward(self, h: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        beta = self.beta
        if self.training:
            self.step += 1
        n = h.shape[0]
        if n < 2:
            return h.sum() * 0.0, {"likelihood": 0.0, "beta": beta}
        z = torch.tanh(beta * h)
        x = self.alpha * (z @ z.T)
        sim = shared_label_similarity(y)
        off = ~torch.eye(n, dtype=torch.bool, device=h.device)
        pos, neg = sim & off, ~sim & off
        n_pairs = n * (n - 1)
        n_pos, n_neg = int(pos.sum()), int(neg.sum())
        w = torch.zeros_like(x)
        if n_pos:
            w = torch.where(pos, label_cosine(y).to(x.dtype) * n_pairs / n_pos, w)
        if n_neg:
            w = torch.where(neg, torch.full_like(x, n_pairs / n_neg), w)
        ell = F.softplus(x) - sim.to(x.dtype) * x
        loss = (w * ell).sum() / n_pairs
        return loss, {"likelihood": float(loss.detach()), "beta": beta}

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.beta * h)

    def extra(self) -> dict:
        return {"alpha": self.alpha, "beta": self.beta, "steps": int(self.step)}
