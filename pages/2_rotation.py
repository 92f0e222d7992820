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
t = attempt(training.current, key, n_bits, what="loading the checkpoint")

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

b1, b2, b3, _ = st.columns([1, 1, 1, 5])
running = t is not None and t.running
if b1.button("Start", type="primary", disabled=running, key="hv_rot_start"):
    training.start(key, n_bits, name, options)
    st.rerun()  # redraw the buttons (Stop enabled) before the fragment starts ticking
if b2.button("Stop", disabled=not running, key="hv_rot_stop") and t is not None:
    t.stop()
    st.rerun()
if b3.button("Reset", disabled=t is None, key="hv_rot_reset"):
    training.reset(key, n_bits)
    st.rerun()

training.panel(key, n_bits)
st.caption("The curve and the rotation are saved to the run folder about once a second and when the fit ends: "
           "a reload shows them again, and the Queries and Compare pages list the result as “live …”.")
