"""CEL — pairwise cosine embedding loss with no quantization term.

Paper: L. R. Schwengber, L. Resende, P. Orenstein, R. I. Oliveira, "Deep Hashing via Householder
Quantization", arXiv:2311.04207, 2023. Their base similarity-learning stage trains the embedding with a cosine
embedding loss only (no term pulling entries to ±1); quantization is left to a rotation found afterwards
(ITQ / HQ), which is exactly what hashviz visualises.

Formulas implemented, for the raw head outputs h_1…h_B of a mini-batch and every unordered pair i < j:

    c_ij = cos(h_i, h_j) = ⟨h_i, h_j⟩ / (‖h_i‖ ‖h_j‖ + eps)
    S_ij = 1 if items i and j share at least one label, else 0
    positive pair (S_ij = 1):  ℓ_ij = 1 − c_ij
    negative pair (S_ij = 0):  ℓ_ij = max(0, c_ij − margin)            margin = 0.1 by default

    L = w · mean_{i<j, S_ij=1} ℓ_ij + (1 − w) · mean_{i<j, S_ij=0} ℓ_ij      (balance=True, default; w = 1/2)
    L = mean_{i<j} ℓ_ij                                                     (balance=False)

Weighting: with 10 balanced classes only ~10% of the pairs in a batch are positive, so a plain mean over pairs
lets the negatives dominate and the few positives barely move the embedding. By default hashviz averages the
two kinds separately and weighs them equally (``pos_weight=0.5``). When a batch has pairs of only one kind,
that kind's mean is the loss. Self-pairs (i = i) are excluded. The reported terms are the two means.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from hashviz.errors import InvalidInputError
from hashviz.heads.losses import register
from hashviz.heads.losses.base import HeadLoss, shared_label_similarity


@register
class CosineEmbeddingHashLoss(HeadLoss):
    """Positive pairs pulled to cosine 1, negative pairs pushed below ``margin``; no quantization term."""

    name: ClassVar[str] = "cel"
    paper: ClassVar[str] = "Schwengber et al., Deep Hashing via Householder Quantization, arXiv 2023 (CEL base)"
    supports_multilabel: ClassVar[bool] = True

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        *,
        multilabel: bool = False,
        margin: float = 0.1,
        balance: bool = True,
        pos_weight: float = 0.5,
        eps: float = 1e-8,
        **options: Any,
    ) -> None:
        super().__init__(n_bits, n_classes, multilabel=multilabel, **options)
        if not -1.0 <= float(margin) < 1.0:
            raise InvalidInputError(f"cel margin must be in [-1, 1), got {margin}", hint="the default is 0.1")
        if not 0.0 < float(pos_weight) < 1.0:
            raise InvalidInputError(f"cel pos_weight must be in (0, 1), got {pos_weight}", hint="the default is 0.5")
        self.margin = float(margin)
        self.balance = bool(balance)
        self.pos_weight = float(pos_weight)
        self.eps = float(eps)

    def forward(self, h: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        n = h.shape[0]
        if n < 2:
            zero = h.sum() * 0.0
            return zero, {"positive": 0.0, "negative": 0.0}
        norms = h.norm(dim=1, keepdim=True)
        u = h / (norms + self.eps)
        cos = u @ u.T
        sim = shared_label_similarity(y)
        upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=h.device), diagonal=1)
        pos = sim & upper
        neg = ~sim & upper
        pos_loss = (1.0 - cos)[pos]
        neg_loss = torch.clamp(cos - self.margin, min=0.0)[neg]
        n_pos, n_neg = pos_loss.numel(), neg_loss.numel()
        pos_mean = pos_loss.mean() if n_pos else cos.new_zeros(())
        neg_mean = neg_loss.mean() if n_neg else cos.new_zeros(())
        if self.balance:
            if n_pos and n_neg:
                loss = self.pos_weight * pos_mean + (1.0 - self.pos_weight) * neg_mean
            else:
                loss = pos_mean if n_pos else neg_mean
        else:
            loss = (pos_loss.sum() + neg_loss.sum()) / max(n_pos + n_neg, 1)
        return loss, {"positive": float(pos_mean.detach()), "negative": float(neg_mean.detach())}
