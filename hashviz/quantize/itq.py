"""Iterative quantization (ITQ). Gong & Lazebnik, "Iterative Quantization: A Procrustean Approach to Learning
Binary Codes", CVPR 2011.

Minimise ||B - V R||_F^2 over codes B in {-1, +1}^(n x d) and orthogonal R by alternating
  B = sgn(V R)                                  (optimal B for fixed R)
  R = U W^T  where  V^T B = U S W^T             (orthogonal Procrustes: optimal R for fixed B)
From ||B - V R||^2 = nd + ||V||^2 - 2 <R, V^T B>, the maximiser of <R, U S W^T> over orthogonal R is U W^T.
(Using W U^T — the transposed update — is a known bug in published evaluation code; it does not decrease the
objective.) Each half-step can only lower the objective, so the quantization error never rises between
iterations (up to float32 rounding). The same identity gives every objective value from the d x d matrix
V^T B, so an iteration costs two thin matmuls (V R and V^T B), one sign and a d x d SVD.

Here V are the embeddings themselves (already n_bits wide; no PCA), by default with rows rescaled to norm
sqrt(n_bits) like HQ (``preprocess="sphere"``), so that ITQ's objective / (n d) *is* the quantization error of
DESIGN.md and both methods minimise the same number. ``center=True`` subtracts the training mean first (the
original ITQ works on centred PCA projections); the default keeps the head's threshold at 0, as HQ does.
Float32 matmuls in torch on one thread (see :data:`hashviz.quantize.objectives.TORCH_THREADS`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from hashviz.quantize.base import BaseQuantizer, FitStep, random_orthogonal
from hashviz.retrieval.metrics import quantization_error
from hashviz.validate import check_int


class ITQQuantizer(BaseQuantizer):
    """ITQ rotation: random orthogonal start from the seeded generator, ``n_iter`` alternations (float32).

    ``fit_steps`` yields one :class:`FitStep` per iteration k, describing R_k: ``loss`` = ``||sgn(V R_k) -
    V R_k||^2 / (n d)`` (equal to ``quantization_error`` with ``preprocess="sphere"``), ``terms`` =
    ``{"before": the same for R_(k-1), "procrustes": ||B_k - V R_k||^2 / (n d)}`` with B_k = sgn(V R_(k-1)),
    so ``before >= procrustes >= loss`` holds at every step.
    """

    name = "itq"
    label = "ITQ"

    def __init__(self, n_bits: int, *, n_iter: int = 50, preprocess: str = "sphere", center: bool = False,
                 random_state: int | None = 0) -> None:
        self.n_bits = n_bits
        self.n_iter = n_iter
        self.preprocess = preprocess
        self.center = center
        self.random_state = random_state

    def _steps(self, X: np.ndarray, y) -> Iterator[FitStep]:
        check_int(self.n_iter, "n_iter", lo=0, hint="the paper uses 50")
        rng = np.random.default_rng(self.random_state)
        self.rotation_ = random_orthogonal(X.shape[1], rng)
        self.n_iter_ = 0
        return self._iterate(X)

    def _iterate(self, V: np.ndarray) -> Iterator[FitStep]:
        import torch

        from hashviz.quantize.objectives import sign_gram, torch_threads

        n, d = V.shape
        sphere = self.preprocess == "sphere"
        nd = float(n * d)
        const = nd + float(np.square(V, dtype=np.float64).sum())     # ||B||^2 + ||V||^2
        Vt = torch.from_numpy(V)

        def objective(R: np.ndarray, C: np.ndarray) -> float:      # ||B - V R||^2 / (nd) with C = V^T B
            return max(0.0, (const - 2.0 * float(np.sum(R * C))) / nd)

        with torch_threads():
            R = self.rotation_
            C = sign_gram(Vt, torch.from_numpy(R.astype(np.float32)))[0].double().numpy()    # V^T B_1
            before = objective(R, C)
            for k in range(1, int(self.n_iter) + 1):
                U, s, Wt = (t.numpy() for t in torch.linalg.svd(torch.from_numpy(C)))   # V^T B_k = U S W^T
                R = U @ Wt                                          # argmax <R, V^T B_k>: minimises ||B_k - V R||
                procrustes = max(0.0, (const - 2.0 * float(s.sum())) / nd)
                R32 = torch.from_numpy(R.astype(np.float32))
                C = sign_gram(Vt, R32)[0].double().numpy()             # V^T B_(k+1), B_(k+1) = sgn(V R_k)
                loss = objective(R, C)
                qe = loss if sphere else quantization_error((Vt @ R32).numpy())
                self.rotation_, self.n_iter_ = R, k
                self.loss_ = loss
                self.quantization_error_ = qe
                yield FitStep(step=k, epoch=float(k), loss=loss, quantization_error=qe,
                              terms={"before": before, "procrustes": procrustes})
                before = loss
