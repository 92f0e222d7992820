"""The live rotation panel: a per-session :class:`~hashviz.session.live.LiveRotation`, advanced a few steps per
``st.fragment(run_every=…)`` tick, checkpointed to the run folder, restored after a reload.

Each Start is a new fit (its own store entry, named by its settings, never overwriting another); fits belong to
the browser workspace that trained them (:func:`hashviz.ui.sessions.owner`) and are shown to others only when
shared. A fit whose browser went away mid-run shows as stopped at its last checkpoint and can be resumed exactly
or discarded."""

from __future__ import annotations

import json
import time

import numpy as np
import streamlit as st

from hashviz.session.jobs import SESSION_OBJECTS
from hashviz.session.live import (
    LIVE_OPTIONS,
    LIVE_QUANTIZERS,
    LiveRotation,
    fit_label,
    new_fit_id,
    next_step_budget,
    probe_indices,
    probe_map,
    unique_name,
)
from hashviz.ui import cache, sessions
from hashviz.ui.errors import attempt
from hashviz.ui.text import md_escape
from hashviz.viz import figures

TICK_SECONDS = 0.2  # curve fragment period: aims at ≥ 2 chart updates per second
SLOW_TICK_SECONDS = 1.0  # status, histogram and bit balance: once a second is enough to see them move
STEP_BUDGET = 0.08  # least seconds of fitting per tick (the rest of the tick draws)
STEP_BUDGET_MAX = 0.25  # most: a tick then lasts about TICK_TARGET_SECONDS (see next_step_budget)
TICK_TARGET_SECONDS = 0.3  # fit for what is left of this after drawing: ~3 chart updates/s, the rest fitting


__all__ = ["LIVE_QUANTIZERS", "controls", "current", "options_form", "panel", "start"]


def options_form(name: str, columns) -> dict:
    """The settings of quantizer ``name`` (:data:`hashviz.session.live.LIVE_OPTIONS`), one per column."""
    options = {}
    for col, spec in zip(columns, LIVE_OPTIONS.get(name, ())):
        key = f"hv_rot_{name}_{spec.name}"
        if spec.kind == "choice":
            value = col.selectbox(spec.label, list(spec.choices), index=list(spec.choices).index(spec.default),
                                  help=spec.help or None, key=key)
        elif spec.kind == "float":
            value = float(col.number_input(spec.label, float(spec.lo), float(spec.hi), float(spec.default),
                                           format="%.4f", help=spec.help or None, key=key))
        else:
            value = int(col.number_input(spec.label, int(spec.lo), int(spec.hi), int(spec.default),
                                         step=int(spec.step or 1), help=spec.help or None, key=key))
        options[spec.name] = None if spec.zero_is_none and not value else value
    return options


def trainer_name(key: str, n_bits: int) -> str:
    return f"rotation:{key}:{n_bits}"


@st.cache_data(max_entries=32, show_spinner="scoring sign and ITQ on the probe queries…")
def references(key: str, n_bits: int) -> dict:
    """Probe mAP of sign and ITQ on the same embeddings: the reference lines of the live chart."""
    emb = cache.embeddings(key, n_bits)
    probe = probe_indices(emb)
    return {name: probe_map(emb, cache.fitted(key, n_bits, q), probe) for q, name in (("sign", "sign"),
                                                                                     ("itq", "ITQ"))}


def _saver(key: str, n_bits: int):
    home, owner = cache.home(), sessions.owner()

    def save(t: LiveRotation) -> None:
        from hashviz.session.runs import Workspace

        params = {"quantizer": t.name, "options": dict(t.options), "map_every": t.map_every,
                  "probe_queries": len(t.probe), "seed": t.seed}
        if hasattr(t.quantizer, "get_params") and t.quantizer.name == t.name:
            params["quantizer_params"] = t.quantizer.get_params()
        Workspace(home).save_live_fit(key, n_bits, t.fit_id, name=t.label, owner=owner, rotation=t.rotation,
                                      curve=t.curve, params=params, status=t.status, shared=t.shared,
                                      created=t.created, mean=t.quantizer.state()["mean"])
    return save


def running_elsewhere(fit_id: str) -> bool:
    """Whether another open browser session is training this fit right now."""
    me = sessions.session_id()
    return any(sid != me and sessions.alive(sid) for sid, obj in SESSION_OBJECTS.items()
               if isinstance(obj, LiveRotation) and obj.fit_id == fit_id and obj.running)


