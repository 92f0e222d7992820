"""Hashing heads: a small MLP (``model.HashHead``) trained on cached backbone features with one of the
objectives in ``losses/`` (``train.fit_head_steps`` → ``Iterator[TrainStep]``).

Names are imported lazily (``from hashviz.heads import fit_head_steps`` works) so importing a submodule such as
``hashviz.heads.centers`` does not pull in the training code.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "HashHead": "hashviz.heads.model",
    "TrainStep": "hashviz.heads.train",
    "HeadResult": "hashviz.heads.train",
    "HeadTraining": "hashviz.heads.train",
    "fit_head_steps": "hashviz.heads.train",
    "fit_head": "hashviz.heads.train",
    "embed_features": "hashviz.heads.train",
    "load_head": "hashviz.heads.train",
    "HeadLoss": "hashviz.heads.losses",
    "get_loss": "hashviz.heads.losses",
    "list_methods": "hashviz.heads.losses",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hashviz.heads' has no attribute {name!r}")
