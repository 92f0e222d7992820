"""Compare: retrieval scores of every quantizer at every bit length, curves, bit statistics and exports."""

import streamlit as st

from hashviz.ui import cache, page, sidebar, views
from hashviz.ui.params import init_from_param, set_params

page.intro("Compare", (
    "One table with every quantizer (rows) at every code length (columns), scored query-vs-database exactly as "
    "the CLI does, with the protocol in each label — because Hamming distances tie massively, the tie policy can "
    "move mAP by whole points, so the optimistic…pessimistic spread is shown too. Below: mAP against bits, "
    "precision–recall by Hamming radius, bit balance and correlation, and exports that reproduce the numbers."))

ctx = sidebar.context()
page.need_run(ctx)
key, run, n_bits = ctx.key, ctx.run, ctx.n_bits

c1, c2, c3 = st.columns(3)
init_from_param("hv_cmp_k", "k", int, lo=1, hi=100_000)
st.session_state.setdefault("hv_cmp_k", 1000)
top_k = int(c1.number_input("k for mAP@k and P@k", 1, 100_000, key="hv_cmp_k"))
protocol, ties = views.protocol_selector(c2, key="hv_cmp_protocol", ties_key="hv_cmp_ties")
init_from_param("hv_cmp_r", "r", int, lo=0, hi=1024)
st.session_state.setdefault("hv_cmp_r", 2)
radius = int(c3.number_input("Hamming radius for P@r", 0, 1024, key="hv_cmp_r"))
set_params(k=top_k, r=radius)

rows, df = views.compare_table(key, run, top_k=top_k, ties=ties, radius=radius, protocol=protocol)
views.compare_grid(rows, df)
st.caption(f"Query vs database: {rows[0]['n_query']:,} queries, {rows[0]['n_database']:,} database items; "
           "quantizers fitted on the train split only; relevant = shares a label with the query."
           + (" Semantic similarity: 1 − (height of the lowest common ancestor / height of the root) in the "
              "dataset's label hierarchy, averaged over each query's top k — it rewards putting related classes "
              "next." if cache.class_similarity(key) is not None else ""))
st.page_link("pages/4_queries.py", label="The tie spread column, explained on one query: the tie group at the "
             "cut-off (Queries)", icon=":material/search:")

views.same_codes_every_protocol(key, n_bits)

qs = cache.quantizers(key, n_bits)
views.compare_curves(key, rows, ties, qs, n_bits)
emb = cache.embeddings(key, n_bits)

st.subheader("Export")
views.compare_exports(run, emb, qs, df, {"protocol": protocol, "top_k": top_k, "ties": ties, "radius": radius,
                                        "bit_lengths": list(run.bit_lengths)}, n_bits)