def _shown_status(saved: dict) -> str:
    status = str(saved.get("status", ""))
    step = int(saved["curve"][-1]["step"]) if saved.get("curve") else 0
    if status == "running":
        return "running in another tab" if running_elsewhere(saved["fit_id"]) else f"stopped at step {step}"
    return {"done": f"done ({step} steps)", "stopped": f"stopped at step {step}"}.get(status, status)


def _restored(key: str, n_bits: int, saved: dict) -> LiveRotation:
    params = saved.get("params", {})
    t = LiveRotation(cache.embeddings(key, n_bits), params.get("quantizer", "hq"), params.get("options", {}),
                     fit_id=saved["fit_id"], label=saved["name"], background_probe=True)
    t.restore(saved["curve"], saved["rotation"], status=_shown_status(saved), mean=saved.get("mean"))
    t.shared, t.created, t.saved_status = bool(saved.get("shared")), float(saved.get("created", 0)), saved["status"]
    return t


def my_fits(key: str, n_bits: int):
    return cache.workspace().live_fits(key, n_bits, sessions.owner())


def current(key: str, n_bits: int) -> LiveRotation | None:
    """This session's fit for (run, bits); after a reload, this browser's newest saved fit comes back."""
    name = trainer_name(key, n_bits)
    t = sessions.get(name)
    if t is not None:
        return t
    own = [f for f in my_fits(key, n_bits) if f.owner == sessions.owner()]
    if not own:
        return None
    t = _restored(key, n_bits, cache.workspace().load_live_fit(key, n_bits, own[-1].fit_id))
    sessions.put(name, t)
    return t


def select(key: str, n_bits: int, fit_id: str) -> None:
    """Show another of this browser's saved fits (the running one keeps running only if it is the one shown)."""
    t = sessions.get(trainer_name(key, n_bits))
    if t is not None and t.fit_id == fit_id:
        return
    if t is not None:
        t.stop()
    sessions.put(trainer_name(key, n_bits), _restored(key, n_bits, cache.workspace().load_live_fit(key, n_bits,
                                                                                                  fit_id)))


def start(key: str, n_bits: int, name: str, options: dict) -> LiveRotation:
    """A new fit with these settings (named by them; " #2" when this browser already has one so named)."""
    old = sessions.get(trainer_name(key, n_bits))
    if old is not None:
        old.stop()
    label = unique_name(fit_label(name, options), [f.name for f in my_fits(key, n_bits)])
    t = LiveRotation(cache.embeddings(key, n_bits), name, options, checkpoint=_saver(key, n_bits), label=label,
                     fit_id=new_fit_id(), background_probe=True)
    t.shared, t.created = False, time.time()
    attempt(t.start, what="starting the fit")
    sessions.put(trainer_name(key, n_bits), t)
    return t


def resume(key: str, n_bits: int) -> LiveRotation | None:
    """Continue the shown (stopped) fit from its last checkpoint: its steps are replayed, then it goes on."""
    t = sessions.get(trainer_name(key, n_bits))
    if t is None or t.running:
        return t
    r = LiveRotation(t.emb, t.name, t.options, checkpoint=_saver(key, n_bits), label=t.label, fit_id=t.fit_id,
                     background_probe=True)
    r.shared, r.created = t.shared, t.created
    attempt(r.resume, t.curve, what="resuming the fit")
    sessions.put(trainer_name(key, n_bits), r)
    return r


def discard(key: str, n_bits: int) -> None:
    """Stop and delete the shown fit (only this browser's own fits can be discarded)."""
    t = sessions.pop(trainer_name(key, n_bits))
    if t is not None:
        t.checkpoint = None
        t.stop()
        attempt(cache.workspace().delete_live_fit, key, n_bits, t.fit_id, sessions.owner(), what="discarding",
                stop=False)


def share(key: str, n_bits: int, shared: bool) -> None:
    t = sessions.get(trainer_name(key, n_bits))
    if t is None:
        return
    t.shared = bool(shared)
    if not t.running:  # a running fit carries the flag in its next checkpoint
        attempt(cache.workspace().share_live_fit, key, n_bits, t.fit_id, sessions.owner(), bool(shared),
                what="sharing", stop=False)


