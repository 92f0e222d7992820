"""SDSH — spherical embedding with the triplet "spring" loss (name ``spherical``, alias ``sdsh``).

Paper: S. Pidhorskyi, Q. Jones, S. Motiian, D. Adjeroh, G. Doretto, "Deep Supervised Hashing with Spherical
Embedding", ACCV 2018.

Formulas implemented. Embeddings live on the unit sphere, q = h / ‖h‖. For a triplet (query q, positive p that
shares a label with q, negative n that shares none):

    Δ = ‖q − p‖² − ‖q − n‖²  ∈ [−4, 4]                (= 2⟨q, n⟩ − 2⟨q, p⟩ on the unit sphere)
    E = (√8 − √(4 − Δ))²                              0 when p = q and n = −q; "spring" energy otherwise
    L = mean of E over all valid triplets of the mini-batch

Triplet mining: every (q, p, n) inside the batch with p ≠ q sharing a label with q and n sharing none (the
authors' code takes given triplet indices; all valid in-batch triplets is the unbiased version of that and needs
no sampler). A batch without a valid triplet gives 0. ``√(4 − Δ)`` gets ε = 1e-8 inside the root, as in the
authors' code, so the gradient stays finite at Δ = 4. ``embed(h)`` = h / ‖h‖.

In hashviz this head is paired with the random-search rotation quantizer of the same paper (quantize/).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from hashviz.heads.losses import register
from hashviz.heads.losses.base import HeadLoss, shared_label_similarity

SQRT8 = math.sqrt(8.0)


@register
class SphericalSpringLoss(HeadLoss):
    """Triplet spring energy on L2-normalised embeddings, all valid in-batch triplets."""

    name: ClassVar[str] = "spherical"
    aliases: ClassVar[tuple[str, ...]] = ("sdsh",)
    paired_quantizers: ClassVar[tuple[str, ...]] = ("random",)  # the paper's random-search rotation
    paper: ClassVar[str] = "Pidhorskyi et al., Deep Supervised Hashing with Spherical Embedding, ACCV 2018"
    supports_multilabel: ClassVar[bool] = True

    def __init__(self, n_bits: int, n_classes: int, *, multilabel: bool = False, eps: float = 1e-8,
                 chunk: int = 4_000_000, **options: Any) -> None:
        super().__init__(n_bits, n_classes, multilabel=multilabel, **options)
        self.eps = float(eps)
        self.chunk = int(chunk)

    def forward(self, h: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        q = F.normalize(h, dim=1, eps=1e-12)
        n = q.shape[0]
        d2 = (2.0 - 2.0 * (q @ q.T)).clamp(min=0.0)  # squared distances on the sphere
        sim = shared_label_similarity(y)
        pos = sim & ~torch.eye(n, dtype=torch.bool, device=h.device)
        neg = ~sim
        total = h.sum() * 0.0
        count = 0
        step = max(1, self.chunk // max(n * n, 1))
        for a in range(0, n, step):
            b = slice(a, min(a + step, n))
            delta = d2[b, :, None] - d2[b, None, :]  # (queries, p, n)
            mask = pos[b, :, None] & neg[b, None, :]
            m = int(mask.sum())
            if m:
                e = (SQRT8 - torch.sqrt((4.0 - delta[mask]).clamp(min=0.0) + self.eps)) ** 2
                total = total + e.sum()
                count += m
        loss = total / count if count else total
        return loss, {"spring": float(loss.detach()), "triplets": float(count)}

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        return F.normalize(h, dim=1, eps=1e-12)
