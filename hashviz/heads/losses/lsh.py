"""LSH — a seeded Gaussian random projection of the centred backbone features, no training.

Sign random projections: Charikar, "Similarity Estimation Techniques from Rounding Algorithms", STOC 2002 (the
bits of sign(W x) with Gaussian W agree with probability 1 − θ/π, θ the angle between two inputs); centred as
the baselines of Gong & Lazebnik (CVPR 2011) are.

    μ = mean of the train features,   W_kj ~ N(0, 1) i.i.d. (K × d, drawn from the run's seed)
    h = W (x − μ)

Unlike PCA, every bit sees a random mix of all directions, so the bits are balanced in variance but not aligned
with the data: the floor every learned head and rotation should beat.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from hashviz.heads.losses import register
from hashviz.heads.losses.projection import ProjectionHead


@register
class LSHHead(ProjectionHead):
    """W with i.i.d. standard normal entries from the head's seeded generator."""

    name: ClassVar[str] = "lsh"
    paper: ClassVar[str] = ("Charikar, Similarity Estimation Techniques from Rounding Algorithms, STOC 2002 "
                            "(sign random projections; training-free)")

    def projection(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((self.n_bits, x.shape[1]))
