"""PCA — the principal directions of the backbone features as the hashing head, no training.

Baseline of Gong & Lazebnik, "Iterative Quantization: A Procrustean Approach to Learning Binary Codes", CVPR
2011 (PCA-direct, and with a random rotation ``rr`` or ITQ on top: PCA-RR, PCA-ITQ); Jégou et al. (CVPR 2010)
showed the variance imbalance that makes PCA-direct lose to rotated codes.

    μ = mean of the train features,   X_c = X_train − μ = U S Vᵀ (thin SVD, float64)
    W = V[:, :K]ᵀ                       the top K = n_bits principal directions (rows)
    h = W (x − μ)                       (``whiten=True``: row k divided by √(S_k² / (n − 1)), unit variance)

Each direction's sign is fixed so that its largest-magnitude entry is positive (deterministic across BLAS
builds; sklearn's ``svd_flip`` rule). ``whiten=False`` (default, the PCA of the ITQ paper): codes from sign are the
same either way — whitening only rescales coordinates — but ITQ/HQ, which rescale rows to norm √K, see different
geometry. K must not exceed the feature width or the train rows. ``extra()``: the share of the train variance the
K directions keep.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from hashviz.errors import InvalidInputError
from hashviz.heads.losses import register
from hashviz.heads.losses.projection import ProjectionHead


@register
class PCAHead(ProjectionHead):
    """Top-n_bits principal directions of the train features (optionally whitened)."""

    name: ClassVar[str] = "pca"
    paper: ClassVar[str] = ("Gong & Lazebnik, Iterative Quantization: A Procrustean Approach to Learning Binary "
                            "Codes, CVPR 2011 (PCA baselines; training-free)")
    paired_quantizers: ClassVar[tuple[str, ...]] = ("rr",)  # PCA-RR, the paper's own pairing

    def __init__(self, n_bits: int, n_classes: int, *, multilabel: bool = False, whiten: bool = False,
                 **options: Any) -> None:
        super().__init__(n_bits, n_classes, multilabel=multilabel, **options)
        if not isinstance(whiten, bool | np.bool_):
            raise InvalidInputError(f"pca whiten must be true or false, got {whiten!r}", "the default is false")
        self.whiten = bool(whiten)

    def projection(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, d = x.shape
        if self.n_bits > min(n, d):
            raise InvalidInputError(
                f"pca: {self.n_bits} bits need {self.n_bits} principal directions, but the train features are "
                f"{n} rows × {d} columns", f"use at most {min(n, d)} bits with pca, or the lsh head")
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        w = vt[: self.n_bits]
        flip = np.sign(w[np.arange(self.n_bits), np.abs(w).argmax(axis=1)])
        w = w * np.where(flip == 0, 1.0, flip)[:, None]
        var = s[: self.n_bits] ** 2 / max(n - 1, 1)
        if self.whiten:
            w = w / np.sqrt(np.where(var > 1e-12, var, 1.0))[:, None]
        self._var = (float(var.sum()), float((s ** 2).sum() / max(n - 1, 1)))
        return w

    def explained(self, xc: np.ndarray, w: np.ndarray) -> dict:
        kept, total = self._var
        return {"explained_variance_ratio": kept / total if total > 0 else float("nan"), "whiten": self.whiten}
