"""Queries: the top-k images of one query for every bit length × quantizer."""

import numpy as np
import streamlit as st

from hashviz.ui import maps, state, widgets
from hashviz.ui.browse import DISPLAY_TIES, pick_query, rank
from hashviz.viz.images import bit_string

state.intro("Queries", (
    "Retrieval with hashing returns the database items whose codes are closest in Hamming distance. Each row "
    "below is one code length and each column one quantizer, so you can see where shorter codes or plain sign "
    "thresholds start returning wrong images (red ✗) and how much a learned rotation fixes — with the query's "
    "average precision (AP) above each list. Hover an image for its code."))

ctx = state.context()
state.need_run(ctx)
key, run = ctx.key, ctx.run
emb = state.attempt(state.embeddings, key, ctx.n_bits, what="loading the embeddings")

c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
modes = {"random": "random query", "class": "a query of one class", "selected": "the point selected on the map"}
state.init_from_param("hv_q_mode", "mode", str, list(modes))
mode = c1.radio("Query", list(modes), format_func=modes.get, key="hv_q_mode")
state.init_from_param("hv_q_seed", "seed", int)
st.session_state.setdefault("hv_q_seed", 0)
seed = int(c2.number_input("Query number (changes the pick)", 0, 100_000, key="hv_q_seed"))
cls = None
if mode == "class" and not emb.multilabel:
    cls = c2.selectbox("Class", range(len(emb.class_names)), format_func=lambda c: emb.class_names[c])
state.init_from_param("hv_q_k", "k", int)
st.session_state.setdefault("hv_q_k", 10)
k = int(c3.number_input("k", 1, 100, key="hv_q_k"))
state.init_from_param("hv_q_ties", "ties", str, list(DISPLAY_TIES))
ties = c4.selectbox("Ties", DISPLAY_TIES, key="hv_q_ties", help="order inside equal Hamming distances; "
                    "'expected' shows database order and reports the exact expected AP over random orders")
selected, anchor = maps.selection(emb.n)
if mode == "selected" and anchor is None and not selected:
    st.info("No point is selected: click a point on **Codes & embeddings** first. Showing a random query.")
query = (anchor if anchor is not None else selected[0]) if mode == "selected" and (anchor is not None or selected) \
    else pick_query(emb, mode, seed=seed, class_index=cls)
state.set_params(mode=mode, seed=seed, k=k, ties=ties, query=query)

qc1, qc2 = st.columns([1, 6])
with qc1:
    widgets.grid(state.thumbs(key, ctx.n_bits, [query], 96), size=96, captions=[f"query {query}"])
qc2.markdown(f"**Query {query}** · class **{emb.class_names[emb.labels[query]] if not emb.multilabel else '—'}** · "
             f"split: {['train', 'query', 'database'][emb.split[query]]} · ranked against "
             f"{int(emb.mask('database').sum()):,} database items (itself excluded) · ties: `{ties}`")

for n_bits in run.bits:
    e = state.embeddings(key, n_bits)
    qs = state.attempt(state.quantizers, key, n_bits, what=f"fitting quantizers for {n_bits} bits")
    st.markdown(f"#### {n_bits} bits")
    cols = st.columns(len(qs))
    for col, (name, q) in zip(cols, qs.items()):
        r = state.attempt(rank, e, q, query, k, ties, seed, what="ranking")
        with col:
            ap = "–" if np.isnan(r.ap) else f"{r.ap:.3f}"
            st.markdown(f"**{name}** · AP {ap} · {int(r.relevant.sum())}/{len(r.rows)} ✓")
            tips = [f"distance {d} · code {bit_string(b)}" for d, b in zip(r.distances, r.bits)]
            widgets.grid(state.thumbs(key, n_bits, r.rows, 44), size=44, captions=[f"d={d}" for d in r.distances],
                         relevant=list(r.relevant), tooltips=tips)
            st.caption(f"query code: {bit_string(r.query_bits)}")