def controls(key: str, n_bits: int, name: str, options: dict) -> None:
    """Start (a new fit) / Stop / Resume / Discard, sharing, and the choice among this browser's saved fits."""
    t = current(key, n_bits)
    running = t is not None and t.running
    resumable = t is not None and not running and getattr(t, "saved_status", "") in ("running", "stopped")
    b1, b2, b3, b4, b5 = st.columns([1, 1, 1, 1, 4])
    if b1.button("Start", type="primary", disabled=running, key="hv_rot_start",
                 help="a new fit with these settings (earlier fits are kept)"):
        start(key, n_bits, name, options)
        st.rerun()  # redraw the buttons (Stop enabled) before the fragment starts ticking
    if b2.button("Stop", disabled=not running, key="hv_rot_stop") and t is not None:
        t.stop()
        st.rerun()
    if b3.button("Resume", disabled=not resumable, key="hv_rot_resume",
                 help="continue this fit from its last checkpoint: exactly as if it had not stopped"):
        resume(key, n_bits)
        st.rerun()
    if b4.button("Discard", disabled=t is None, key="hv_rot_discard", help="delete the shown fit"):
        discard(key, n_bits)
        st.rerun()
    if t is not None:
        shared = b5.toggle("Share with every session viewing this run", value=bool(getattr(t, "shared", False)),
                           key=f"hv_rot_share_{t.fit_id}",
                           help="others then see it on Queries, Compare and Codes & embeddings as “(shared)”")
        if shared != bool(getattr(t, "shared", False)):
            share(key, n_bits, shared)
    fits = [f for f in my_fits(key, n_bits) if f.owner == sessions.owner()]
    if len(fits) > 1 and t is not None:
        ids = [f.fit_id for f in fits]
        names = {f.fit_id: f"{f.name} — {f.status}, step {f.step}" for f in fits}
        chosen = st.selectbox("Your fits on this run and bit length", ids, format_func=names.get,
                              index=ids.index(t.fit_id) if t.fit_id in ids else len(ids) - 1,
                              key=f"hv_rot_fit_{t.fit_id}", disabled=running)
        if chosen != t.fit_id:
            select(key, n_bits, chosen)
            st.rerun()


def loss_name(name: str, options: dict) -> str:
    if name == "random":
        return "loss (−mAP on the search subset)"
    if name == "itq":
        return "ITQ objective ‖B − VR‖² / (n·n_bits)"
    return f"loss ({options.get('loss', 'l2')})"


def _steps_option(name: str, options: dict) -> int:
    from hashviz.session.live import LIVE_OPTIONS

    default = next((int(o.default) for o in LIVE_OPTIONS.get(name, ()) if o.name in ("steps", "n_iter")), 0)
    return int(options.get("steps", options.get("n_iter", default)) or default)


def schedule_now(name: str, options: dict, step: int) -> str:
    """Where the schedule stands at ``step`` (HQ l2: the smoothing width τ; random search: the proposal angle)."""
    from hashviz.quantize.householder import FAST_TAU

    total = _steps_option(name, options)
    if not total or step < 1:
        return ""
    k = min(int(step), total)
    if name == "hq" and options.get("loss", "l2") == "l2":
        tau = FAST_TAU[0] * (FAST_TAU[1] / FAST_TAU[0]) ** ((k - 1) / max(1, total - 1))
        return f"smoothing width τ = {tau:.3f}"
    if name == "random":
        return f"last proposal's angle {(total - k + 1) / total:.3f} rad"
    return ""


def schedule_text(name: str, options: dict) -> str:
    """What the Steps setting does to the schedule, read from hashviz/quantize (HQ's default schedule, random
    search's shrinking angle)."""
    from hashviz.quantize.householder import FAST_LR, FAST_TAU

    total = _steps_option(name, options)
    if name == "hq":
        lr = options.get("lr") or FAST_LR
        if options.get("loss", "l2") == "l2":
            return (f"**What “Steps” does here.** HQ's default schedule (Adam, lr {lr:g}) does not follow the exact "
                    f"l2 — full-batch descent stalls at its kinks — but a smoothed l2 whose width τ shrinks "
                    f"geometrically from {FAST_TAU[0]:g} to {FAST_TAU[1]:g} over *all* {total:,} steps "
                    f"(τ_k = {FAST_TAU[0]:g}·{FAST_TAU[1] / FAST_TAU[0]:g}^((k−1)/(steps−1))). While τ is wide, a "
                    "step moves only coordinates far from 0, so more steps keep τ wide longer: the curve falls more "
                    "slowly at first and usually ends lower. The curve always plots the exact l2.")
        return (f"**What “Steps” does here.** With the {options.get('loss')} loss there is no smoothing schedule "
                f"(Adam, constant lr {lr:g}): Steps only sets how long the fit runs ({total:,} updates); the first "
                "steps are the same for any Steps.")
    if name == "random":
        return (f"**What “Steps” does here.** Random search proposes turns whose angle shrinks linearly from 1 rad "
                f"to 1/{total:,} rad over the {total:,} steps, so more steps keep the proposals wide for longer.")
    return "**Iterations:** each one recomputes the codes B = sgn(VR), then the rotation closest to them."


