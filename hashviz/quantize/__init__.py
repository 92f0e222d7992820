"""Quantizers: learn a rotation R of continuous embeddings so that codes = sign((X - mean) R) lose less.

``SignQuantizer`` (R = I), ``ITQQuantizer`` (Gong & Lazebnik 2011), ``HouseholderQuantizer`` (HQ, a product of
Householder reflections trained on a quantization loss), ``RandomSearchQuantizer`` (Pidhorskyi et al. 2018,
greedy Givens rotations on training mAP) and ``RandomRotationQuantizer`` (``rr``: one seeded Haar-random
rotation, the PCA-RR baseline). All follow :class:`Quantizer`; see ``docs/quantizers.md``.
Importing this package does not import torch (HQ imports it when fitting).
"""

from __future__ import annotations

import inspect

from hashviz.errors import InvalidInputError
from hashviz.quantize.base import BaseQuantizer, FitStep, Quantizer
from hashviz.quantize.householder import HouseholderQuantizer
from hashviz.quantize.itq import ITQQuantizer
from hashviz.quantize.random_rotation import RandomRotationQuantizer
from hashviz.quantize.random_search import RandomSearchQuantizer
from hashviz.quantize.sign import SignQuantizer
from hashviz.validate import unknown_choice

QUANTIZERS: dict[str, type[BaseQuantizer]] = {
    "sign": SignQuantizer,
    "itq": ITQQuantizer,
    "hq": HouseholderQuantizer,
    "random": RandomSearchQuantizer,
    "rr": RandomRotationQuantizer,
}


def quantizer_options(name: str) -> list[str]:
    """Keyword options of quantizer ``name`` (besides n_bits)."""
    cls = _lookup(name)
    return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "n_bits")]


def _lookup(name: str) -> type[BaseQuantizer]:
    try:
        return QUANTIZERS[name]
    except (KeyError, TypeError):
        raise unknown_choice(name, "quantizer", QUANTIZERS, hint=f"valid quantizers: {', '.join(QUANTIZERS)}") from None


def quantizer_label(name: str) -> str:
    """The display label of a registered quantizer ("hq" → "HQ"); unknown names come back unchanged."""
    cls = QUANTIZERS.get(name)
    return (cls.label or cls.name) if cls is not None else str(name)


def make_quantizer(name: str, n_bits: int, **options) -> BaseQuantizer:
    """``QUANTIZERS[name](n_bits, **options)`` with a clear error for unknown names and options."""
    cls = _lookup(name)
    valid = quantizer_options(name)
    unknown = [k for k in options if k not in valid]
    if unknown:
        raise InvalidInputError(f"quantizer {name!r} has no option {', '.join(map(repr, unknown))}",
                                f"valid options for {name!r}: {', '.join(valid)}")
    return cls(n_bits, **options)


__all__ = ["QUANTIZERS", "FitStep", "HouseholderQuantizer", "ITQQuantizer", "Quantizer", "RandomRotationQuantizer",
           "RandomSearchQuantizer", "SignQuantizer", "make_quantizer", "quantizer_label", "quantizer_options"]
