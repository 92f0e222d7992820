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
    st.info("No penalty sweep is stored for this dataset and backbone yet. Start one below, or from the command "
            "line: `hashviz penalty --dataset … --head dpsh --lambdas 0 0.01 0.1 1 10` (its results show here).",
            icon=":material/arrow_downward:")
else:
    penalty_ui.view(chosen, ctx.n_bits)

st.subheader("New sweep")
st.caption("One head per λ and bit length is trained on this run's dataset and backbone (cached in the run store, "
           "each also listed as a run), then quantized by sign, ITQ and HQ and scored.")
penalty_ui.start_form(ctx.run, sweeps)
