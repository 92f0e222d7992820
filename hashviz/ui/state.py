"""Streamlit helpers shared by the pages: the sidebar (current run, status, bit-length switch mirrored in
``st.query_params``), error display, cached loaders keyed by run key, and per-session live objects.

Session state holds only keys and choices (strings, ints); arrays come from ``st.cache_resource`` keyed by run
key and bit length and are never mutated; per-user mutable objects (a live fit) live in
:data:`hashviz.ui.jobs.SESSION_OBJECTS` under the session id.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from hashviz.errors import HashvizError
from hashviz.ui import runs
from hashviz.ui.jobs import SESSION_OBJECTS

log = logging.getLogger("hashviz.app")

RUN, BITS = "hv_run", "hv_bits"  # persistent choices (widget state is dropped when a widget is not drawn)
RUN_W, BITS_W = "hv_run_widget", "hv_bits_widget"
QUANTIZER_NAMES = {"sign": "sign", "itq": "ITQ", "hq": "HQ", "random": "random search"}


# ---- errors ---------------------------------------------------------------------------------------------------
def show_error(e: BaseException, what: str = "") -> None:
    """HashvizError → its message and hint; anything else → a short message, the traceback to the log."""
    if isinstance(e, HashvizError):
        st.error(e.message, icon=":material/error:")
        if e.hint:
            st.info(f"How to fix it: {e.hint}", icon=":material/lightbulb:")
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
    """Every page opens with its title and two plain sentences on what it shows and why."""
    _leave_pages_directory_mode()
    st.title(title)
    st.markdown(text)


# ---- query params ---------------------------------------------------------------------------------------------
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


def init_from_param(key: str, name: str, cast: Callable = str, valid=None) -> None:
    """Seed widget ``key`` from the URL on a session's first run (later the widget's own state wins)."""
    if key not in st.session_state:
        v = param(name, None, cast)
        if v is not None and (valid is None or v in valid):
            st.session_state[key] = v


# ---- cached data (shared across sessions; never mutated) -------------------------------------------------------
def _home() -> str:
    from hashviz.paths import home

    return str(home())


@st.cache_resource(max_entries=32, show_spinner=False)
def _embeddings(home: str, key: str, n_bits: int):
    return runs.load_embeddings(key, n_bits)


def embeddings(key: str, n_bits: int):
    """The run's embeddings for ``n_bits`` (cached per home folder, run key and bit length)."""
    return _embeddings(_home(), key, int(n_bits))


@st.cache_resource(max_entries=8, show_spinner=False)
def _dataset(home: str, key: str):
    return runs.load_dataset(key)


def dataset(key: str):
    return _dataset(_home(), key)


def head_details(key: str) -> list[dict]:
    return _head_details(_home(), key)


@st.cache_data(max_entries=16, show_spinner=False)
def _head_details(home: str, key: str) -> list[dict]:
    return runs.head_details(key)


def paired_quantizers(head: str | None) -> tuple[str, ...]:
    """The quantizers a head method's paper pairs with it (``HeadLoss.paired_quantizers``), () if none/unknown."""
    if not head:
        return ()
    from hashviz.errors import HashvizError
    from hashviz.heads.losses import get_method

    try:
        return tuple(get_method(head).paired_quantizers)
    except HashvizError:
        return ()


def class_similarity(key: str):
    """The run's (c, c) class similarity from its label hierarchy, or None (cached; never mutated)."""
    return _class_similarity(_home(), key)


@st.cache_resource(max_entries=8, show_spinner=False)
def _class_similarity(home: str, key: str):
    from hashviz.retrieval.hierarchical import dataset_similarity

    return dataset_similarity(dataset(key))


def fitted(key: str, n_bits: int, name: str, options_json: str = "{}"):
    return _fitted(_home(), key, int(n_bits), name, options_json)


@st.cache_resource(max_entries=64, show_spinner="fitting the quantizer on the train split…")
def _fitted(home: str, key: str, n_bits: int, name: str, options_json: str = "{}"):
    """The quantizer ``prepare`` fitted and stored for this run (the CLI's), else one fitted now on the train
    split (cached per run, bit length, name and options)."""
    from hashviz.evaluate import fit_quantizer

    if options_json == "{}":
        q = runs.stored_quantizer(key, n_bits, name)
        if q is not None:
            return q
    q, _ = fit_quantizer(embeddings(key, n_bits), name, json.loads(options_json))
    return q


@st.cache_resource(max_entries=64, show_spinner=False)
def _checkpoint(home: str, key: str, n_bits: int, label: str, stamp: float):
    from hashviz.quantize import make_quantizer

    saved = runs.load_rotation(key, n_bits, label)
    return make_quantizer("sign", n_bits).set_rotation(saved["rotation"], saved["mean"])


def checkpoint_quantizer(key: str, n_bits: int, label: str):
    saved = runs.load_rotation(key, n_bits, label)
    return _checkpoint(_home(), key, n_bits, label, float(saved.get("saved", 0)))