def panel(key: str, n_bits: int) -> None:
    """The charts; they tick on their own while the fit runs (fragments re-declared with run_every).

    The fast fragment advances the fit for :data:`STEP_BUDGET` to :data:`STEP_BUDGET_MAX` seconds (what the
    last ticks' drawing left of :data:`TICK_TARGET_SECONDS`) and redraws only the curve chart and one
    caption line: each browser update then costs one light plotly redraw (≤ 300 points per line). The slow
    fragment redraws the status metrics and one figure with the histogram and bit balance."""
    t = sessions.get(trainer_name(key, n_bits))
    running = t is not None and t.running
    st.fragment(run_every=TICK_SECONDS if running else None)(_tick)(key, n_bits)
    if t is not None:
        st.caption(schedule_text(t.name, dict(t.options)) + (
            " Loss and quantization error are the same number here (rows rescaled to norm √n_bits), so the left "
            "panel draws one curve." if t.curve and figures.loss_is_quantization_error(t.curve) else ""))
        st.fragment(run_every=SLOW_TICK_SECONDS if running else None)(_status)(key, n_bits)


def _status(key: str, n_bits: int) -> None:
    t = sessions.get(trainer_name(key, n_bits))
    if t is None:
        return
    from hashviz.codes import to_bits
    from hashviz.retrieval.metrics import bit_balance

    s = t.summary()
    c = st.columns(5)
    c[0].metric("status", f"replaying {s['replaying']} steps" if s["replaying"] else s["status"])
    c[1].metric("step", s["step"])
    c[2].metric("quantization error", f"{s['quantization_error']:.4f}" if s["quantization_error"] is not None else "–")
    c[3].metric(figures.PROBE_MAP_LABEL, f"{s['map']:.4f}" if s["map"] is not None else "–",
                help="mAP@all of the probe queries against the whole database, hashviz protocol (expected ties, "
                     "queries without a relevant item left out)")
    c[4].metric("steps/s", f"{s['steps_per_second']:.0f}" if s["steps_per_second"] else "–")
    if t.checkpoint_error:
        st.warning(f"This fit is not being saved: {md_escape(t.checkpoint_error)}. It keeps training, but a "
                   "reload or a server restart would lose it.", icon=":material/warning:")
    sample = t.balance_sample()
    balances = {"sign": bit_balance(to_bits(sample)), t.label or "rotated": bit_balance(to_bits(
        t.fitted().transform(sample)))}
    st.plotly_chart(figures.rotation_distributions(t.rotated_sample(rotation=np.eye(n_bits)), t.rotated_sample(),
                                                   balances), key="hv_dist_chart")


def _budget() -> float:
    """Seconds of fitting for this tick: what the last ticks left of TICK_TARGET_SECONDS after drawing."""
    now = time.perf_counter()
    last, budget, overhead = st.session_state.get("hv_live_tick", (None, STEP_BUDGET, None))
    if last is None:
        budget = STEP_BUDGET
    else:
        budget, overhead = next_step_budget(now - last, budget, overhead, target=TICK_TARGET_SECONDS,
                                            lo=STEP_BUDGET, hi=STEP_BUDGET_MAX)
    st.session_state["hv_live_tick"] = (now, budget, overhead)
    return budget


def _tick(key: str, n_bits: int) -> None:
    t = sessions.get(trainer_name(key, n_bits))
    if t is None:
        st.info("Press **Start** to train a rotation; the curves appear here and update while it runs.")
        return
    was_running = t.running
    if was_running:
        # a resumed fit replays its saved steps first: give it more time per tick (nothing is drawn for them)
        attempt(t.advance, max_seconds=0.5 if t.replaying else _budget(), what="fitting")
    st.plotly_chart(figures.training_curves(t.curve, references=references(key, n_bits),
                                            loss_name=loss_name(t.name, dict(t.options))),
                    key="hv_curve_chart")
    s = t.summary()
    now = schedule_now(t.name, dict(t.options), s["step"])
    st.caption(f"Curve rows: {len(t.curve)} · step {s['step']} · {s['steps_per_second']:.0f} steps/s · probe: "
               f"{len(t.probe)} queries vs the whole database, mAP@all (hashviz: expected ties) every "
               f"{t.map_every} steps (at most "
               f"{1 / t.map_min_seconds:.0f} a second, scored beside the fit) · fit: {md_escape(json.dumps(t.label))}"
               + (" · shared" if getattr(t, "shared", False) else "") + (f" · {now}" if now else ""))
    if was_running and not t.running:
        st.rerun()  # the fit ended during this tick: redraw the buttons and the status
