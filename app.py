"""hashviz: Streamlit entry point. Layout only: pages live in pages/, logic in hashviz/."""

import streamlit as st

st.set_page_config(page_title="hashviz", page_icon="🔢", layout="wide")

from hashviz.ui import state  # noqa: E402  (after set_page_config)
from hashviz.viz.project import warm_up  # noqa: E402

pages = [
    st.Page("pages/1_data.py", title="Data & model", icon="📦", default=True),
    st.Page("pages/2_rotation.py", title="Rotation (live)", icon="🔄"),
    st.Page("pages/3_embeddings.py", title="Codes & embeddings", icon="🗺️"),
    st.Page("pages/4_queries.py", title="Queries", icon="🔎"),
    st.Page("pages/5_compare.py", title="Compare", icon="📊"),
]
page = st.navigation(pages)
state.sidebar()
page.run()
warm_up()  # after the first page is drawn: compile umap-learn once per server process, in a background thread
