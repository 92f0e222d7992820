"""hashviz: Streamlit entry point. Layout only: pages live in pages/, logic in hashviz/."""

import streamlit as st

st.set_page_config(page_title="hashviz", page_icon="🔢", layout="wide")

pages = [st.Page("pages/evaluate.py", title="Evaluate embeddings", icon="📊", default=True)]
st.navigation(pages).run()
