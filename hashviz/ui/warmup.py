"""Once per server, after the first page is drawn: import torch, run a few HQ steps and warm UMAP in a background
thread, so the first Start or map in a fresh server does not pay those one-off costs."""

from __future__ import annotations

import streamlit as st  # noqa: F401  (called from app.py)

from hashviz.session.live import warm_up_fitting
from hashviz.viz.project import warm_up as _warm_up


def warm_up() -> None:
    _warm_up(before=warm_up_fitting)
