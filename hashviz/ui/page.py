"""Page scaffolding: the title and two sentences every page opens with, and the friendly stop when nothing is
prepared yet."""

from __future__ import annotations

import streamlit as st


def _leave_pages_directory_mode() -> None:
    """A fresh server whose first visitor opens a deep link (``/rotation``) runs that page file on its own, the
    old ``pages/`` directory way, without app.py (no sidebar, no st.navigation). Switch Streamlit to
    ``st.navigation`` mode and, on a session's first run (nothing to lose yet), rerun so app.py draws the page.
    Later runs keep going: the page reads the persistent choices anyway. (PagesManager is Streamlit-internal;
    if it moves, the only cost is a first deep link without the sidebar.)"""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        if not st.session_state.get("hv_started"):
            st.session_state["hv_started"] = True
            st.rerun()
    st.session_state["hv_started"] = True


def intro(title: str, text: str) -> None:
    """Every page opens with its title and two plain sentences on what it shows and why; with the guided tour on
    (sidebar), the tour's next step for this page follows (:mod:`hashviz.ui.tour`)."""
    from hashviz.ui import tour

    _leave_pages_directory_mode()
    st.title(title)
    st.markdown(text)
    tour.show(title)


def need_run(ctx) -> None:
    """Friendly next step when nothing is prepared; stops the page."""
    if ctx.run is None:
        st.info("Nothing is prepared yet. Go to **Data & model** and press **Prepare default** (mnist5k, the "
                "bundled CNN and CEL heads at 16/32/48/64 bits) — about two minutes, with progress.",
                icon=":material/arrow_forward:")
        st.page_link("pages/1_data.py", label="Open Data & model", icon=":material/database:")
        st.stop()
