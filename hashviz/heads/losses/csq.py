"""CSQ — Central Similarity Quantization: pull each code to its class's hash centre.

Paper: L. Yuan, T. Wang, X. Zhang, F. E. H. Tay, Z. Jie, W. Liu, J. Feng, "Central Similarity Quantization for
Efficient Image and Video Retrieval", CVPR 2020.

Hash centres (``setup``, :func:`hashviz.heads.centers.hadamard_centers`): rows of a Sylvester Hadamard matrix H
and of −H (distinct rows of H are exactly K/2 apart, K = n_bits); when there are more than 2K classes, or K is
not a power of two (no Sylvester matrix), the missing centres are random balanced rows (K/2 ones) kept only if
more than K/4 bits from every centre so far (the distance is lowered bit by bit if it cannot be met, e.g. 100
classes in 8 bits). Multi-label centre: c = sign(Σ_{labels} c_l), zeros broken by a fixed random ±1 vector.

Loss on the raw head outputs h, u = tanh(h):

    L_C = mean_{i,k} BCE((u_ik + 1)/2, (c_ik + 1)/2)
        = − mean_{i,k} [ ĉ_ik log ĥ_ik + (1 − ĉ_ik) log(1 − ĥ_ik) ],   ĥ = (u+1)/2, ĉ = (c+1)/2
    L_Q = mean_{i,k} (|u_ik| − 1)²                       (quantization="l2", default, as in the issue/authors' code)
        or mean_{i,k} log cosh(|u_ik| − 1)               (quantization="logcosh", the paper's smooth L1)
    L = L_C + λ · L_Q                                    λ = 1e-4 (the authors' setting)

BCE is computed from h directly: (tanh(h) + 1)/2 = σ(2h), so BCE = softplus(2h) − 2h·ĉ exactly, with no
log(0) (torch's BCELoss clamps the logs at −100 instead). ``embed(h)`` = tanh(h).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from hashviz.errors import InvalidInputError
from hashviz.heads.centers import hadamard_centers, min_pairwise_distance, multilabel_centers, rng_from_generator
from hashviz.heads.losses import register
from hashviz.heads.losses.base import HeadLoss
from hashviz.validate import check_choice


def center_bce(h: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """mean BCE((tanh(h) + 1)/2, (c + 1)/2) written with softplus: (tanh(h)+1)/2 = σ(2h)."""
    t = (centers + 1.0) / 2.0
    return (F.softplus(2.0 * h) - 2.0 * h * t).mean()


def quantization(u: torch.Tensor, kind: str) -> torch.Tensor:
    x = u.abs() - 1.0
    if kind == "logcosh":
        # log cosh x = |x| + softplus(-2|x|) - log 2 (stable)
        ax = x.abs()
        return (ax + F.softplus(-2.0 * ax) - float(np.log(2.0))).mean()
    return (x**2).mean()


@register
class CSQLoss(HeadLoss):
    """BCE between tanh codes and fixed Hadamard hash centres plus a small quantization term."""

    name: ClassVar[str] = "csq"
    paper: ClassVar[str] = ("Yuan et al., Central Similarity Quantization for Efficient Image and Video Retrieval, "
                            "CVPR 2020")
    supports_multilabel: ClassVar[bool] = True
    quantization_option: ClassVar[str | None] = "lambda_q"

    def __init__(self, n_bits: int, n_classes: int, *, multilabel: bool = False, lambda_q: float = 1e-4,
                 quantization: str = "l2", min_distance: int | None = None, seed: int = 0, **options: Any) -> None:
        super().__init__(n_bits, n_classes, multilabel=multilabel, **options)
        check_choice(quantization, "CSQ quantization", ("l2", "logcosh"))
        if float(lambda_q) < 0:
            raise InvalidInputError(f"lambda_q must be >= 0, got {lambda_q}", "the authors use 1e-4")
        self.lambda_q = float(lambda_q)
        self.quantization = quantization
        self.min_distance = None if min_distance is None else int(min_distance)
        rng = np.random.default_rng(seed)
        self.register_buffer("centers", torch.as_tensor(self._centers(None, None, rng), dtype=torch.float32))
        self.register_buffer("tie_breaker", self._ties(rng))

    def _ties(self, rng: np.random.Generator) -> torch.Tensor:
        return torch.as_tensor(np.where(rng.random(self.n_bits) < 0.5, 1.0, -1.0), dtype=torch.float32)

    def _centers(self, features, labels, rng: np.random.Generator, progress=None) -> np.ndarray:
        return hadamard_centers(self.n_classes, self.n_bits, rng=rng, min_distance=self.min_distance)

    def setup(self, features, labels, *, hierarchy=None, generator=None, progress=None) -> None:
        rng = rng_from_generator(generator)
        self.centers.copy_(torch.as_tensor(self._centers(features, labels, rng, progress), dtype=torch.float32))
        self.tie_breaker.copy_(self._ties(rng))

    def item_centers(self, y: torch.Tensor) -> torch.Tensor:
        """Centre of each row: its class centre (one-hot y) or sign of the sum of its labels' centres."""
        y = y.to(self.centers.dtype)
        return multilabel_centers(y, self.centers, self.tie_breaker)

    def forward(self, h: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.item_centers(y)
        l_c = center_bce(h, c)
        l_q = quantization(torch.tanh(h), self.quantization)
        loss = l_c + self.lambda_q * l_q
        return loss, {"center": float(l_c.detach()), "quantization": float(l_q.detach())}

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(h)

    def extra(self) -> dict:
        return {"centers_min_distance": min_pairwise_distance(self.centers.cpu().numpy()),
                "lambda_q": self.lambda_q, "quantization": self.quantization}

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"centers": self.centers.cpu().numpy().astype(np.int8)}
