"""Codes & embeddings: maps of the continuous embeddings and of the binary codes before vs after rotation."""

import streamlit as st

from hashviz.session.maps import MapData, point_errors
from hashviz.ui import cache, maps, page, sidebar, views, widgets
from hashviz.ui.errors import attempt
from hashviz.ui.params import init_from_param, set_params

page.intro("Codes & embeddings", (
    "A rotation leaves Euclidean and cosine distances between embeddings unchanged, so a map of the continuous "
    "embeddings (first view) looks the same before and after it — what changes is the **codes**. The two maps "
    "below place codes by Hamming distance (UMAP with metric=\"hamming\"): sign codes can blur classes into each "
    "other where a learned rotation keeps them together — how much on this run, the purity numbers below say. "
    "Lasso points to see their images; click one point to ring its true nearest neighbours in code space."))

ctx = sidebar.context()
page.need_run(ctx)
key, n_bits = ctx.key, ctx.n_bits
emb = attempt(cache.embeddings, key, n_bits, what="loading the embeddings")
qs = attempt(cache.quantizers, key, n_bits, what="fitting quantizers")

c1, c2 = st.columns(2)
after_ids = [i for i in qs if i != "sign"]
init_from_param("hv_map_q", "after", str, after_ids)
after = c1.selectbox("Rotation for the “after” map", after_ids, format_func=lambda i: qs[i].label, key="hv_map_q")
colour = c2.radio("Colour by", ["class", "quantization error"], horizontal=True, key="hv_map_colour")
set_params(after=after)
views.purity_note(key, n_bits, after)
q_before, q_after = qs["sign"].quantizer, qs[after].quantizer
data = MapData.build(emb, q_before, q_after)
if data.subsampled:
    st.caption(f"Showing a seeded subsample of {len(data.rows):,} of {emb.n:,} points (WebGL above 10,000).")


def draw(xy, title, chart_key, anchor, bits=None, values=None, is_umap=True):
    if not is_umap:
        title += " — PCA" + (", UMAP computing…" if maps.umap_enabled() else "")
    ring = None if bits is None else data.ring(anchor, bits)
    # plotly greys the unselected points itself; the figure changes only when a click rings neighbours
    fig = maps.map_figure(xy, data.labels, tuple(emb.class_names), values, data.rows, anchor, title, ring,
                          "quantization error")
    st.plotly_chart(fig, key=chart_key, on_select=maps.on_select(chart_key),
                    selection_mode=("lasso", "box", "points"))


@st.fragment
def maps_and_selection():
    """Maps, selection grid and neighbours: a lasso reruns only this part of the page."""
    sel, anchor = maps.selection(emb.n)
    xy_z, umap_z = maps.layout(data.z, "euclidean")
    draw(xy_z, "continuous embeddings (Euclidean UMAP): identical before and after any rotation", "hv_map_z",
         anchor, is_umap=umap_z)
    xy_b, umap_b = maps.layout(data.bits_before, "hamming")
    xy_a, umap_a = maps.layout(data.bits_after, "hamming", reference=xy_b if umap_b else None,
                               pca_reference=None if umap_b else xy_b, umap=umap_b)
    by_error = colour != "class"
    left, right = st.columns(2)
    with left:
        draw(xy_b, "codes before: sign(z)", "hv_map_before", anchor, data.bits_before,
             point_errors(q_before, data.z) if by_error else None, umap_b)
    with right:
        draw(xy_a, f"codes after: {qs[after].label} (aligned to the left map)", "hv_map_after", anchor,
             data.bits_after, point_errors(q_after, data.z) if by_error else None, umap_a)
    if not (umap_z and umap_b and umap_a) and maps.umap_enabled():
        st.caption("UMAP is computing in a background process (about 15 s the first time in a fresh server, a few "
                   "seconds per map after); PCA is shown meanwhile. Layouts are cached on disk by content.")
        st.fragment(run_every=2.0)(maps.poll_pending)()
    widgets.selection_grid(key, n_bits, emb, sel)
    if anchor is not None:
        for name, bits in (("sign", data.bits_before), (qs[after].label, data.bits_after)):
            widgets.neighbour_grid(key, n_bits, name, anchor, *data.neighbours(anchor, bits))


maps_and_selection()

st.subheader("Two coordinates, before vs after")
views.coordinate_view(data, q_before, q_after, qs[after].label, n_bits)
