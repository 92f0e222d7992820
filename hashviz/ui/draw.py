"""The "Your own image" page's Streamlit parts: the canvas (``streamlit-drawable-canvas``) or an upload, the run's
image pipeline (cached per home and run), the codes and neighbours per bit length × quantizer, and the drawn
point on the codes map. The work is :mod:`hashviz.session.query_image` (shared with ``hashviz query``)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from hashviz.ui import cache, maps, widgets
from hashviz.ui.errors import attempt
from hashviz.ui.params import init_from_param, set_params
from hashviz.ui.text import md_escape

CANVAS, SOURCE, UPLOAD, TOP_K, MAP_Q = "hv_draw_canvas", "hv_draw_source", "hv_draw_upload", "hv_draw_k", "hv_draw_map"
CANVAS_SIZE, STROKE = 280, 22  # a 22 px pen on 280 px gives MNIST's stroke width once the digit is 20 px tall
SOURCES = {"draw": "draw a digit", "upload": "upload an image"}
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp"]


@st.cache_resource(max_entries=4, show_spinner="loading the run's backbone and hashing heads…")
def _model(home: str, key: str):
    from hashviz.session.query_image import load_run_model

    return load_run_model(home, key)


def need_model(key: str):
    """The run's image pipeline; for an embeddings-file run (no backbone, no head) a clear message, then stop."""
    return attempt(_model, cache.home(), key, what="loading the run's backbone and heads")


@st.cache_resource(max_entries=64, show_spinner=False)
def _database(home: str, key: str, n_bits: int, qid: str, stamp: str, _fitted):
    """Database codes of one quantizer (keyed by its id and stamp; the FittedQuantizer itself is not hashed)."""
    from hashviz.session.query_image import database_codes

    return database_codes(cache.embeddings(key, n_bits), _fitted.quantizer)


def image_input(recipe) -> tuple[bytes | None, str]:
    """(image bytes, how messages name them): the canvas for digit datasets (or an upload), else an upload."""
    source = "upload"
    if recipe.drawable:
        init_from_param(SOURCE, "source", str, list(SOURCES))
        source = st.radio("Your image", list(SOURCES), format_func=SOURCES.get, horizontal=True, key=SOURCE)
        set_params(source=source)
    if source == "draw":
        from streamlit_drawable_canvas import st_canvas

        st.space("small")  # room for the canvas toolbar, which floats above its top edge

        res = st_canvas(stroke_width=STROKE, stroke_color="#000000", background_color="#FFFFFF",
                        width=CANVAS_SIZE, height=CANVAS_SIZE, drawing_mode="freedraw", return_image_data=True,
                        update_streamlit=True, key=CANVAS)
        if not (res.json_data or {}).get("objects"):
            st.caption("Draw one digit with the mouse, large and centred; the codes appear when you let go. The "
                       "toolbar under the canvas undoes a stroke or clears it.")
            return None, ""
        return res.image_bytes, "your drawing"
    up = st.file_uploader("An image (PNG, JPEG, GIF, BMP, WebP; any size, dark on light or light on dark)",
                          type=UPLOAD_TYPES, key=UPLOAD)
    if up is None:
        st.caption("Choose a picture: it is prepared like the run's dataset images (" + recipe.describe() + ").")
        return None, ""
    return up.getvalue(), up.name


def top_k() -> int:
    init_from_param(TOP_K, "k", int, lo=1, hi=50)
    st.session_state.setdefault(TOP_K, 10)
    k = int(st.number_input("Neighbours shown (k)", 1, 50, key=TOP_K))
    set_params(k=k)
    return k


def run_inputs(run) -> tuple[dict, dict, dict]:
    """(n_bits → embeddings, n_bits → {id: FittedQuantizer}, n_bits → {id: database codes}) of the run for every
    bit length: sign, ITQ, HQ, the quantizers ``prepare`` stored (their names come from the run's config, which
    saves re-reading the run from the store once per bit length on every drawing) and every live fit."""
    home, key = cache.home(), run.key
    names = tuple(dict.fromkeys(("sign", "itq", "hq") + tuple(run.config.get("quantizers") or ())))
    embs = {b: cache.embeddings(key, b) for b in run.bit_lengths}
    qs = {b: cache.quantizers(key, b, names) for b in run.bit_lengths}
    db = {b: {qid: _database(home, key, int(b), qid, cache.stamp(f), f) for qid, f in qs[b].items()}
          for b in run.bit_lengths}
    return embs, qs, db


def run_query(key: str, data: bytes, name: str, k: int, inputs):
    """:func:`hashviz.session.query_image.query_image` on :func:`run_inputs` (the database codes cached per
    quantizer)."""
    from hashviz.session.query_image import query_image

    embs, qs, db = inputs
    return query_image(_model(cache.home(), key), data, embs, qs, k=k, name=name, database=db)


