"""Sign quantizer: codes are the signs of the embeddings themselves (R = I) — the baseline every method beats."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from hashviz.quantize.base import BaseQuantizer, FitStep
from hashviz.retrieval.metrics import quantization_error


class SignQuantizer(BaseQuantizer):
    """R = I: ``encode(X)`` packs ``X >= 0``. ``fit_steps`` yields a single step (nothing to learn).

    ``preprocess`` only affects the reported quantization error's input (codes never depend on it).
    """

    name = "sign"
    label = "sign"

    def __init__(self, n_bits: int, *, preprocess: str = "sphere", random_state: int | None = 0) -> None:
        self.n_bits = n_bits
        self.preprocess = preprocess
        self.random_state = random_state

    def _steps(self, X: np.ndarray, y) -> Iterator[FitStep]:
        self.rotation_ = np.eye(X.shape[1])
        qe = quantization_error(X)
        self.quantization_error_ = qe
        return iter([FitStep(step=0, epoch=0.0, loss=qe, quantization_error=qe, terms={})])
