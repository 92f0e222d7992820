"""Error display for the pages: a HashvizError shows its message and hint, anything else a short message with the
traceback in the server log. User text inside messages is shown as text (``st.error`` renders markdown, so it is
escaped first)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

import streamlit as st

from hashviz.errors import HashvizError

log = logging.getLogger("hashviz.app")


def show_error(e: BaseException, what: str = "") -> None:
    """HashvizError → its message and hint; anything else → a short message, the traceback to the log."""
    from hashviz.ui.text import md_escape

    if isinstance(e, HashvizError):
        st.error(md_escape(e.message), icon=":material/error:")
        if e.hint:
            st.info(f"How to fix it: {md_escape(e.hint)}", icon=":material/lightbulb:")
    else:
        log.error("unexpected error%s:\n%s", f" in {what}" if what else "", traceback.format_exc())
        st.error(f"Something went wrong{' while ' + what if what else ''} ({type(e).__name__}). The details are in "
                 "the server log; the rest of the app keeps working.", icon=":material/error:")


def attempt(fn: Callable, *args, what: str = "", stop: bool = True, **kwargs):
    """``fn(*args, **kwargs)``; on an error show it and stop this page (``stop=False``: return None)."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # Streamlit's own stop/rerun signals are BaseException and pass through
        show_error(e, what)
        if stop:
            st.stop()
        return None
