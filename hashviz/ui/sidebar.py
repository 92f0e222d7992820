"""The shared sidebar: the current run (chosen by key, shown by name), its status and the bit-length switch,
mirrored in ``st.query_params`` so a link reopens the same view."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from hashviz.quantize import quantizer_label
from hashviz.session.runs import RunInfo
from hashviz.ui import cache, tour
from hashviz.ui.params import init_from_param, set_params
from hashviz.ui.text import md_escape

RUN, BITS = "hv_run", "hv_bits"  # persistent choices (widget state is dropped when a widget is not drawn)
RUN_W, BITS_W = "hv_run_widget", "hv_bits_widget"
SWITCH = "hv_run_switch"  # a run to switch to on the next rerun (after an import or a Prepare)


@dataclass(frozen=True)
class Context:
    run: RunInfo | None
    n_bits: int | None

    @property
    def key(self) -> str | None:
        return None if self.run is None else self.run.key


def select_run(key: str, why: str = "") -> None:
    """Make run ``key`` current for this session on the next rerun: page, sidebar and URL all switch (the
    sidebar widget's old value would otherwise win), and the page says so."""
    st.session_state[SWITCH] = (str(key), why)


def _seed_widget(widget: str, store: str, valid) -> None:
    """Give a widget its persistent value back (after a page switch Streamlit may have dropped its state)."""
    if st.session_state.get(widget) not in valid:
        value = st.session_state.get(store)
        st.session_state[widget] = value if value in valid else valid[0]


def names(all_runs: list[RunInfo]) -> dict[str, str]:
    """Run key → the name shown: the catalog's unique name (the key's start is added should two ever match)."""
    labels = [r.label for r in all_runs]
    return {r.key: r.label if labels.count(r.label) == 1 else f"{r.label} · {r.key[:8]}" for r in all_runs}


def sidebar() -> Context:
    """Current run, its status and the bit-length switch, on every page."""
    from hashviz.ui import sessions

    sessions.owner()  # this browser's workspace token stays in the URL on every page (its live fits)
    all_runs = cache.workspace().list_runs()
    keys = [r.key for r in all_runs]
    by_key = {r.key: r for r in all_runs}
    shown = names(all_runs)
    switched = st.session_state.pop(SWITCH, None)
    if switched is not None and switched[0] in by_key:
        st.session_state[RUN] = st.session_state[RUN_W] = switched[0]
        st.toast(f"Switched to {md_escape(shown[switched[0]])}" + (f" ({switched[1]})" if switched[1] else ""),
                 icon=":material/swap_horiz:")
    init_from_param(RUN, "run", str, keys)
    with st.sidebar:
        st.markdown("### hashviz")
        tour.toggle()
        if not all_runs:
            st.caption("No run prepared yet: open **Data & model** and press **Prepare default**.")
            set_params(run=None, bits=None)
            return Context(None, None)
        _seed_widget(RUN_W, RUN, keys)
        st.selectbox("Current run", keys, key=RUN_W, format_func=lambda k: shown.get(k, k),
                     help="runs are identified by key; the name is for people")
        run = by_key[st.session_state[RUN_W]]
        st.session_state[RUN] = run.key
        bit_lengths = list(run.bit_lengths)
        init_from_param(BITS, "bits", int, bit_lengths)
        _seed_widget(BITS_W, BITS, bit_lengths)
        st.radio("Bits", bit_lengths, key=BITS_W, horizontal=True,
                 help="code length; remembered across pages and in the URL")
        n_bits = int(st.session_state[BITS_W])
        st.session_state[BITS] = n_bits
        st.caption(f"Status: {run.status} · {len(bit_lengths)} bit length(s) · key `{run.key}`")
        summ = run.summary.get(str(n_bits))
        if summ:
            st.caption("mAP@all (hashviz: expected ties) " + " · ".join(f"{quantizer_label(k)} {v:.3f}"
                                                                        for k, v in summ.items()))
        set_params(run=run.key, bits=n_bits)
    return Context(run, n_bits)


def context() -> Context:
    """The sidebar's current choice, read again by a page (the sidebar is drawn by app.py before the page)."""
    run = cache.workspace().get_run(st.session_state.get(RUN))
    n_bits = st.session_state.get(BITS)
    if run is None or n_bits not in run.bit_lengths:
        return Context(run, None if run is None else run.bit_lengths[0])
    return Context(run, int(n_bits))
