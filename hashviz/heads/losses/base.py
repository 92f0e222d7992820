"""The contract every hashing-head training objective implements.

A :class:`HeadLoss` is one deep-hashing method's objective on the raw outputs ``h`` of a
:class:`~hashviz.heads.model.HashHead`. It is a ``torch.nn.Module`` so a method may own parameters (OrthoHash's
BatchNorm, a classifier layer); :func:`hashviz.heads.train.fit_head_steps` optimises them together with the head.

Life cycle (driven by ``fit_head_steps``)::

    loss = get_loss(name, n_bits, n_classes, multilabel=..., **options)
    loss.setup(features_train, labels_train, hierarchy=..., generator=g)   # optional, once
    for each mini-batch:  value, terms = loss(h, y, idx); value.backward()
    z = loss.embed(head(features))                                        # eval mode, all rows
    loss.extra(), loss.state_arrays()                                     # stored with the head

Training-free heads (``trainable = False``: PCA, LSH) skip the loop: ``init_head(head, features_train)`` sets
the weights of a linear head once, and nothing is optimised.

Shapes: ``h`` (B, n_bits) float; ``y`` (B, c) float one-hot or multi-hot; ``idx`` (B,) int64 row indices into the
train split (for methods with a memory of all train outputs, like DPSH).

Subclasses declare their options as keyword-only arguments of ``__init__`` with defaults and pass the rest to
``super().__init__``; an option no class in the chain knows raises :class:`~hashviz.errors.InvalidInputError`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from hashviz.errors import InvalidInputError


class HeadLoss(torch.nn.Module):
    """One deep-hashing method's training objective on head outputs. May own parameters (e.g. OrthoHash's BatchNorm)."""

    name: ClassVar[str]
    paper: ClassVar[str] = ""
    supports_multilabel: ClassVar[bool] = True
    needs_hierarchy: ClassVar[bool] = False
    aliases: ClassVar[tuple[str, ...]] = ()
    # quantizers fitted by default next to sign / ITQ / HQ for this method (its paper's own, e.g. SDSH's random
    # search rotation); ``prepare`` and the app add them
    paired_quantizers: ClassVar[tuple[str, ...]] = ()
    # False for the training-free heads (``pca``, ``lsh``): ``fit_head_steps`` makes a linear head, calls
    # :meth:`init_head` instead of optimising, and yields no steps; the training settings do not apply
    trainable: ClassVar[bool] = True
    # the loss option that weighs the pull towards binary codes (the λ of ``hashviz penalty``), None if none
    quantization_option: ClassVar[str | None] = None

    def __init__(self, n_bits: int, n_classes: int, *, multilabel: bool = False, **options: Any) -> None:
        super().__init__()
        if options:
            raise InvalidInputError(
                f"unknown option(s) for head method {getattr(self, 'name', type(self).__name__)!r}: "
                f"{', '.join(sorted(options))}",
                hint="check the spelling; each method's options are the keyword arguments of its class",
            )
        if int(n_bits) < 1:
            raise InvalidInputError(f"n_bits must be >= 1, got {n_bits}", hint="use 8..128 bits for hashing heads")
        if int(n_classes) < 2:
            raise InvalidInputError(
                f"a hashing head needs at least 2 classes, got {n_classes}", hint="check the dataset labels"
            )
        if multilabel and not self.supports_multilabel:
            raise InvalidInputError(
                f"head method {self.name!r} does not support multi-label data",
                hint="pick a method that supports multi-label data, e.g. 'cel'",
            )
        self.n_bits = int(n_bits)
        self.n_classes = int(n_classes)
        self.multilabel = bool(multilabel)

    def setup(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        *,
        hierarchy: Any = None,
        generator: torch.Generator | None = None,
        progress: Any = None,
    ) -> None:
        """Optional stage before training (centre generation, SHC's classifier + centre optimisation).

        labels: (n, c) float multi-hot/one-hot of the TRAIN split; features: (n, d) backbone features of the
        train split. ``progress(stage, done, total)`` may be called. Default: nothing.
        """

    def forward(self, h: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Return (scalar loss, {term name: float}) for raw head outputs ``h`` with labels ``y``."""
        raise NotImplementedError

    def init_head(self, head: Any, features: torch.Tensor, *, generator: torch.Generator | None = None) -> None:
        """Training-free heads only: set the weights of the linear ``head`` (a
        :class:`~hashviz.heads.model.HashHead` with no hidden layer) from the train split's features."""
        raise NotImplementedError

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        """Continuous embedding z from raw head outputs at inference (default: h)."""
        return h

    def extra(self) -> dict:
        """Optional JSON-able diagnostics stored with the head (e.g. centres, class similarity)."""
        return {}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Optional arrays to persist with the head (e.g. centres); default none."""
        return {}


def shared_label_similarity(y: torch.Tensor) -> torch.Tensor:
    """(B, B) bool: True where two rows share at least one label (the relevance used everywhere in hashviz)."""
    y = y.float()
    return (y @ y.T) > 0
