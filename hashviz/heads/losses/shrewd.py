"""SHREWD — embedding distances that follow semantic (hierarchy) distances, plus an empirical KL term.

Paper: H. Arponen, T. E. Bishop, "SHREWD: Semantic Hierarchy-based Relational Embeddings for Weakly-supervised
Deep Hashing", ICLR 2019 workshop (LLD), arXiv:1908.05602.

Needs a label hierarchy (``setup(..., hierarchy=...)``; the forms accepted are those of
:func:`hashviz.data.hierarchy.class_distance_matrix` — the parents tuple of a dataset, or a ``{child: parent}``
mapping of any depth).

Formulas implemented, z = raw head outputs (K = n_bits), for every pair i < j of the mini-batch:

    δ_ij = semantic distance of the items' labels = height(LCA) / height(root) ∈ [0, 1]
           (multi-label: the smallest distance over their label pairs)
    d_ij = ‖z_i − z_j‖₁ / (2K)                 (= Hamming distance / K when z is ±1)
    L_sim = mean_{i<j} |d_ij − r·δ_ij|^p        p = 2 (``power``), r = 0.5 (``distance_scale``)

r = 0.5 maps "unrelated" (δ = 1) to K/2 bits, the distance of independent random codes: δ = 1 cannot mean
antipodal codes for more than two groups at once.

Empirical KL term (the kNN divergence estimator of Wang, Kulkarni & Verdú 2009, k = 1) between the batch's
embedding distribution P and a binary, uniform target Q, from the B batch rows x_i and m = B target samples t_j:

    D̂(P‖Q) = (d/B) Σ_i log(ν_i / ρ_i) + log(m / (B − 1)),
    ρ_i = min_{j≠i} ‖x_i − x_j‖,  ν_i = min_j ‖x_i − t_j‖

Small ν pulls embeddings onto the target's support (±1: binary), large ρ keeps them apart (uniform, no collapse).
``kl="marginal"`` (default): per bit, x = z_·k in 1-D, Q = ½N(−1, σ²) + ½N(+1, σ²) (σ = ``target_sigma`` = 0.1),
D̂ averaged over the K bits. ``kl="joint"``: d = K, Q = uniform over the corners {±1}^K plus N(0, σ²) noise,
D̂ divided by K. Target samples are redrawn every step from the loss's own seeded generator; distances get
ε = ``kl_eps`` = 0.1 inside the logs (a floor on the 1/ρ push between near-identical values: without it the
estimator's gradient is dominated by the closest pair of the batch and training fails).

    L = L_sim + λ_KL · D̂                      λ_KL = ``kl_weight`` = 0.005

``embed(h)`` = h. ``extra()``/``state_arrays()`` hold the class distance matrix. Only the paper's abstract could be
consulted here; the exact distance normalisation and the marginal estimator are our reading (docs/methods.md).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch

from hashviz.data.hierarchy import class_distance_matrix
from hashviz.errors import InvalidInputError, NotFittedError
from hashviz.heads.centers import rng_from_generator
from hashviz.heads.losses import register
from hashviz.heads.losses.base import HeadLoss
from hashviz.validate import check_choice

_HIERARCHY_HINT = ('pass a hierarchy: the dataset\'s own (CIFAR-100 coarse classes, the MNIST shape families) or a '
                   'JSON file {"class": "parent", ...}')


def item_distances(y: torch.Tensor, class_distance: torch.Tensor) -> torch.Tensor:
    """(B, B) semantic distances between items: the smallest class distance over their label pairs."""
    y = y.float() > 0
    big = torch.full_like(class_distance, 2.0)
    b = y.shape[0]
    # best[i, b] = min over labels a of item i of D[a, b]
    best = torch.where(y[:, :, None], class_distance[None, :, :], big[None]).amin(dim=1)  # (B, c)
    out = torch.where(y[None, :, :], best[:, None, :], torch.full((b, b, y.shape[1]), 2.0, device=y.device,
                                                                     dtype=best.dtype)).amin(dim=2)
    return out.clamp(max=1.0)


def knn_kl(x: torch.Tensor, t: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """1-NN KL-divergence estimate D̂(P‖Q) from samples x (n, d) of P and t (m, d) of Q."""
    n, d = x.shape
    m = t.shape[0]
    dxx = torch.cdist(x, x)
    dxx = dxx + torch.diag(torch.full((n,), float("inf"), device=x.device, dtype=x.dtype))
    rho = dxx.amin(dim=1)
    nu = torch.cdist(x, t).amin(dim=1)
    return d * (torch.log(nu + eps) - torch.log(rho + eps)).mean() + math.log(m / (n - 1))


@register
class ShrewdLoss(HeadLoss):
    """Match L1 embedding distances to hierarchy distances; empirical KL toward binary, uniform codes."""

    name: ClassVar[str] = "shrewd"
    quantization_option: ClassVar[str | None] = "kl_weight"
    paper: ClassVar[str] = ("Arponen & Bishop, SHREWD: Semantic Hierarchy-based Relational Embeddings for "
                            "Weakly-supervised Deep Hashing, ICLR-W 2019")
    supports_multilabel: ClassVar[bool] = True
    needs_hierarchy: ClassVar[bool] = True

    def __init__(self, n_bits: int, n_classes: int, *, multilabel: bool = False, kl_weight: float = 0.005,
                 kl: str = "marginal", power: float = 2.0, target_sigma: float = 0.1, distance_scale: float = 0.5,
                 kl_eps: float = 0.1,
                 class_names: list[str] | tuple[str, ...] | None = None, seed: int = 0, **options: Any) -> None:
        super().__init__(n_bits, n_classes, multilabel=multilabel, **options)
        check_choice(kl, "SHREWD kl estimator", ("marginal", "joint"))
        if float(kl_weight) < 0 or float(power) <= 0 or float(target_sigma) <= 0:
            raise InvalidInputError("kl_weight must be >= 0, power and target_sigma > 0", "defaults: 0.005, 2, 0.1")
        self.kl_weight = float(kl_weight)
        self.distance_scale = float(distance_scale)
        self.kl_eps = float(kl_eps)
        self.kl = kl
        self.power = float(power)
        self.target_sigma = float(target_sigma)
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.register_buffer("class_distance", torch.zeros(0, 0), persistent=False)
        self._gen = torch.Generator().manual_seed(int(seed))

    def setup(self, features, labels, *, hierarchy=None, generator=None, progress=None) -> None:
        if hierarchy is None:
            raise InvalidInputError("SHREWD needs a label hierarchy and none was given", _HIERARCHY_HINT)
        d = class_distance_matrix(hierarchy, self.n_classes, self.class_names)
        self.class_distance = torch.as_tensor(d, dtype=torch.float32, device=self.class_distance.device)
        self._gen = torch.Generator().manual_seed(int(rng_from_generator(generator).integers(2**62)))

    def _targets(self, m: int, d: int, like: torch.Tensor) -> torch.Tensor:
        signs = torch.randint(0, 2, (m, d), generator=self._gen).float() * 2.0 - 1.0
        noise = torch.randn(m, d, generator=self._gen) * self.target_sigma
        return (signs + noise).to(device=like.device, dtype=like.dtype)

    def kl_term(self, z: torch.Tensor) -> torch.Tensor:
        b, k = z.shape
        if self.kl == "joint":
            return knn_kl(z, self._targets(b, k, z), eps=self.kl_eps) / k
        x = z.T[:, :, None]  # (K, B, 1): one 1-D sample set per bit
        t = self._targets(k * b, 1, z).reshape(k, b, 1)
        dxx = (x - x.transpose(1, 2)).abs() + torch.diag(torch.full((b,), float("inf"), device=z.device))
        rho = dxx.amin(dim=2)  # (K, B)
        nu = (x - t.transpose(1, 2)).abs().amin(dim=2)
        return (torch.log(nu + self.kl_eps) - torch.log(rho + self.kl_eps)).mean() + math.log(b / (b - 1))

    def forward(self, h: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        if self.class_distance.numel() == 0:
            raise NotFittedError("SHREWD has no class distances yet", "call loss.setup(..., hierarchy=...) first")
        b = h.shape[0]
        if b < 2:
            return h.sum() * 0.0, {"similarity": 0.0, "kl": 0.0}
        delta = self.distance_scale * item_distances(y, self.class_distance.to(h.device))
        d = torch.cdist(h, h, p=1) / (2.0 * self.n_bits)
        upper = torch.triu(torch.ones(b, b, dtype=torch.bool, device=h.device), diagonal=1)
        l_sim = ((d - delta)[upper].abs() ** self.power).mean()
        l_kl = self.kl_term(h) if self.kl_weight > 0 else h.sum() * 0.0
        loss = l_sim + self.kl_weight * l_kl
        return loss, {"similarity": float(l_sim.detach()), "kl": float(l_kl.detach())}

    def extra(self) -> dict:
        if self.class_distance.numel() == 0:
            return {}
        return {"class_distance": np.round(self.class_distance.cpu().double().numpy(), 6).tolist()}

    def state_arrays(self) -> dict[str, np.ndarray]:
        if self.class_distance.numel() == 0:
            return {}
        return {"class_distance": self.class_distance.cpu().numpy().astype(np.float32)}
