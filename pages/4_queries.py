"""Queries: the top-k images of one query for every bit length × quantizer."""

import streamlit as st

from hashviz.ui import cache, maps, page, sidebar, views, widgets
from hashviz.ui.errors import attempt
from hashviz.ui.params import init_from_param, set_params
from hashviz.ui.text import md_escape

page.intro("Queries", (
    "Retrieval with hashing returns the database items whose codes are closest in Hamming distance. Each row "
    "below is one code length and each column one quantizer, so you can see where shorter codes or plain sign "
    "thresholds start returning wrong images (red ✗) and how much a learned rotation fixes — with the query's "
    "average precision (AP) above each list. Hover an image for its code."))

ctx = sidebar.context()
page.need_run(ctx)
key, run = ctx.key, ctx.run
emb = attempt(cache.embeddings, key, ctx.n_bits, what="loading the embeddings")

c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
init_from_param("hv_q_mode", "mode", str, list(views.QUERY_MODES))
mode = c1.radio("Query", list(views.QUERY_MODES), format_func=views.QUERY_MODES.get, key="hv_q_mode")
init_from_param("hv_q_seed", "seed", int, lo=0, hi=100_000)
st.session_state.setdefault("hv_q_seed", 0)
seed = int(c2.number_input("Query number (changes the pick)", 0, 100_000, key="hv_q_seed",
                           help="with “where two quantizers differ most”: 0 = the largest difference, 1 = the next…"))
cls = None
if mode == "class" and not emb.multilabel:
    cls = c2.selectbox("Class", range(len(emb.class_names)), format_func=lambda c: emb.class_names[c])
init_from_param("hv_q_k", "k", int, lo=1, hi=100)
st.session_state.setdefault("hv_q_k", 10)
k = int(c3.number_input("k", 1, 100, key="hv_q_k"))
protocol, ties = views.protocol_selector(c4, key="hv_q_protocol", ties_key="hv_q_ties",
                                        tie_choices=(views.OWN_TIES, *views.DISPLAY_TIES))
selected, anchor = maps.selection(emb.n)
if mode == "selected" and anchor is None and not selected:
    st.info("No point is selected: click a point on **Codes & embeddings** first. Showing a random query.")
if mode == "differ":
    query = widgets.differ_query(key, ctx.n_bits, seed, st.columns([1, 1, 2])[:2])
else:
    query = views.choose_query(emb, mode, seed=seed, class_index=cls, selected=selected, anchor=anchor)
set_params(mode=mode, seed=seed, k=k, ties=ties, query=query)

qc1, qc2 = st.columns([1, 6])
with qc1:
    widgets.grid(cache.thumbs(key, ctx.n_bits, [query], 96), size=96, captions=[f"query {query}"])
qc2.markdown(f"**Query {query}** · class **{md_escape(widgets.class_text(emb, query))}** · split: "
             f"{['train', 'query', 'database'][emb.split[query]]} · ranked against "
             f"{int(emb.mask('database').sum()):,} database items (itself excluded) · protocol `{protocol}`, ties: "
             f"`{ties or 'its own'}`")

with st.expander(f"Beyond the top {k}: where the relevant items are ranked ({ctx.n_bits} bits)",
                 expanded=mode == "differ"):
    widgets.rank_strip(key, ctx.n_bits, query, k, ties, seed)
st.markdown(widgets.TIES_TEXT)

for n_bits in run.bit_lengths:
    widgets.ranking_row(key, n_bits, query, k, ties, seed, protocol=protocol)
