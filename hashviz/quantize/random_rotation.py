"""Random rotation (``rr``): codes = sign of the embeddings turned by one seeded Haar-random orthogonal matrix.

The PCA-RR baseline of Gong & Lazebnik ("Iterative Quantization: A Procrustean Approach to Learning Binary
Codes", CVPR 2011, §4): after PCA the first directions carry most of the variance, so giving every bit a
random mix of all directions balances them — a rotation that learns nothing. Next to ITQ and HQ it shows how much
of what a learned rotation buys any rotation buys. R is drawn by
:func:`hashviz.quantize.base.random_orthogonal` (QR of a Gaussian matrix with the signs of R's diagonal fixed,
which makes the draw Haar-uniform) from ``np.random.default_rng(random_state)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from hashviz.quantize.base import BaseQuantizer, FitStep, random_orthogonal
from hashviz.retrieval.metrics import quantization_error


class RandomRotationQuantizer(BaseQuantizer):
    """R = a seeded Haar-random orthogonal matrix. ``fit_steps`` yields one step (nothing is learned; the data
    only give the reported quantization error). ``center=True`` subtracts the training mean first (PCA-RR works
    on centred projections; the ``pca`` head's output is centred already)."""

    name = "rr"
    label = "random rotation"

    def __init__(self, n_bits: int, *, preprocess: str = "sphere", center: bool = False,
                 random_state: int | None = 0) -> None:
        self.n_bits = n_bits
        self.preprocess = preprocess
        self.center = center
        self.random_state = random_state

    def _steps(self, X: np.ndarray, y) -> Iterator[FitStep]:
        self.rotation_ = random_orthogonal(X.shape[1], np.random.default_rng(self.random_state))
        qe = quantization_error((X @ self.rotation_.astype(np.float32)).astype(np.float64))
        self.quantization_error_ = qe
        return iter([FitStep(step=0, epoch=0.0, loss=qe, quantization_error=qe, terms={})])
