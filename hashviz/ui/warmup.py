"""Once per server, after the first page is drawn: import torch, run a few HQ steps, load the Hamming search kernel
and warm UMAP in a background thread, so the first Start, map click or query in a fresh server does not pay those
one-off costs."""

from __future__ import annotations

import streamlit as st  # noqa: F401  (called from app.py)

from hashviz.session.live import warm_up_fitting
from hashviz.viz.layout_jobs import warm_up as _warm_up


def _warm_up_search() -> None:
    """Load the top-k kernel (a map click's neighbours, the Queries page): ~0.8 s on its first use in a process."""
    import numpy as np

    from hashviz.retrieval.search import top_k

    codes = np.arange(64, dtype=np.uint8).reshape(32, 2)
    top_k(codes[:2], codes, 3)


def _warm_up_all() -> None:
    warm_up_fitting()
    _warm_up_search()


def warm_up() -> None:
    _warm_up(before=_warm_up_all)
