"""The Penalty page's Streamlit side: pick a stored sweep, draw it (figure, the claim and this run's answer, the
cells with their times), and start a new sweep in the background with progress and Stop. The logic is in
:mod:`hashviz.session.penalty`."""

from __future__ import annotations

import json
import math

import streamlit as st

from hashviz.session import penalty as P
from hashviz.session.jobs import SWEEP_JOBS
from hashviz.ui import cache
from hashviz.ui.errors import attempt, show_error
from hashviz.ui.params import init_from_param, set_params
from hashviz.ui.text import md_escape
from hashviz.viz import figures

JOB = "hv_sweep_job"
ENDED = "hv_sweep_ended"
CHOSEN = "hv_penalty_sweep"  # the stored sweep shown (its key)
FINISHED = "hv_penalty_finished"  # a sweep this session just finished: shown on the next run
SWEEP_BITS = (8, 16, 24, 32, 48, 64, 96, 128)


def stored(run) -> list:
    """The stored sweeps on the current run's dataset and backbone (read from the run store on every run: a
    sweep the CLI stores shows up on the next rerun)."""
    return attempt(P.sweeps_for_run, cache.home(), run, what="reading the stored sweeps")


def choose(sweeps: list):
    """A selectbox of the stored sweeps (by key, in the URL as ``?sweep=``); returns the chosen one or None."""
    if not sweeps:
        return None
    by_key = {sw.key: sw for sw in sweeps}
    keys = list(by_key)
    init_from_param(CHOSEN, "sweep", str, keys)
    finished = st.session_state.pop(FINISHED, None)
    if finished in by_key:
        st.session_state[CHOSEN] = finished
    if st.session_state.get(CHOSEN) not in by_key:
        st.session_state[CHOSEN] = keys[0]
    key = st.selectbox("Stored sweep", keys, format_func=lambda k: P.sweep_label(by_key[k]), key=CHOSEN,
                       help="sweeps on this run's dataset and backbone, from the CLI (hashviz penalty) or this page")
    set_params(sweep=key)
    return by_key[key]


def nothing_stored(run) -> None:
    """What to do when no sweep is stored for the current run's dataset and backbone."""
    if run.dataset == "embeddings":
        st.info("This run is an embeddings file: a penalty sweep trains hashing heads on backbone features, so it "
                "needs a run prepared from images. Switch to one in the sidebar (or prepare one on Data & model).",
                icon=":material/info:")
        return
    st.info("No penalty sweep is stored for this dataset and backbone yet. Start one below, or from the command "
            "line: `hashviz penalty --dataset … --head dpsh --lambdas 0 0.01 0.1 1 10` (its results show here).",
            icon=":material/arrow_downward:")


def _seconds(x: float) -> str:
    return "—" if x is None or math.isnan(x) else (f"{x:.2f} s" if x < 10 else f"{x:.0f} s")


def view(sweep, n_bits: int | None) -> None:
    """One stored sweep at one of its bit lengths: mAP and quantization error against λ, the sentence, the cells
    and how long each took."""
    bits = list(sweep.bit_lengths)
    shown = n_bits if n_bits in bits else bits[0]
    if len(bits) > 1:
        shown = int(st.radio("Bits of the sweep", bits, index=bits.index(shown), horizontal=True,
                             key=f"hv_penalty_bits_{sweep.key}"))
    st.plotly_chart(figures.penalty_vs_rotation(sweep, shown), key="hv_penalty_fig")
    st.markdown(P.sentence(sweep, shown))  # our words and numbers (head names come from the registry)
    st.dataframe(P.cell_rows(sweep, shown), hide_index=True, key="hv_penalty_cells")
    times = P.cell_times([sweep])
    if times is not None:
        st.caption(f"Each cell: a head trains in about {_seconds(times.head_seconds)} (mean of {times.n_heads} "
                   f"heads), a quantizer fits and scores in about {_seconds(times.quantizer_seconds)} (mean of "
                   f"{times.n_cells} cells) — as recorded by the run that computed them. {md_escape(sweep.summary)}")
    with st.expander("Provenance of these numbers"):
        st.json(P.provenance(sweep))


