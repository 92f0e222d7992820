"""The live rotation panel: a per-session :class:`~hashviz.session.live.LiveRotation`, advanced a few steps per
``st.fragment(run_every=…)`` tick, checkpointed to the run folder, restored after a reload."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from hashviz.session.live import LIVE_OPTIONS, LIVE_QUANTIZERS, LiveRotation, fit_label, probe_indices, probe_map
from hashviz.ui import cache, sessions
from hashviz.ui.errors import attempt, log
from hashviz.viz import figures

TICK_SECONDS = 0.2  # curve fragment period: aims at ≥ 2 chart updates per second
SLOW_TICK_SECONDS = 1.0  # status, histogram and bit balance: once a second is enough to see them move
STEP_BUDGET = 0.08  # seconds of fitting per tick (the rest of the tick draws)


__all__ = ["LIVE_QUANTIZERS", "current", "options_form", "panel", "reset", "start"]


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


def _saver(key: str, n_bits: int, label: str, options: dict):
    def save(t: LiveRotation) -> None:
        mean = getattr(t.quantizer, "mean_", None)
        try:
            cache.workspace().save_rotation(key, n_bits, label, rotation=t.rotation, curve=t.curve, status=t.status,
                               params={"quantizer": t.name, "options": dict(options), "map_every": t.map_every,
                                       "probe_queries": len(t.probe)}, mean=mean)
        except Exception:  # a failed checkpoint must not stop the fit; the next one (in ~1 s) tries again
            log.exception("checkpoint of the live rotation failed")
    return save


def current(key: str, n_bits: int) -> LiveRotation | None:
    """This session's fit for (run, bits); after a reload, the newest checkpoint on disk comes back."""
    name = trainer_name(key, n_bits)
    t = sessions.get(name)
    if t is not None:
        return t
    labels = cache.workspace().list_rotations(key, n_bits)
    if not labels:
        return None
    saved = max((cache.workspace().load_rotation(key, n_bits, lb) for lb in labels), key=lambda s: s.get("saved", 0))
    params = saved.get("params", {})
    t = LiveRotation(cache.embeddings(key, n_bits), params.get("quantizer", "hq"), params.get("options", {}))
    t.restore(saved["curve"], saved["rotation"], status=f"restored ({saved.get('status', '?')})")
    t.label = saved["label"]
    sessions.put(name, t)
    return t


def start(key: str, n_bits: int, name: str, options: dict) -> LiveRotation:
    label = fit_label(name, options)
    t = LiveRotation(cache.embeddings(key, n_bits), name, options, checkpoint=_saver(key, n_bits, label, options))
    t.label = label
    attempt(t.start, what="starting the fit")
    sessions.put(trainer_name(key, n_bits), t)
    return t


def reset(key: str, n_bits: int) -> None:
    t = sessions.pop(trainer_name(key, n_bits))
    if t is not None:
        t.stop()
        cache.workspace().delete_rotation(key, n_bits, t.label or fit_label(t.name, dict(t.options)))


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

    The fast fragment advances the fit for :data:`STEP_BUDGET` seconds and redraws only the curve chart and one
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
    from hashviz.retrieval.metrics import bit_balance

    s = t.summary()
    c = st.columns(5)
    c[0].metric("status", s["status"])
    c[1].metric("step", s["step"])
    c[2].metric("quantization error", f"{s['quantization_error']:.4f}" if s["quantization_error"] is not None else "–")
    c[3].metric("probe mAP", f"{s['map']:.4f}" if s["map"] is not None else "–")
    c[4].metric("steps/s", f"{s['steps_per_second']:.0f}" if s["steps_per_second"] else "–")
    db = cache.embeddings(key, n_bits).part("database").z
    balances = {"sign": bit_balance(db >= 0), t.label or "rotated": bit_balance(t.fitted().transform(db) >= 0)}
    st.plotly_chart(figures.rotation_distributions(t.rotated_sample(rotation=np.eye(n_bits)), t.rotated_sample(),
                                                   balances), key="hv_dist_chart")


def _tick(key: str, n_bits: int) -> None:
    t = sessions.get(trainer_name(key, n_bits))
    if t is None:
        st.info("Press **Start** to train a rotation; the curves appear here and update while it runs.")
        return
    was_running = t.running
    if was_running:
        attempt(t.advance, max_seconds=STEP_BUDGET, what="fitting")
    st.plotly_chart(figures.training_curves(t.curve, references=references(key, n_bits),
                                            loss_name=loss_name(t.name, dict(t.options))),
                    key="hv_curve_chart")
    s = t.summary()
    now = schedule_now(t.name, dict(t.options), s["step"])
    st.caption(f"Curve rows: {len(t.curve)} · step {s['step']} · {s['steps_per_second']:.0f} steps/s · probe: "
               f"{len(t.probe)} queries vs the whole database, mAP every {t.map_every} steps (at most "
               f"{1 / t.map_min_seconds:.0f} a second) · checkpoint: {json.dumps(t.label)}"
               + (f" · {now}" if now else ""))
    if was_running and not t.running:
        st.rerun()  # the fit ended during this tick: redraw the buttons and the status
