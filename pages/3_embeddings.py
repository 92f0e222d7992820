"""Codes & embeddings: maps of the continuous embeddings and of the binary codes before vs after rotation."""

import streamlit as st

from hashviz.ui import cache, maps, page, sidebar, views
from hashviz.ui.errors import attempt
from hashviz.ui.params import init_from_param, set_params
from hashviz.ui.text import md_escape

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

c1, c2, c3 = st.columns([2, 2, 3])
after_ids = [i for i in qs if i != "sign"]
init_from_param("hv_map_q", "after", str, after_ids)
after = c1.selectbox("Rotation for the “after” map", after_ids, format_func=lambda i: qs[i].label, key="hv_map_q")
colour = c2.radio("Colour by", ["class", "quantization error"], horizontal=True, key="hv_map_colour")
classes = list(range(len(emb.class_names)))
shown = c3.multiselect("Show only these classes (others grey)", classes, format_func=lambda c: emb.class_names[c],
                       key="hv_map_classes", placeholder="all classes")
set_params(after=after)
purity_slot = st.empty()  # filled once the maps are drawn (the purity numbers take a moment at 10,000 points)
q_before, q_after = qs["sign"].quantizer, qs[after].quantizer
data = attempt(cache.map_data, key, n_bits, qs[after], what="encoding the map's points")
if data.subsampled:
    st.caption(f"Maps show a seeded subsample of {len(data.rows):,} of {emb.n:,} points (the same rows in every "
               "map; a UMAP's cost grows with its points). Scores on the other pages use every row.")


def draw(lay, title, chart_key, sel, anchor, bits=None, values=None, value_range=None):
    st.markdown(f"**{md_escape(title)}**" + ("" if lay.is_umap else " — PCA" + (", UMAP computing…" if
                                                                               maps.umap_enabled() else "")))
    ring = None if bits is None or anchor is None else data.ring(anchor, bits)
    fig = maps.map_figure(lay.xy, data.class_labels, tuple(emb.class_names), values, value_range, data.rows, anchor,
                          None if ring is None else tuple(int(r) for r in ring), tuple(sel) if sel else None, bits,
                          tuple(shown) if shown else None, "quantization error")
    st.plotly_chart(fig, key=chart_key, on_select=maps.on_select(chart_key),
                    selection_mode=("lasso", "box", "points"))


@st.fragment
def maps_and_selection():
    """Maps, selection grid and neighbours: a lasso or a click reruns only this part of the page."""
    sel, anchor = maps.selection(emb.n)
    # the code maps first (the worker takes layouts in order); "after" starts from and aligns to "before"
    lay_b = maps.layout(data.bits_before, "hamming", "codes before")
    lay_a = maps.layout(data.bits_after, "hamming", "codes after", reference=lay_b.xy if lay_b.is_umap else None,
                        pca_reference=None if lay_b.is_umap else lay_b.xy, umap=lay_b.is_umap, waits="codes before")
    lay_z = maps.layout(data.z, "euclidean", "continuous embeddings", umap=lay_b.is_umap or lay_b.key is None,
                        waits="codes before")
    draw(lay_z, "continuous embeddings (Euclidean UMAP): identical before and after any rotation", "hv_map_z",
         sel, anchor)
    values = value_range = None
    if colour != "class":
        values = (maps.point_errors(q_before, data.z), maps.point_errors(q_after, data.z))
        value_range = (float(min(v.min() for v in values)), float(max(v.max() for v in values)))
    left, right = st.columns(2)
    with left:
        draw(lay_b, "codes before: sign(z)", "hv_map_before", sel, anchor, data.bits_before,
             None if values is None else values[0], value_range)
    with right:
        draw(lay_a, f"codes after: {qs[after].label} (aligned to the left map)", "hv_map_after", sel, anchor,
             data.bits_after, None if values is None else values[1], value_range)
    maps.progress([lay_b, lay_a, lay_z])
    maps.enable_click_select()
    views.selection_panel(key, n_bits, emb, sel, q_before, q_after, qs[after].label)
    if anchor is not None:
        views.clicked_point(key, n_bits, data, anchor, q_before, q_after, qs[after].label)


maps_and_selection()
views.purity_note(key, n_bits, after, where=purity_slot)

st.subheader("Two coordinates, before vs after")
views.coordinate_view(data, q_before, q_after, qs[after].label, n_bits)