def start_form(run, sweeps: list) -> None:
    """A new sweep on the current run's dataset and backbone: head, λ values, bit lengths, epochs, protocol;
    with the time it should take from the cells already stored."""
    from hashviz.heads import train as T
    from hashviz.penalty import DEFAULT_LAMBDAS, DEFAULT_QUANTIZERS, penalised_heads
    from hashviz.retrieval.protocols import PROTOCOL_NAMES

    if run.dataset == "embeddings":
        return
    heads = penalised_heads()
    c1, c2, c3 = st.columns(3)
    names = list(heads)
    default = names.index(run.head) if run.head in heads else names.index("dpsh") if "dpsh" in heads else 0
    head = c1.selectbox("Head", names, index=default, format_func=lambda m: f"{m} (sweeps {heads[m]})",
                        key="hv_sweep_head")
    text = c1.text_input("λ values", ", ".join(f"{x:g}" for x in DEFAULT_LAMBDAS), key="hv_sweep_lambdas",
                         help="the head's quantization weight; include 0 (the HQ paper's setting)")
    start_bits = [b for b in run.bit_lengths if b in SWEEP_BITS][:1] or [16]
    bits = c2.multiselect("Bit lengths", SWEEP_BITS, default=start_bits, key="hv_sweep_bits")
    epochs = int(c2.number_input("Epochs per head", 1, 1000, T.DEFAULT_EPOCHS, key="hv_sweep_epochs"))
    protocol = c3.selectbox("Protocol", PROTOCOL_NAMES, key="hv_sweep_protocol",
                            help="how the cells are scored (docs/metrics.md)")
    lambdas = attempt(P.parse_lambdas, text, what="reading the λ values", stop=False)
    times = P.cell_times(sweeps, head, epochs) or P.cell_times(sweeps, head)
    if lambdas is not None and bits:
        if times is not None and not math.isnan(times.head_seconds):
            total = times.estimate(len(lambdas), len(bits), len(DEFAULT_QUANTIZERS))
            c3.caption(f"From the {head} cells stored here: a head trains in about {_seconds(times.head_seconds)} "
                       f"and each quantizer cell takes about {_seconds(times.quantizer_seconds)}, so this sweep "
                       f"needs about {_seconds(total)} ({len(lambdas)} λ × {len(bits)} bit lengths; heads already "
                       "stored are read back).")
        else:
            c3.caption(f"{len(lambdas)} λ × {len(bits)} bit lengths = {len(lambdas) * len(bits)} heads to train; "
                       "no stored cell of this head yet to time them by. Progress and an estimate of the time "
                       "left show once it runs.")
    ok = lambdas is not None and bool(bits)
    if st.button("Start sweep", type="primary", disabled=not ok, key="hv_sweep_start"):
        params = attempt(P.sweep_params, run, head, lambdas, sorted(bits), protocol=protocol,
                         epochs=None if epochs == T.DEFAULT_EPOCHS else epochs, what="checking the sweep",
                         stop=False)
        if params is not None:
            start(params)


def start(params: dict) -> None:
    """Start (or join) the sweep in the background and rerun with its progress ticking."""
    home = cache.home()
    key = json.dumps({"home": home, **params}, sort_keys=True, default=str)
    SWEEP_JOBS.start(key, params, home=home)
    st.session_state[JOB] = key
    st.session_state.pop(ENDED, None)
    st.rerun()


def progress() -> None:
    """This session's sweep: progress per λ and stage, the time left, Stop (a fragment that ticks only while the
    sweep runs). When it ends the page shows the stored sweep."""
    job = SWEEP_JOBS.get(st.session_state.get(JOB))
    st.fragment(run_every=0.5 if job is not None and job.running else None)(_progress)()


def _progress() -> None:
    key = st.session_state.get(JOB)
    job = SWEEP_JOBS.get(key)
    if job is None:
        return
    label = {"running": "Sweeping…", "done": "Sweep finished", "stopped": "Stopped", "failed": "Failed"}[job.status]
    n = len(job.lambdas)
    left = job.remaining_seconds()
    eta = f", about {_seconds(left)} left" if left is not None else ""
    with st.status(f"{label}: λ {min(job.lambdas_done + (1 if job.running else 0), n)} of {n} "
                   f"({job.elapsed:.0f} s{eta})", expanded=job.running,
                   state="running" if job.running else "complete" if job.status == "done" else "error"):
        for stage, (done, total) in list(job.stages.items())[-4:]:
            st.progress(min(done / max(total, 1), 1.0), text=f"{stage}: {done}/{total}")
        if job.running:
            if st.button("Stop", key="hv_sweep_stop"):
                job.stop()
            st.caption("Finished heads stay in the run store: a stopped sweep continues where it stopped when "
                       "started again.")
        elif job.error is not None:
            show_error(job.error)
        elif job.message:
            st.error(f"The sweep failed ({md_escape(job.message)}); details in the server log.")
    if job.running:
        return
    if job.status == "done" and job.result is not None:
        st.session_state.pop(JOB, None)
        st.session_state[FINISHED] = job.result.key
        st.rerun()  # full rerun: the stored sweep is listed and shown
    elif st.session_state.get(ENDED) != key:
        st.session_state[ENDED] = key
        st.rerun()  # once: the fragment stops ticking, the message stays
