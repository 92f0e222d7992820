"""Per-browser-session mutable objects (a live rotation fit) kept in
:data:`hashviz.session.jobs.SESSION_OBJECTS` under Streamlit's session id (entries of ended sessions are pruned),
and the browser's *workspace token* that owns its live fits.

The token lives in the URL (``?me=…``): a reload keeps it, so a reload finds its own fits again; another browser
gets its own token and sees only fits that were shared. Opening a link that carries someone's token is sharing
with them, explicitly."""

from __future__ import annotations

import streamlit as st

from hashviz.session.jobs import SESSION_OBJECTS

OWNER = "hv_owner"


def owner() -> str:
    """This browser's workspace token (from ``?me=`` or new), kept in session state and the URL."""
    import re
    import uuid

    token = st.session_state.get(OWNER)
    if token is None:
        raw = st.query_params.get("me")
        token = raw if isinstance(raw, str) and re.fullmatch(r"[0-9a-f]{16}", raw) else uuid.uuid4().hex[:16]
        st.session_state[OWNER] = token
    if st.query_params.get("me") != token:
        st.query_params["me"] = token
    return token


def session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "local"


def alive(sid: str) -> bool:
    """Whether browser session ``sid`` is still connected (True when there is no runtime: AppTest, bare mode)."""
    try:
        from streamlit.runtime import Runtime

        return Runtime.instance().is_active_session(sid)
    except Exception:  # no runtime (AppTest, bare mode): keep everything
        return True


def get(name: str):
    return SESSION_OBJECTS.get(session_id(), name)


def put(name: str, obj) -> None:
    SESSION_OBJECTS.prune(alive)
    SESSION_OBJECTS.put(session_id(), name, obj)


def pop(name: str):
    return SESSION_OBJECTS.pop(session_id(), name)
