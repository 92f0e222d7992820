"""SHC — semantic hash centres: centres whose distances follow the classes' similarity, then the CSQ loss.

Paper: L. Chen, R. Liu, Y. Zhou, X. Ma, Y. Chen, D. Zhang, "Deep Hashing with Semantic Hash Centers for Image
Retrieval", arXiv:2507.08404, 2025.

Three stages, the first two in ``setup`` (on the train split's backbone features and labels):

1. Class similarity from a classifier's confusions. A linear softmax classifier is trained on the standardised
   features (full batch, Adam, ``classifier_steps`` steps, cross-entropy against y/Σy). For every train item the
   softmax is taken with the item's own classes masked out (logits −∞), so it spreads over the *other* classes in
   proportion to how much the item resembles them:
       P_ab = mean over items of class a of softmax_b(masked logits)          (P_aa = 0)
   then symmetrised  S = (P + Pᵀ)/2,  row-normalised  S_ab ← S_ab / Σ_b' S_ab',  diagonal set to 1.
2. Centres H (c × K, ±1) minimising Σ_{a≠b} ((1/K)⟨h_a, h_b⟩ − S̄_ab)², S̄ = (S + Sᵀ)/2, subject to every pair of
   centres at least ``min_distance`` bits apart (default: more than K/4). Solved by single-bit flips starting
   from CSQ's Hadamard centres (:func:`hashviz.heads.centers.similarity_centers`); a flip is taken only if it
   lowers the objective and keeps the minimum distance.
3. The CSQ loss (BCE to the centres + λ·quantization, see :mod:`hashviz.heads.losses.csq`) on those centres;
   multi-label centre = sign of the sum of the labels' centres.

``extra()``/``state_arrays()`` expose ``class_similarity`` (S) and ``center_similarity`` ((1/K) H Hᵀ) so the app
can draw them side by side. Only the paper's abstract could be consulted here: the masking, normalisation and
optimiser above follow the issue's description and are documented in docs/methods.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from hashviz.heads.centers import min_pairwise_distance, similarity_centers
from hashviz.heads.losses import register
from hashviz.heads.losses.csq import CSQLoss


def masked_softmax_similarity(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Stage 1 from classifier logits (n, c) and multi-hot labels (n, c): the class similarity S (c, c)."""
    y = labels.float() > 0
    masked = logits.masked_fill(y, float("-inf"))
    p = torch.softmax(masked, dim=1)
    p = torch.nan_to_num(p, nan=0.0)  # rows with every class masked
    counts = y.float().sum(dim=0)  # items per class
    conf = (y.float().T @ p) / counts.clamp(min=1.0)[:, None]  # (c, c): mean over items of class a
    conf = conf.double().cpu().numpy()
    np.fill_diagonal(conf, 0.0)
    s = (conf + conf.T) / 2.0
    rows = s.sum(axis=1, keepdims=True)
    s = np.divide(s, rows, out=np.zeros_like(s), where=rows > 0)
    np.fill_diagonal(s, 1.0)
    return s


def train_classifier(features: torch.Tensor, labels: torch.Tensor, *, steps: int, lr: float, weight_decay: float,
                     seed: int) -> torch.Tensor:
    """Linear softmax classifier on standardised features; returns its logits on the same features."""
    x = features.detach().float()
    x = (x - x.mean(dim=0)) / x.std(dim=0).clamp(min=1e-6)
    y = labels.detach().float()
    target = y / y.sum(dim=1, keepdim=True).clamp(min=1.0)
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(x.shape[1], y.shape[1], generator=g) * 0.01).to(x.device).requires_grad_(True)
    b = torch.zeros(y.shape[1], device=x.device, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            loss = -(target * F.log_softmax(x @ w + b, dim=1)).sum(dim=1).mean()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return x @ w + b


@register
class SHCLoss(CSQLoss):
    """CSQ on semantic hash centres optimised to follow a data-driven class similarity."""

    name: ClassVar[str] = "shc"
    paper: ClassVar[str] = "Chen et al., Deep Hashing with Semantic Hash Centers for Image Retrieval, arXiv 2025"
    supports_multilabel: ClassVar[bool] = True

    def __init__(self, n_bits: int, n_classes: int, *, multilabel: bool = False, classifier_steps: int = 300,
                 classifier_lr: float = 0.01, classifier_weight_decay: float = 1e-4, **options: Any) -> None:
        super().__init__(n_bits, n_classes, multilabel=multilabel, **options)
        self.classifier_steps = int(classifier_steps)
        self.classifier_lr = float(classifier_lr)
        self.classifier_weight_decay = float(classifier_weight_decay)
        self.register_buffer("class_similarity", torch.eye(self.n_classes))

    def _centers(self, features, labels, rng: np.random.Generator, progress=None) -> np.ndarray:
        if features is None:  # before setup: plain CSQ centres
            return super()._centers(features, labels, rng)
        if progress is not None:
            progress("class similarity", 0, 2)
        logits = train_classifier(torch.as_tensor(features), torch.as_tensor(labels), steps=self.classifier_steps,
                                  lr=self.classifier_lr, weight_decay=self.classifier_weight_decay,
                                  seed=int(rng.integers(2**31)))
        s = masked_softmax_similarity(logits, torch.as_tensor(labels))
        self.class_similarity.copy_(torch.as_tensor(s, dtype=torch.float32))
        if progress is not None:
            progress("semantic centres", 1, 2)
        centers = similarity_centers(s, self.n_bits, rng=rng, min_distance=self.min_distance)
        if progress is not None:
            progress("semantic centres", 2, 2)
        return centers

    def center_similarity(self) -> np.ndarray:
        c = self.centers.cpu().double().numpy()
        return c @ c.T / self.n_bits

    def extra(self) -> dict:
        out = super().extra()
        out["class_similarity"] = np.round(self.class_similarity.cpu().double().numpy(), 6).tolist()
        out["center_similarity"] = np.round(self.center_similarity(), 6).tolist()
        out["centers_min_distance"] = min_pairwise_distance(self.centers.cpu().numpy())
        return out

    def state_arrays(self) -> dict[str, np.ndarray]:
        out = super().state_arrays()
        out["class_similarity"] = self.class_similarity.cpu().numpy().astype(np.float32)
        out["center_similarity"] = self.center_similarity().astype(np.float32)
        return out
