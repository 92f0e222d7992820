"""Choices mirrored in the URL (``?run=…&bits=…``) so a link reopens the same view.

Values read from the URL are untrusted: a malformed one is ignored, a number out of range is clamped to the
nearest valid value (k=100000 with a maximum of 100 gives 100, not the minimum)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st


def param(name: str, default=None, cast: Callable = str):
    """A value from the URL (``?name=…``), cast, or ``default`` when missing or malformed."""
    raw = st.query_params.get(name)
    if raw is None:
        return default
    try:
        return cast(raw)
    except (TypeError, ValueError):
        return default


def set_params(**values) -> None:
    """Mirror choices in the URL so it reopens the same view (None removes a parameter)."""
    for k, v in values.items():
        if v is None:
            if k in st.query_params:
                del st.query_params[k]
        elif st.query_params.get(k) != str(v):
            st.query_params[k] = str(v)


def clamp(value, lo=None, hi=None):
    """``value`` moved into [lo, hi] (either bound may be None)."""
    if lo is not None and value < lo:
        return lo
    if hi is not None and value > hi:
        return hi
    return value


def init_from_param(key: str, name: str, cast: Callable = str, valid: Sequence | None = None, *,
                    lo=None, hi=None) -> None:
    """Seed widget ``key`` from the URL on a session's first run (later the widget's own state wins): a value not
    in ``valid`` is ignored; a number outside ``[lo, hi]`` is clamped to the nearest bound."""
    if key in st.session_state:
        return
    v = param(name, None, cast)
    if v is None:
        return
    if lo is not None or hi is not None:
        v = clamp(v, lo, hi)
    if valid is None or v in valid:
        st.session_state[key] = v
