"""OrthoHash — one cosine-similarity loss against fixed binary orthogonal class targets.

Paper: J. T. Hoe, K. W. Ng, T. Zhang, C. S. Chan, Y.-Z. Song, T. Xiang, "One Loss for All: Deep Hashing with a
Single Cosine Similarity based Learning Objective", NeurIPS 2021.

Formulas implemented. Each class c has a fixed target o_c ∈ {−1, +1}^K (K = n_bits), drawn once in ``setup``
(``codebook="bernoulli"`` by default, the paper's choice; also ``"hadamard"`` and ``"max_distance"``, see
:mod:`hashviz.heads.centers`). The raw head outputs h go through a BatchNorm layer owned by this loss
(v = BN(h): zero-mean codes, which is what balances the bits); then

    cos_ic  = ⟨v_i, o_c⟩ / (‖v_i‖ ‖o_c‖)
    logit_ic = s · (cos_ic − m · y_ic)                    margin m = 0.2, scale s = √K by default
    L = − mean_i Σ_c (y_ic / Σ_c' y_ic') · log softmax_c(logit_i)

For one-hot y this is the cross-entropy with a cosine margin on the true class; for multi-hot y it is the paper's
label smoothing (each of an item's labels gets weight 1/|labels|). Rows without any label are left out.

``embed(h)`` = BN(h) in eval mode (running statistics). Codebook accuracy = share of items whose nearest target
in Hamming distance (sign(v) against o_c) is one of their classes: reported per batch in the training terms,
for the last time each training row was seen in :meth:`extra`, and for any data by :meth:`codebook_accuracy`.

Scale: the issue asked for s = √K "as in the paper"; the authors' code uses s = 8 for every bit length (which is
√K at their default K = 64). ``scale`` sets it explicitly.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from hashviz.errors import InvalidInputError
from hashviz.heads.centers import make_centers, min_pairwise_distance, rng_from_generator
from hashviz.heads.losses import register
from hashviz.heads.losses.base import HeadLoss
from hashviz.validate import unknown_choice

CODEBOOKS = ("bernoulli", "hadamard", "max_distance")


@register
class OrthoHashLoss(HeadLoss):
    """Cross-entropy over scaled cosine logits to fixed ±1 class targets, BatchNorm on the codes."""

    name: ClassVar[str] = "orthohash"
    paper: ClassVar[str] = ("Hoe et al., One Loss for All: Deep Hashing with a Single Cosine Similarity based "
                            "Learning Objective, NeurIPS 2021")
    supports_multilabel: ClassVar[bool] = True

    def __init__(self, n_bits: int, n_classes: int, *, multilabel: bool = False, codebook: str = "bernoulli",
                 margin: float = 0.2, scale: float | None = None, bn_affine: bool = True, seed: int = 0,
                 **options: Any) -> None:
        super().__init__(n_bits, n_classes, multilabel=multilabel, **options)
        if str(codebook).lower() not in CODEBOOKS:
            raise unknown_choice(codebook, "OrthoHash codebook", CODEBOOKS)
        if not 0.0 <= float(margin) < 2.0:
            raise InvalidInputError(f"OrthoHash margin must be in [0, 2), got {margin}", "the paper uses 0.2")
        if scale is not None and float(scale) <= 0:
            raise InvalidInputError(f"OrthoHash scale must be > 0, got {scale}", "leave it unset for √n_bits")
        self.codebook = str(codebook).lower()
        self.margin = float(margin)
        self.scale = float(scale) if scale is not None else math.sqrt(self.n_bits)
        self.bn = torch.nn.BatchNorm1d(self.n_bits, affine=bool(bn_affine))
        self.register_buffer("centers", self._make(np.random.default_rng(seed)))
        self._hits: np.ndarray | None = None  # per train row: 1 correct, 0 wrong, -1 not seen

    def _make(self, rng: np.random.Generator) -> torch.Tensor:
        return torch.as_tensor(make_centers(self.codebook, self.n_classes, self.n_bits, rng=rng), dtype=torch.float32)

    def setup(self, features, labels, *, hierarchy=None, generator=None, progress=None) -> None:
        self.centers.copy_(self._make(rng_from_generator(generator)))
        self._hits = np.full(len(labels), -1, dtype=np.int8)

    def logits(self, v: torch.Tensor) -> torch.Tensor:
        """Cosine similarities (B, c) between codes v and the class targets."""
        return F.normalize(v, dim=1, eps=1e-12) @ F.normalize(self.centers, dim=1).T

    def _nearest_correct(self, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        b = torch.where(v >= 0, 1.0, -1.0)
        nearest = (b @ self.centers.T).argmax(dim=1)  # max inner product = min Hamming distance
        return y.gather(1, nearest[:, None])[:, 0] > 0

    def forward(self, h: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        v = self.bn(h)
        y = y.float()
        cos = self.logits(v)
        logit = self.scale * (cos - self.margin * y)
        count = y.sum(dim=1)
        keep = count > 0
        if not bool(keep.any()):
            return h.sum() * 0.0, {"ce": 0.0, "codebook_acc": 0.0}
        target = y[keep] / count[keep, None]
        loss = -(target * F.log_softmax(logit[keep], dim=1)).sum(dim=1).mean()
        with torch.no_grad():
            correct = self._nearest_correct(v, y)
            if self.training and self._hits is not None and idx is not None:
                ii = idx.detach().cpu().numpy()
                if ii.size and ii.max() < len(self._hits):
                    self._hits[ii] = correct.cpu().numpy().astype(np.int8)
        return loss, {"ce": float(loss.detach()), "codebook_acc": float(correct.float().mean())}

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        was = self.bn.training
        self.bn.eval()
        try:
            return self.bn(h)
        finally:
            self.bn.train(was)

    @torch.no_grad()
    def codebook_accuracy(self, h: torch.Tensor, y: torch.Tensor) -> float:
        """Share of rows whose nearest class target (Hamming, eval-mode codes) is one of their classes."""
        return float(self._nearest_correct(self.embed(h), y.float()).float().mean())

    def extra(self) -> dict:
        out: dict = {"codebook": self.codebook, "scale": self.scale, "margin": self.margin,
                     "centers_min_distance": min_pairwise_distance(self.centers.cpu().numpy())}
        if self._hits is not None and (self._hits >= 0).any():
            out["codebook_accuracy"] = float(self._hits[self._hits >= 0].mean())
        return out

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"centers": self.centers.cpu().numpy().astype(np.int8)}
