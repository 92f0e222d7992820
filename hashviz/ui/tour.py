"""The guided tour: on each page, the one next thing to do and what to look for, in the order of the pages.

All of the tour's text lives in :data:`STEPS` (one entry per page, in navigation order); a sidebar toggle
(:func:`toggle`, mirrored in the URL as ``?tour=1``) switches it on and off, and :func:`hashviz.ui.page.intro`
shows the current page's step under the page's own introduction (:func:`show`)."""

from __future__ import annotations

import streamlit as st

from hashviz.ui.params import init_from_param, set_params

TOUR, TOUR_W = "hv_tour", "hv_tour_widget"  # persistent choice, widget key

#: one step per page, in the order of app.py's navigation. ``do``: the one next thing; ``look``: what to look for;
#: ``before``: instead of ``do`` while nothing is prepared (pages that need a run).
STEPS: tuple[dict, ...] = (
    {"title": "Data & model", "page": "pages/1_data.py",
     "before": "Press **Prepare default**: it trains CEL hashing heads on 5,000 MNIST digits at 16, 32, 48 and 64 "
               "bits (about two minutes, with progress). The Playground needs no run — open it while this works.",
     "do": "Read the mAP table under *Current run*: one row per bit length, one column per quantizer.",
     "look": "Whether HQ and ITQ sit above sign in every row — a rotation of the same embeddings buys that, with no "
             "retraining. Then open the Playground to see why."},
    {"title": "Playground", "page": "pages/0_playground.py",
     "do": "Move the angle slider until the quantization error is lowest; then, under *Rotation learned*, keep HQ "
           "and press **▶ play**.",
     "look": "The points turn but never change their distances; a corner's count jumps when a cluster crosses an "
             "axis. HQ starts at −I (a half turn, same ranking as sign) and stops where your slider found the "
             "lowest error — the table gives both numbers."},
    {"title": "Rotation (live)", "page": "pages/2_rotation.py",
     "before": "Prepare a run on **Data & model** first: this page trains a rotation on its embeddings.",
     "do": "Keep HQ with the l2 loss and press **Start**.",
     "look": "The histogram of rotated coordinates splitting into two humps at ±1 while the quantization error "
             "falls, and probe mAP climbing from sign's dashed line towards ITQ's."},
    {"title": "Codes & embeddings", "page": "pages/3_embeddings.py",
     "before": "Prepare a run on **Data & model** first: the maps show its codes.",
     "do": "Read the purity numbers above the maps, then lasso one cluster of the right-hand code map.",
     "look": "The continuous map never changes under a rotation; the two code maps differ only as much as the "
             "purity numbers say. The grid below shows the images you caught."},
    {"title": "Queries", "page": "pages/4_queries.py",
     "before": "Prepare a run on **Data & model** first: queries are ranked in its database.",
     "do": "Choose **where two quantizers differ most** (HQ against sign) and keep k = 10.",
     "look": "Both top-10 lists may be all ✓; *Beyond the top 10* shows where sign lets relevant images slip down "
             "the ranking, and the table under each row how many items share the k-th distance — the ties."},
    {"title": "Compare", "page": "pages/5_compare.py",
     "before": "Prepare a run on **Data & model** first: this page scores its quantizers.",
     "do": "Set the tie order to optimistic, then to pessimistic; then try the **deephash** protocol.",
     "look": "mAP moves by about the spread column: that much is decided by the order of tied items, not by the "
             "codes — which is why every table here defaults to expected ties. The *same codes, every protocol* "
             "table shows how much a paper's evaluator moves the number on its own."},
    {"title": "Penalty vs rotation", "page": "pages/7_penalty.py",
     "before": "Prepare a run on **Data & model** first: a sweep trains heads on its dataset and backbone.",
     "do": "Start a small sweep (DPSH, λ 0 and 1, 16 bits) or open a stored one.",
     "look": "The sign codes' mAP against λ, and the flat lines of λ = 0 followed by ITQ or HQ: the HQ paper claims "
             "the rotation makes the penalty unnecessary — the sentence under the figure says whether this run "
             "agrees."},
    {"title": "Your own image", "page": "pages/6_draw.py",
     "before": "Prepare a run on **Data & model** first: your drawing goes through its backbone and hashing heads.",
     "do": "Draw a 7, large, on the canvas and let go (or upload a picture).",
     "look": "What the network sees beside the canvas — your strokes cropped, scaled and centred like an MNIST "
             "digit — then whether its nearest codes are 7s at every bit length, and where the star lands on the "
             "codes map. That is the tour: switch it off in the sidebar."},
)


def toggle() -> bool:
    """The sidebar switch (draw inside ``st.sidebar``); returns whether the tour is on."""
    init_from_param(TOUR, "tour", lambda v: v == "1", [True, False])
    st.session_state.setdefault(TOUR, False)
    if st.session_state.get(TOUR_W) is None:
        st.session_state[TOUR_W] = bool(st.session_state[TOUR])
    on = st.toggle("Guided tour", key=TOUR_W, help="on each page: the one next thing to do and what to look for")
    st.session_state[TOUR] = bool(on)
    set_params(tour="1" if on else None)
    return bool(on)


def step_of(title: str) -> tuple[int, dict] | None:
    for i, step in enumerate(STEPS):
        if step["title"] == title:
            return i, step
    return None


def show(title: str) -> None:
    """The tour's step for the page titled ``title`` (nothing when the tour is off or the page has no step)."""
    if not st.session_state.get(TOUR):
        return
    found = step_of(title)
    if found is None:
        return
    i, step = found
    do = step["do"]
    if step.get("before"):
        from hashviz.ui import cache

        if not cache.workspace().list_runs():
            do = step["before"]
    st.info(f"**Guided tour · step {i + 1} of {len(STEPS)}.** **Do:** {do}  \n**Look for:** {step['look']}",
            icon=":material/tour:")
    if i + 1 < len(STEPS):
        nxt = STEPS[i + 1]
        st.page_link(nxt["page"], label=f"Next on the tour: {nxt['title']}", icon=":material/arrow_forward:")
