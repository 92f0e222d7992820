"""Compare: retrieval scores of every quantizer at every bit length, curves, bit statistics and exports."""

import json

import streamlit as st

from hashviz.retrieval.metrics import bit_balance, bit_correlation, precision_recall_by_radius
from hashviz.ui import compare, state
from hashviz.viz import figures

state.intro("Compare", (
    "One table with every quantizer at every code length, scored query-vs-database exactly as the CLI does, with "
    "the protocol in each label — because Hamming distances tie massively, the tie policy can move mAP by whole "
    "points, so the optimistic…pessimistic spread is shown too. Below: mAP against bits, precision–recall by "
    "Hamming radius, bit balance and correlation, and exports that reproduce the numbers."))

ctx = state.context()
state.need_run(ctx)
key, run = ctx.key, ctx.run

c1, c2, c3 = st.columns(3)
state.init_from_param("hv_cmp_k", "k", int)
st.session_state.setdefault("hv_cmp_k", 1000)
top_k = int(c1.number_input("k for mAP@k and P@k", 1, 100_000, key="hv_cmp_k"))
ties_all = ["expected", "stable", "optimistic", "pessimistic"]
state.init_from_param("hv_cmp_ties", "ties", str, ties_all)
ties = c2.selectbox("Tie policy", ties_all, key="hv_cmp_ties")
radius = int(c3.number_input("Hamming radius for P@r", 0, 64, 2, key="hv_cmp_r"))
state.set_params(k=top_k, ties=ties)


@st.cache_data(max_entries=256, show_spinner="scoring…")
def row(key, n_bits, label, top_k, ties, radius, stamp):
    q = state.quantizers(key, n_bits)[label]
    return compare.score(state.embeddings(key, n_bits), label, q, top_k=top_k, ties=ties, radius=radius,
                         similarity=state.class_similarity(key))


rows = []
for n_bits in run.bits:
    qs = state.attempt(state.quantizers, key, n_bits, what=f"fitting quantizers for {n_bits} bits")
    stamp = json.dumps(sorted(qs))
    rows += [state.attempt(row, key, n_bits, label, top_k, ties, radius, stamp, what="scoring") for label in qs]
df = compare.table(rows)
st.dataframe(df, hide_index=True, key="hv_cmp_table")
st.caption(f"Query vs database: {rows[0]['n_query']:,} queries, {rows[0]['n_database']:,} database items; "
           "quantizers fitted on the train split only; relevant = shares a label with the query."
           + (" Semantic similarity: 1 − (height of the lowest common ancestor / height of the root) in the "
              "dataset's label hierarchy, averaged over each query's top k — it rewards putting related classes "
              "next." if state.class_similarity(key) is not None else ""))

left, right = st.columns(2)
left.plotly_chart(figures.map_vs_bits(rows, label=f"mAP@all (ties {ties})"), key="hv_cmp_bits")
n_bits = ctx.n_bits
emb = state.embeddings(key, n_bits)
qs = state.quantizers(key, n_bits)
q, db = emb.part("query"), emb.part("database")
curves = {name: precision_recall_by_radius(qz.encode(q.z), qz.encode(db.z), q.labels, db.labels, n_bits=n_bits)
          for name, qz in qs.items()}
right.plotly_chart(figures.pr_by_radius(curves), key="hv_cmp_pr")
st.caption(f"Precision–recall, bit statistics and exports below are for the sidebar's {n_bits} bits.")
bits = {name: qz.transform(db.z) >= 0 for name, qz in qs.items()}
st.plotly_chart(figures.bit_balance_heatmap({n: bit_balance(b) for n, b in bits.items()}), key="hv_cmp_bal")
cols = st.columns(len(bits))
for col, (name, b) in zip(cols, bits.items()):
    col.plotly_chart(figures.bit_correlation_heatmap(bit_correlation(b), title=f"{name}: bit correlation"),
                     key=f"hv_cmp_corr_{name}")

st.subheader("Export")
params = {"top_k": top_k, "ties": ties, "radius": radius, "n_bits": list(run.bits)}
prov = compare.provenance(run.to_dict(), params, qs)
e1, e2, e3 = st.columns(3)
e1.download_button("Table (CSV)", df.to_csv(index=False).encode(), f"hashviz_{key}_compare.csv", "text/csv",
                   key="hv_dl_csv")
e2.download_button(f"Codes + rotations, {n_bits} bits (.npz)", compare.export_npz(emb, qs, {"provenance": prov}),
                   f"hashviz_{key}_{n_bits}bits.npz", "application/octet-stream", key="hv_dl_npz",
                   help="an embeddings file: upload it on Data & model to evaluate it again")
e3.download_button("Provenance (JSON)", json.dumps(prov, indent=1, default=str).encode(),
                   f"hashviz_{key}_provenance.json", "application/json", key="hv_dl_json")
