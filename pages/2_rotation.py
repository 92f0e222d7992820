"""Rotation (live): train a quantizer's rotation step by step and watch the codes improve."""

import streamlit as st

from hashviz.ui import cache, page, sidebar, training
from hashviz.ui.errors import attempt
from hashviz.ui.params import init_from_param, set_params

page.intro("Rotation (live)", (
    "A hashing head leaves its embeddings wherever training put them, and taking signs then throws away how "
    "far each coordinate was from 0. A learned rotation (HQ: a product of Householder reflections; ITQ) turns "
    "the embeddings so the coordinates sit near ±1 — Hamming distances then match the embedding geometry better "
    "and mAP rises, at no cost at query time. Watch the loss fall, the histogram gather at ±1 and mAP climb."))

ctx = sidebar.context()
page.need_run(ctx)
key, n_bits = ctx.key, ctx.n_bits
attempt(training.current, key, n_bits, what="loading the saved fit")

labels = training.LIVE_QUANTIZERS
init_from_param("hv_rot_q", "quantizer", str, list(labels))
# a head paired with a quantizer by its paper (SDSH: random search) opens on that quantizer
paired = [q for q in cache.paired_quantizers(ctx.run.head) if q in labels]
if paired and "hv_rot_q" not in st.session_state:
    st.session_state["hv_rot_q"] = paired[0]
c1, *option_columns = st.columns(5)
name = c1.selectbox("Quantizer", list(labels), format_func=labels.get, key="hv_rot_q")
options = training.options_form(name, option_columns)
set_params(quantizer=name)

training.controls(key, n_bits, name, options)
training.panel(key, n_bits)
st.caption("Each Start is a new fit, named by its settings. The curve and the rotation are saved to the run folder "
           "about once a second and when the fit ends: a reload shows them again (a fit cut off by a closed browser "
           "shows as stopped and can be resumed exactly), and the Queries, Compare and Codes & embeddings pages list "
           "it as “live …”. Your fits are yours: other sessions see them only when you share them.")
