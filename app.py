"""hashviz: Streamlit entry point. Layout only: pages live in pages/, logic in hashviz/."""

import streamlit as st

st.set_page_config(page_title="hashviz", page_icon=":material/tag:", layout="wide")

from hashviz.ui import sidebar  # noqa: E402  (after set_page_config)
from hashviz.ui.warmup import warm_up  # noqa: E402

pages = [
    st.Page("pages/1_data.py", title="Data & model", icon=":material/database:", default=True),
    st.Page("pages/0_playground.py", title="Playground", icon=":material/toys:"),
    st.Page("pages/2_rotation.py", title="Rotation (live)", icon=":material/rotate_right:"),
    st.Page("pages/3_embeddings.py", title="Codes & embeddings", icon=":material/scatter_plot:"),
    st.Page("pages/4_queries.py", title="Queries", icon=":material/search:"),
    st.Page("pages/5_compare.py", title="Compare", icon=":material/table_chart:"),
    st.Page("pages/7_penalty.py", title="Penalty vs rotation", icon=":material/balance:"),
    st.Page("pages/6_draw.py", title="Your own image", icon=":material/draw:"),
]
page = st.navigation(pages)
sidebar.sidebar()
page.run()
warm_up()  # once per server, after the first page, in a background thread: torch, UMAP
