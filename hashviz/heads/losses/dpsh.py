"""DPSH — Deep Pairwise-Supervised Hashing: pairwise likelihood of the labels' similarity.

Paper: W.-J. Li, S. Wang, W.-C. Kang, "Feature Learning based Deep Supervised Hashing with Pairwise Labels",
IJCAI 2016.

Formulas implemented, with u the raw head outputs and b = sign(u):

    θ_ij = ½ ⟨u_i, u_j⟩
    s_ij = 1 if items i and j share a label, else 0
    ℓ_ij = −(s_ij θ_ij − log(1 + e^θ_ij)) = softplus(θ_ij) − s_ij θ_ij             (computed stably)
    L = [ Σ_{i ∈ batch} Σ_{j ∈ train} ℓ_ij + λ Σ_{i ∈ batch} ‖b_i − u_i‖² ] / (B · n)

As in the paper's algorithm, the loss keeps a memory U of the latest output of every train row (filled as rows
are seen; ``idx`` gives the batch's rows) and pairs every batch item with all n train rows: the batch side carries
the gradient, the memory side is a constant. Dividing both sums by B·n keeps the paper's relative weight between
likelihood and quantization (its objective sums over all pairs and η times over all items). λ = 10 by default
(the paper's η); ``lambda_q=0`` gives the setting used by the Householder-quantization paper (similarity learning
only, quantization left to a rotation). Rows of U not yet seen are 0 (θ = 0: they contribute a constant).
``embed(h)`` = h.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from hashviz.errors import InvalidInputError, NotFittedError
from hashviz.heads.losses import register
from hashviz.heads.losses.base import HeadLoss


@register
class DPSHLoss(HeadLoss):
    """Pairwise negative log-likelihood (batch × all train rows) plus λ‖b − u‖²."""

    name: ClassVar[str] = "dpsh"
    paper: ClassVar[str] = ("Li, Wang, Kang, Feature Learning based Deep Supervised Hashing with Pairwise Labels, "
                            "IJCAI 2016")
    supports_multilabel: ClassVar[bool] = True
    quantization_option: ClassVar[str | None] = "lambda_q"

    def __init__(self, n_bits: int, n_classes: int, *, multilabel: bool = False, lambda_q: float = 10.0,
                 **options: Any) -> None:
        super().__init__(n_bits, n_classes, multilabel=multilabel, **options)
        if float(lambda_q) < 0:
            raise InvalidInputError(f"lambda_q must be >= 0, got {lambda_q}", "use 10 (the paper) or 0 (HQ setting)")
        self.lambda_q = float(lambda_q)
        self.register_buffer("memory", torch.zeros(0, self.n_bits), persistent=False)
        self.register_buffer("train_labels", torch.zeros(0, self.n_classes), persistent=False)

    def setup(self, features, labels, *, hierarchy=None, generator=None, progress=None) -> None:
        labels = torch.as_tensor(labels).float()
        self.train_labels = labels.to(self.memory.device)
        self.memory = torch.zeros(len(labels), self.n_bits, device=self.memory.device)

    def forward(self, h: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        if len(self.memory) == 0:
            raise NotFittedError("DPSH needs the train labels before training",
                                 "call loss.setup(features_train, labels_train) first (fit_head_steps does)")
        idx = torch.as_tensor(idx, device=h.device).long()
        if idx.numel() != h.shape[0] or (idx.numel() and (idx.min() < 0 or idx.max() >= len(self.memory))):
            raise InvalidInputError("DPSH got row indices outside the train split",
                                    "pass idx = the batch's row numbers in the train split")
        memory = self.memory.to(h.device)
        if self.training:
            memory[idx] = h.detach()
            self.memory = memory
        s = (y.float() @ self.train_labels.to(h.device).T > 0).float()  # (B, n)
        theta = 0.5 * h @ memory.T
        likelihood = (F.softplus(theta) - s * theta).sum()
        b = torch.where(h >= 0, 1.0, -1.0).detach()  # sign with sign(0) = +1, as everywhere in hashviz
        quant = ((b - h) ** 2).sum()
        scale = h.shape[0] * memory.shape[0]
        loss = (likelihood + self.lambda_q * quant) / scale
        return loss, {"likelihood": float(likelihood.detach()) / scale,
                      "quantization": float(quant.detach()) / h.shape[0]}
