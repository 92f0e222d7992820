"""Codes & embeddings: maps of the continuous embeddings and of the binary codes before vs after rotation."""

import numpy as np
import streamlit as st

from hashviz.quantize.base import sphere_rows
from hashviz.ui import maps, state, widgets
from hashviz.viz import figures
from hashviz.viz.project import MAX_POINTS, subsample, umap_enabled

state.intro("Codes & embeddings", (
    "A rotation leaves Euclidean and cosine distances between embeddings unchanged, so a map of the continuous "
    "embeddings (first view) looks the same before and after it — what changes is the **codes**. The two maps "
    "below place codes by Hamming distance (UMAP with metric=\"hamming\"): with sign alone, classes blur into each "
    "other; after a learned rotation, codes of one class sit together. Lasso points to see their images; click "
    "one point to ring its true nearest neighbours in code space."))

ctx = state.context()
state.need_run(ctx)
key, n_bits = ctx.key, ctx.n_bits
emb = state.attempt(state.embeddings, key, n_bits, what="loading the embeddings")
qs = state.attempt(state.quantizers, key, n_bits, what="fitting quantizers")
rows = subsample(emb.n, MAX_POINTS)
if len(rows) < emb.n:
    st.caption(f"Showing a seeded subsample of {len(rows):,} of {emb.n:,} points (WebGL above 10,000).")
z, labels = emb.z[rows], emb.labels[rows] if not emb.multilabel else None

c1, c2 = st.columns(2)
after_names = [n for n in qs if n != "sign"]
state.init_from_param("hv_map_q", "after", str, after_names)
after = c1.selectbox("Rotation for the “after” map", after_names, key="hv_map_q")
colour = c2.radio("Colour by", ["class", "quantization error"], horizontal=True, key="hv_map_colour")
state.set_params(after=after)
q_before, q_after = qs["sign"], qs[after]
bits_b, bits_a = maps.bits_of(q_before, z), maps.bits_of(q_after, z)

def draw(xy, title, chart_key, sel_anchor, codes=None, values=None, is_umap=True):
    anchor = sel_anchor[1]
    ring = None
    if anchor is not None and codes is not None and anchor in rows:
        ring = rows[maps.neighbours(codes, int(np.searchsorted(rows, anchor)))[0]]
    if not is_umap:
        title += " — PCA" + (", UMAP computing…" if umap_enabled() else "")
    # plotly greys the unselected points itself; the figure changes only when a click rings neighbours
    fig = maps.map_figure(xy, labels, tuple(emb.class_names), values, rows, anchor, title, ring, "quantization error")
    st.plotly_chart(fig, key=chart_key, on_select=maps.on_select(chart_key),
                    selection_mode=("lasso", "box", "points"))


@st.fragment
def maps_and_selection():
    """Maps, selection grid and neighbours: a lasso reruns only this part of the page."""
    sel_anchor = maps.selection(emb.n)
    sel, anchor = sel_anchor
    xy_z, umap_z = maps.layout(z, "euclidean")
    draw(xy_z, "continuous embeddings (Euclidean UMAP): identical before and after any rotation", "hv_map_z",
         sel_anchor, is_umap=umap_z)
    xy_b, umap_b = maps.layout(bits_b, "hamming")
    xy_a, umap_a = maps.layout(bits_a, "hamming", reference=xy_b if umap_b else None,
                               pca_reference=None if umap_b else xy_b, umap=umap_b)
    err_b = maps.per_point_error(q_before, z) if colour != "class" else None
    err_a = maps.per_point_error(q_after, z) if colour != "class" else None
    left, right = st.columns(2)
    with left:
        draw(xy_b, "codes before: sign(z)", "hv_map_before", sel_anchor, bits_b, err_b, umap_b)
    with right:
        draw(xy_a, f"codes after: {after} (aligned to the left map)", "hv_map_after", sel_anchor, bits_a, err_a,
             umap_a)
    if not (umap_z and umap_b and umap_a) and umap_enabled():
        st.caption("UMAP is computing in a background process (about 15 s the first time in a fresh server, a few "
                   "seconds per map after); PCA is shown meanwhile. Layouts are cached on disk by content.")
        st.fragment(run_every=2.0)(maps.poll_pending)()
    st.subheader("Selected images")
    if not sel:
        st.caption("Draw a lasso or a box around points in any map (or click one point) to see their images here.")
    else:
        shown = sel[:80]
        st.caption(f"{len(sel)} selected" + (f", first {len(shown)} shown" if len(sel) > len(shown) else ""))
        widgets.grid(state.thumbs(key, n_bits, shown, 48), size=48,
                     captions=[emb.class_names[emb.labels[r]] if not emb.multilabel else "" for r in shown])
    if anchor is not None:
        a = int(np.searchsorted(rows, anchor))
        for name, codes in (("sign", bits_b), (after, bits_a)):
            nb, dist = maps.neighbours(codes, a)
            st.markdown(f"**Nearest codes to point {anchor} with {name}** (Hamming distance):")
            rel = [bool(np.any(emb.labels[rows[i]] & emb.labels[anchor])) if emb.multilabel
                   else bool(emb.labels[rows[i]] == emb.labels[anchor]) for i in nb]
            widgets.grid(state.thumbs(key, n_bits, rows[nb], 48), size=48, captions=[f"d={d}" for d in dist],
                         relevant=rel)


maps_and_selection()

st.subheader("Two coordinates, before vs after")
i1, i2 = st.columns(2)
ci = int(i1.number_input("coordinate x", 0, n_bits - 1, 0, key="hv_coord_i"))
cj = int(i2.number_input("coordinate y", 0, n_bits - 1, min(1, n_bits - 1), key="hv_coord_j"))
st.plotly_chart(figures.coordinate_scatter(sphere_rows(q_before.transform(z)), sphere_rows(q_after.transform(z)),
                                           ci, cj, labels=labels, class_names=emb.class_names,
                                           titles=("sign (no rotation)", after)), key="hv_coords")
st.caption("Rows are rescaled to norm √n_bits; each bit is the sign of one coordinate, so points want to sit on "
           "the ±1 corners (×). The rotation moves them there without changing any distance between them.")
