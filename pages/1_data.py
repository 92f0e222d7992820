"""Data & model: pick a dataset, a pretrained backbone, a hashing head and bit lengths, and prepare them."""

import streamlit as st

from hashviz.ui import cache, page, sidebar, views, widgets
from hashviz.ui.errors import attempt
from hashviz.ui.text import md_escape

page.intro("Data & model", (
    "Deep hashing turns each image into a short binary code: a pretrained network extracts features, a hashing "
    "head maps them to continuous embeddings with one dimension per bit, and a quantizer snaps those to bits. "
    "Prepare a dataset, a backbone and a head here once; every other page then works on the stored result."))

ctx = sidebar.context()
widgets.prepare_progress()

if ctx.run is None:
    st.info("Nothing is prepared yet. **Prepare default** trains CEL hashing heads on 5,000 MNIST digits with the "
            "bundled CNN (offline, about two minutes on two cores, with progress below).",
            icon=":material/arrow_forward:")
    widgets.prepare_default_button()

tab_images, tab_npz = st.tabs(["Prepare from images", "Bring your own embeddings (.npz)"])
with tab_images:
    widgets.prepare_form()
    if ctx.run is not None:
        widgets.prepare_default_button("Prepare default (mnist5k · mnist_cnn · cel)", primary=False)
with tab_npz:
    widgets.embeddings_upload()

if ctx.run is not None:
    st.subheader(f"Current run: {md_escape(ctx.run.label)}")
    widgets.skipped_files(ctx.run.skipped)
    emb = attempt(cache.embeddings, ctx.key, ctx.n_bits, what="loading the embeddings")
    parts = {p: int(emb.mask(p).sum()) for p in ("query", "database", "train")}
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("queries", parts["query"])
    c2.metric("database", parts["database"])
    c3.metric("train (⊂ database)", parts["train"])
    c4.metric("classes", len(emb.class_names))
    views.class_counts(emb)
    summary = ctx.run.summary
    if summary:
        st.caption("mAP@all (hashviz protocol: expected ties, queries without a relevant item left out) on query "
                   "vs database, per bit length:")
        st.dataframe(widgets.summary_rows(summary), hide_index=True)
    heads = attempt(cache.head_details, ctx.key, what="reading the heads", stop=False)
    if heads:
        st.caption("The hashing heads" + (": codebook accuracy = share of queries whose nearest class centre "
                   "(Hamming, sign codes) is their class." if "codebook accuracy (queries)" in heads[0] else "."))
        st.dataframe(heads, hide_index=True, key="hv_head_table")
    sims = attempt(cache.head_similarities, ctx.key, ctx.n_bits, what="reading the head", stop=False)
    if sims is not None:
        views.shc_pair(sims, emb.class_names, ctx.n_bits)
    with st.expander("Sample images per class", expanded=True):
        attempt(widgets.class_samples, ctx.key, ctx.n_bits, what="drawing thumbnails")
    with st.expander("All prepared runs: rename, delete"):
        widgets.run_manager(ctx.run)
