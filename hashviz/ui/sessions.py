"""Per-browser-session mutable objects (a live rotation fit) kept in
:data:`hashviz.session.jobs.SESSION_OBJECTS` under Streamlit's session id; entries of ended sessions are pruned."""

from __future__ import annotations

import streamlit as st  # noqa: F401  (Streamlit's runtime gives the session id)

from hashviz.session.jobs import SESSION_OBJECTS


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
