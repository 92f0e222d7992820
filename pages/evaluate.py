"""Upload an embeddings file, fit quantizers on its train split and compare retrieval scores."""

import streamlit as st

from hashviz.embeddings import EXPECTED_LAYOUT, Embeddings
from hashviz.errors import HashvizError
from hashviz.evaluate import QUANTIZER_LABELS, evaluate, results_table

st.title("Evaluate embeddings")
st.markdown(
    "Bring continuous embeddings from any hashing network and see how much retrieval quality each quantizer keeps "
    "when it turns them into bits. A learned rotation (ITQ, or HQ's Householder product) costs nothing at query "
    "time, yet often recovers many mAP points that plain sign thresholding loses.")

upload = st.file_uploader("Embeddings file (.npz)", type=["npz"], help=EXPECTED_LAYOUT)
names = st.multiselect("Quantizers", list(QUANTIZER_LABELS), default=["sign", "itq", "hq"],
                       format_func=QUANTIZER_LABELS.get)
c1, c2, c3 = st.columns(3)
top_k = c1.number_input("k for mAP@k and P@k", 1, 100_000, 1000)
ties = c2.selectbox("Tie policy for equal Hamming distances", ["expected", "stable", "optimistic", "pessimistic"])
radius = c3.number_input("Hamming radius for P@r", 0, 1024, 2)

if upload is None:
    st.info("Upload an .npz to begin. " + EXPECTED_LAYOUT)
    st.stop()

try:
    emb = Embeddings.load(upload, name=upload.name)
except HashvizError as e:
    st.error(e.message)
    if e.hint:
        st.caption(e.hint)
    st.stop()

st.caption(f"{emb.n} rows, {emb.dim} dimensions = bits; {int(emb.mask('query').sum())} queries, "
           f"{int(emb.mask('database').sum())} database, {int(emb.mask('train').sum())} train rows; "
           f"{'multi' if emb.multilabel else 'single'}-label, {len(emb.class_names)} classes.")

if st.button("Evaluate", type="primary", disabled=not names):
    results = []
    progress = st.progress(0.0, text="fitting")
    try:
        for i, name in enumerate(names):
            progress.progress(i / len(names), text=f"fitting {QUANTIZER_LABELS[name]}")
            results.append(evaluate(emb, name, top_k=int(top_k), ties=ties, radius=int(radius)))
    except HashvizError as e:
        st.error(e.message)
        if e.hint:
            st.caption(e.hint)
        st.stop()
    progress.empty()
    st.dataframe(results_table(results), hide_index=True)
