"""The hashing head: a small MLP from backbone features to ``n_bits`` continuous outputs.

The head standardises its input with the train split's per-feature mean and standard deviation (kept as buffers,
so they travel with the state_dict), then applies ``Linear → ReLU → Dropout`` for each hidden width and a final
``Linear`` to ``n_bits``. The outputs are raw: no tanh and no quantization term — the losses decide.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hashviz.errors import InvalidInputError


def _check_dims(in_dim: int, n_bits: int, hidden: Sequence[int], dropout: float) -> tuple[int, ...]:
    if int(in_dim) < 1:
        raise InvalidInputError(f"in_dim must be >= 1, got {in_dim}", "the width of the backbone features")
    if int(n_bits) < 1:
        raise InvalidInputError(f"n_bits must be >= 1, got {n_bits}", "hashing heads use 8..128 bits")
    hidden = tuple(int(h) for h in hidden)
    if any(h < 1 for h in hidden):
        raise InvalidInputError(f"hidden widths must be >= 1, got {hidden}", "e.g. hidden=(256,) or () for linear")
    if not 0.0 <= float(dropout) < 1.0:
        raise InvalidInputError(f"dropout must be in [0, 1), got {dropout}", "the default is 0.1")
    return hidden


class HashHead(nn.Module):
    """features (B, in_dim) → raw hash outputs (B, n_bits); ``hidden=()`` gives a linear head."""

    def __init__(self, in_dim: int, n_bits: int, hidden: Sequence[int] = (256,), dropout: float = 0.1) -> None:
        super().__init__()
        self.hidden = _check_dims(in_dim, n_bits, hidden, dropout)
        self.in_dim, self.n_bits, self.dropout = int(in_dim), int(n_bits), float(dropout)
        self.register_buffer("input_mean", torch.zeros(self.in_dim))
        self.register_buffer("input_scale", torch.ones(self.in_dim))
        layers: list[nn.Module] = []
        width = self.in_dim
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if self.dropout > 0:
                layers.append(nn.Dropout(self.dropout))
            width = h
        layers.append(nn.Linear(width, self.n_bits))
        self.net = nn.Sequential(*layers)

    @torch.no_grad()
    def set_input_stats(self, features: torch.Tensor) -> None:
        """Standardise inputs with these features' per-column mean and std (the train split's)."""
        x = torch.as_tensor(features, dtype=torch.float32)
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise InvalidInputError(f"features must be (n, {self.in_dim}), got {tuple(x.shape)}",
                                    "pass the backbone features of the train split")
        self.input_mean.copy_(x.mean(0))
        std = x.std(0, unbiased=False) if x.shape[0] > 1 else torch.ones(self.in_dim)
        self.input_scale.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.input_mean) / self.input_scale)

    def config(self) -> dict:
        """The constructor arguments (JSON-able), enough to rebuild the module before loading a state_dict."""
        return {"in_dim": self.in_dim, "n_bits": self.n_bits, "hidden": list(self.hidden), "dropout": self.dropout}
