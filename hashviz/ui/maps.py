"""Codes & embeddings views: layouts (PCA now, UMAP when ready), cached map figures and the selection state
(the data behind the maps is :mod:`hashviz.session.maps`)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from hashviz.ui.errors import attempt
from hashviz.viz import project as P

umap_enabled = P.umap_enabled
SEL, ANCHOR = "hv_sel", "hv_sel_anchor"  # selected rows (list of ints) and a clicked row (int) — choices only


def layout(X: np.ndarray, metric: str, reference: np.ndarray | None = None, pca_reference=None,
           umap: bool = True):
    """(layout, is_umap): the UMAP when cached/ready, else PCA at once (UMAP keeps computing in the background).
    ``umap=False``: PCA only, nothing started (e.g. while the layout it must align to is still computing)."""
    if umap:
        Y = attempt(P.request_layout, X, method="umap", metric=metric, reference=reference, stop=False,
                          what="computing UMAP")
        if Y is not None:
            return Y, True
    return P.project(X, method="pca", metric=metric, reference=pca_reference), False


@st.cache_resource(max_entries=48, show_spinner=False)
def map_figure(xy: np.ndarray, labels, class_names: tuple, values, index: np.ndarray, anchor, title: str,
               highlight, value_name: str):
    """:func:`hashviz.viz.figures.embedding_map`, cached by content: a lasso reruns the maps fragment, and
    rebuilding three 5,000-point figures (plotly validates every property) was most of its server time. The
    cached figure is never mutated (``st.plotly_chart`` serialises a copy)."""
    from hashviz.viz import figures

    return figures.embedding_map(xy, labels=labels, class_names=class_names, values=values, index=index,
                                 anchor=anchor, title=title, highlight=highlight, value_name=value_name)


def poll_pending() -> None:
    """Fragment body while UMAPs compute: a full rerun once the background work is done."""
    if P.jobs().running() == 0:
        st.rerun()


def on_select(chart_key: str):
    """An ``on_select`` callback storing the selected rows (flat ``customdata`` ids) in session state."""
    def callback() -> None:
        event = st.session_state.get(chart_key) or {}
        points = (event.get("selection") or {}).get("points") or []
        rows = []
        for p in points:
            cd = p.get("customdata")
            if isinstance(cd, list | tuple):
                cd = cd[0] if cd else None
            if cd is not None:
                rows.append(int(cd))
        rows = sorted(set(rows))
        st.session_state[SEL] = rows
        st.session_state[ANCHOR] = rows[0] if len(rows) == 1 else None
    return callback


def selection(n: int) -> tuple[list[int], int | None]:
    rows = [int(r) for r in st.session_state.get(SEL) or [] if 0 <= int(r) < n]
    anchor = st.session_state.get(ANCHOR)
    anchor = int(anchor) if anchor is not None and 0 <= int(anchor) < n else None
    return rows, anchor
