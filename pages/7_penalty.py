"""Penalty vs rotation: the HQ paper's claim tested on this run's dataset — stored sweeps, and new ones."""

import streamlit as st

from hashviz.ui import page, sidebar
from hashviz.ui import penalty as penalty_ui

page.intro("Penalty vs rotation", (
    "Most deep-hashing heads add a quantization penalty λ to their loss to push the embeddings towards ±1 before "
    "taking signs, while the HQ paper trains with λ = 0, learns a rotation afterwards and claims that is at least "
    "as good. Here a sweep of λ on the current dataset and backbone shows mAP of the sign codes against λ, with "
    "λ = 0 + ITQ and λ = 0 + HQ as lines and the quantization error beside it, so you can see whether the claim "
    "holds on your data."))

ctx = sidebar.context()
page.need_run(ctx)
penalty_ui.progress()
sweeps = penalty_ui.stored(ctx.run)
chosen = penalty_ui.choose(sweeps)
if chosen is None:
    penalty_ui.nothing_stored(ctx.run)
else:
    penalty_ui.view(chosen, ctx.n_bits)

if ctx.run.dataset != "embeddings":
    st.subheader("New sweep")
    st.caption("One head per λ and bit length is trained on this run's dataset and backbone (with the backbone's "
               "own weights; cached in the run store, each also listed as a run), then quantized by sign, ITQ and "
               "HQ and scored.")
    penalty_ui.start_form(ctx.run, sweeps)