def quantizers(key: str, n_bits: int, names=None, with_live: bool = True) -> dict:
    """Display label → fitted quantizer: those ``prepare`` fitted for the run (sign, ITQ, HQ and the head's paired
    ones, e.g. random search for SDSH; ``names`` to choose) plus every rotation trained live on this run."""
    if names is None:
        names = tuple(dict.fromkeys(("sign", "itq", "hq") + runs.stored_quantizer_names(key, n_bits)))
    out = {QUANTIZER_NAMES.get(n, n): fitted(key, n_bits, n) for n in names}
    if with_live:
        for label in runs.list_rotations(key, n_bits):
            q = attempt(checkpoint_quantizer, key, n_bits, label, stop=False)
            if q is not None:
                out[f"live {label}"] = q
    return out


@st.cache_resource(max_entries=32, show_spinner=False)
def _head_similarities(home: str, key: str, n_bits: int):
    return runs.head_similarities(key, n_bits)


def head_similarities(key: str, n_bits: int):
    """SHC's (class similarity, centre similarity) for the run's head at ``n_bits``, or None (cached)."""
    return _head_similarities(_home(), key, int(n_bits))


def thumbs(key: str, n_bits: int, rows, size: int = 56):
    emb = embeddings(key, n_bits)
    return runs.thumbnails(key, emb, rows, size, dataset=None if emb.thumbnails is not None else dataset(key))


# ---- session ---------------------------------------------------------------------------------------------------
def session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "local"


def _alive(sid: str) -> bool:
    try:
        from streamlit.runtime import Runtime

        return Runtime.instance().is_active_session(sid)
    except Exception:  # no runtime (AppTest, bare mode): keep everything
        return True


def session_object(name: str):
    return SESSION_OBJECTS.get(session_id(), name)


def put_session_object(name: str, obj) -> None:
    SESSION_OBJECTS.prune(_alive)
    SESSION_OBJECTS.put(session_id(), name, obj)


def pop_session_object(name: str):
    return SESSION_OBJECTS.pop(session_id(), name)


# ---- the sidebar -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Context:
    run: runs.RunInfo | None
    n_bits: int | None

    @property
    def key(self) -> str | None:
        return None if self.run is None else self.run.key


def _seed_widget(widget: str, store: str, valid) -> None:
    """Give a widget its persistent value back (after a page switch Streamlit may have dropped its state)."""
    if st.session_state.get(widget) not in valid:
        value = st.session_state.get(store)
        st.session_state[widget] = value if value in valid else valid[0]


def sidebar() -> Context:
    """Current run (dataset · backbone · head), its status and the bit-length switch, on every page."""
    all_runs = runs.list_runs()
    keys = [r.key for r in all_runs]
    by_key = {r.key: r for r in all_runs}
    init_from_param(RUN, "run", str, keys)
    with st.sidebar:
        st.markdown("### hashviz")
        if not all_runs:
            st.caption("No run prepared yet: open **Data & model** and press **Prepare default**.")
            set_params(run=None, bits=None)
            return Context(None, None)
        _seed_widget(RUN_W, RUN, keys)
        st.selectbox("Current run", keys, key=RUN_W, format_func=lambda k: by_key[k].label,
                     help="dataset · backbone · hashing head")
        run = by_key[st.session_state[RUN_W]]
        st.session_state[RUN] = run.key
        init_from_param(BITS, "bits", int, run.bits)
        _seed_widget(BITS_W, BITS, list(run.bits))
        st.radio("Bits", list(run.bits), key=BITS_W, horizontal=True,
                 help="code length; remembered across pages and in the URL")
        n_bits = int(st.session_state[BITS_W])
        st.session_state[BITS] = n_bits
        st.caption(f"Status: {run.status} · {len(run.bits)} bit length(s)")
        summ = run.summary.get(str(n_bits))
        if summ:
            st.caption("mAP@all " + " · ".join(f"{QUANTIZER_NAMES.get(k, k)} {v:.3f}" for k, v in summ.items()))
        set_params(run=run.key, bits=n_bits)
    return Context(run, n_bits)


def context() -> Context:
    """The sidebar's current choice, read again by a page (the sidebar is drawn by app.py before the page)."""
    run = runs.get_run(st.session_state.get(RUN))
    n_bits = st.session_state.get(BITS)
    if run is None or n_bits not in run.bits:
        return Context(run, None if run is None else run.bits[0])
    return Context(run, int(n_bits))


def need_run(ctx: Context) -> None:
    """Friendly next step when nothing is prepared; stops the page."""
    if ctx.run is None:
        st.info("Nothing is prepared yet. Go to **Data & model** and press **Prepare default** (mnist5k, the "
                "bundled CNN and CEL heads at 16/32/48/64 bits) — about two minutes, with progress.",
                icon=":material/arrow_forward:")
        st.page_link("pages/1_data.py", label="Open Data & model", icon=":material/database:")
        st.stop()
