"""Rotation (live): train a quantizer's rotation step by step and watch the codes improve."""

import streamlit as st

from hashviz.ui import state, training

state.intro("Rotation (live)", (
    "A hashing head leaves its embeddings wherever training put them, and taking signs then throws away how "
    "far each coordinate was from 0. A learned rotation (HQ: a product of Householder reflections; ITQ) turns "
    "the embeddings so the coordinates sit near ±1 — Hamming distances then match the embedding geometry better "
    "and mAP rises, at no cost at query time. Watch the loss fall, the histogram gather at ±1 and mAP climb."))

ctx = state.context()
state.need_run(ctx)
key, n_bits = ctx.key, ctx.n_bits
t = state.attempt(training.current, key, n_bits, what="loading the checkpoint")

labels = {"hq": "HQ (Householder, gradient steps)", "itq": "ITQ (alternating SVD)", "random": "random search"}
state.init_from_param("hv_rot_q", "quantizer", str, list(labels))
# a head paired with a quantizer by its paper (SDSH: random search) opens on that quantizer
paired = [q for q in state.paired_quantizers(ctx.run.head) if q in labels]
if paired and "hv_rot_q" not in st.session_state:
    st.session_state["hv_rot_q"] = paired[0]
c1, c2, c3, c4, c5 = st.columns(5)
name = c1.selectbox("Quantizer", list(labels), format_func=labels.get, key="hv_rot_q")
options = {}
if name == "hq":
    options["loss"] = c2.selectbox("Loss", ["l2", "l1", "bit_var", "min_entry"],
                                   help="l2: mean (Z − sgn Z)², the paper's main setting", key="hv_rot_loss")
    options["lr"] = c3.number_input("Learning rate", 1e-4, 1.0, 0.01, format="%.4f", key="hv_rot_lr")
    bs = c4.number_input("Batch size (0 = full batch)", 0, 100_000, 0, step=128, key="hv_rot_bs")
    options["batch_size"] = int(bs) or None
    options["steps"] = int(c5.number_input("Steps", 10, 50_000, 300, step=50, key="hv_rot_steps"))
elif name == "itq":
    options["n_iter"] = int(c2.number_input("Iterations", 1, 500, 50))
else:
    options["steps"] = int(c2.number_input("Steps", 10, 50_000, 300, step=50))
state.set_params(quantizer=name)

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