def seen(result, recipe) -> None:
    """The image the backbone gets, enlarged pixel for pixel."""
    h, w = result.image.shape[:2]
    widgets.grid(np.asarray([result.image]), size=168, captions=[f"what the network sees ({w}×{h})"])
    st.caption(recipe.describe().capitalize() + ".")


def results(key: str, result, class_names) -> None:
    """Per bit length, one column per quantizer: the code, the majority class and the top k with distances."""
    for n_bits in result.z:
        rs = [r for r in result.results if r.n_bits == n_bits]
        st.markdown(f"#### {n_bits} bits")
        for col, r in zip(st.columns(len(rs)), rs):
            classes = [r.class_text(class_names, i) for i in range(len(r.rows))]
            with col:
                st.markdown(f"**{md_escape(r.label)}** · predicted **{md_escape(r.predicted_text(class_names))}** "
                            f"({r.votes} of {len(r.rows)})")
                widgets.grid(cache.thumbs(key, n_bits, r.rows, 44), size=44,
                             captions=[f"{c} d={d}" for c, d in zip(classes, r.distances)],
                             tooltips=[f"index {i} · class {c} · distance {d}"
                                       for i, c, d in zip(r.ids, classes, r.distances)])
                st.caption(f"code: `{r.code}`")


def query_map(key: str, n_bits: int, result, inputs) -> None:
    """The codes map of Codes & embeddings (same points, same cached layout) with the image placed on it by
    nearest neighbours in code space (:func:`hashviz.viz.placement.place_by_neighbours`), its top k ringed."""
    import plotly.graph_objects as go

    from hashviz.session.maps import MapData
    from hashviz.viz.figures import NEUTRAL
    from hashviz.viz.placement import place_by_neighbours

    emb, qs = inputs[0][n_bits], inputs[1][n_bits]
    ids = list(qs)
    init_from_param(MAP_Q, "map", str, ids)
    if st.session_state.get(MAP_Q) not in ids:
        st.session_state[MAP_Q] = "hq" if "hq" in ids else ids[0]
    qid = st.selectbox("Codes map of", ids, format_func=lambda i: qs[i].label, key=MAP_Q,
                       help="sign = the “before” map of Codes & embeddings; a rotation = its “after” map")
    set_params(map=qid)
    data = MapData.build(emb, qs["sign"].quantizer, qs[qid].quantizer)
    lay = maps.layout(data.bits_before, "hamming", "codes before")
    layouts, bits = [lay], data.bits_before
    if qid != "sign":
        before = lay
        lay = maps.layout(data.bits_after, "hamming", "codes after", reference=before.xy if before.is_umap else None,
                          pca_reference=None if before.is_umap else before.xy, umap=before.is_umap,
                          waits="codes before")
        layouts, bits = [before, lay], data.bits_after
    xy, is_umap = lay.xy, lay.is_umap
    r = result.result(n_bits, qid)
    place = place_by_neighbours(r.bits, bits, xy)
    title = f"{n_bits}-bit codes, {qs[qid].label}" + ("" if is_umap else " — PCA" + (
        ", UMAP computing…" if maps.umap_enabled() else ""))
    st.markdown(f"**{md_escape(title)}**")
    # the map itself is the cached figure (the same for every drawing); rings and the star are added to a copy
    base = maps.map_figure(xy, data.class_labels, tuple(emb.class_names), None, None, data.rows, None, None, None,
                           bits, None, "")
    fig = go.Figure(base)
    shown = [p for p in (data.position(int(row)) for row in r.rows) if p is not None]
    if shown:
        fig.add_trace(go.Scatter(x=xy[shown, 0], y=xy[shown, 1], mode="markers", name=f"its top {len(r.rows)}",
                                 marker=dict(size=11, color="rgba(0,0,0,0)", line=dict(color=NEUTRAL, width=2)),
                                 hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[place.xy[0]], y=[place.xy[1]], mode="markers", name="your image",
                             marker=dict(size=20, symbol="star", color="#F0E442", line=dict(color=NEUTRAL, width=2)),
                             hovertemplate="your image<extra></extra>"))
    st.plotly_chart(fig, key="hv_draw_map_chart")
    how = (f"at the point of the {len(place.rows)} map codes equal to its code" if place.exact else
           f"at the mean position of its {len(place.rows)} nearest map codes (Hamming distance "
           f"{', '.join(map(str, place.distances))})")
    st.caption(f"Placed by nearest neighbours in code space, {how}; its top {len(r.rows)} are ringed where the map "
               "shows them. The layout is the one Codes & embeddings draws (UMAP of the codes with "
               "metric=\"hamming\", cached on disk); UMAP's own transform is not used, because the fitted UMAP "
               "model is not kept and refitting would move every point.")
    maps.progress(layouts)


def class_names(key: str, n_bits: int) -> tuple[str, ...]:
    return tuple(cache.embeddings(key, n_bits).class_names)
