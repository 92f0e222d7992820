"""Training-free heads: a fixed linear projection of the backbone features, set once from the train split.

Shared by ``pca`` and ``lsh``. The head is a :class:`~hashviz.heads.model.HashHead` with no hidden layer and no
dropout: ``h = W (x − μ)`` with μ the train split's feature mean (the head's ``input_mean`` buffer, its
``input_scale`` left at 1 so the projection sees the raw centred features) and W (n_bits × d) set by the
subclass's :meth:`ProjectionHead.projection`. Nothing is optimised: ``fit_head_steps`` yields no step, and the
stored head is an ordinary state_dict, so every page and command that uses heads works on these too.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from hashviz.errors import InvalidInputError
from hashviz.heads.losses.base import HeadLoss


class ProjectionHead(HeadLoss):
    """Base of the training-free heads (not registered itself)."""

    trainable: ClassVar[bool] = False

    def projection(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """W (n_bits, d) float64 from the centred train features ``x`` (n, d) float64."""
        raise NotImplementedError

    def init_head(self, head: Any, features: torch.Tensor, *, generator: torch.Generator | None = None) -> None:
        from hashviz.heads.centers import rng_from_generator

        x = features.detach().double().cpu().numpy()
        mean = x.mean(axis=0)
        w = self.projection(x - mean, rng_from_generator(generator))
        if w.shape != (self.n_bits, x.shape[1]) or not np.isfinite(w).all():  # pragma: no cover - internal
            raise InvalidInputError(f"{self.name}: the projection came out {w.shape}", "report this as a bug")
        linear = head.net[0]
        with torch.no_grad():
            head.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            head.input_scale.fill_(1.0)
            linear.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
            linear.bias.zero_()
        self._explained = self.explained(x - mean, w)

    def explained(self, xc: np.ndarray, w: np.ndarray) -> dict:
        return {}

    def extra(self) -> dict:
        return dict(getattr(self, "_explained", {}))

    def forward(self, h: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        raise InvalidInputError(f"head method {self.name!r} is training-free: it has no loss to optimise",
                                "fit_head_steps sets its projection from the train features")
