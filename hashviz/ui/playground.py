"""The rotation playground (Streamlit side): the toy's settings, rotating it by hand (a fragment, so a slider
move reruns only that part), the learned rotations with their animation and curves, and what to read from it.

The toy, its scores, the grid search and the fits are :mod:`hashviz.teach.toy` (cached here by the toy's
settings); the figures are :mod:`hashviz.viz.toy`."""

from __future__ import annotations

import numpy as np
import streamlit as st

from hashviz.teach import toy as T
from hashviz.ui.errors import attempt
from hashviz.ui.params import init_from_param, set_params
from hashviz.viz import toy as V

LEARNER_LABELS = {"hq": "HQ (Householder reflections)", "itq": "ITQ (alternating SVD)",
                  "random": "random search (keeps turns that raise mAP)"}
GRID_STEP_3D = 10.0
HAND_KEYS = {2: ("hv_toy_theta",), 3: ("hv_toy_yaw", "hv_toy_pitch", "hv_toy_roll")}


# ---- cached computations (keyed by the toy's settings, a frozen dataclass) -----------------------------------
@st.cache_data(max_entries=64, show_spinner=False)
def toy(spec: T.ToySpec) -> T.Toy:
    return T.make_toy(spec)


@st.cache_data(max_entries=64, show_spinner="searching every angle…")
def grid(spec: T.ToySpec) -> T.Grid:
    t = toy(spec)
    return T.grid_search_2d(t, 1.0) if spec.n_bits == 2 else T.grid_search_3d(t, GRID_STEP_3D)


@st.cache_data(max_entries=128, show_spinner="fitting the quantizer on the toy…")
def learned(spec: T.ToySpec, name: str) -> T.Learned:
    return T.learn(toy(spec), name)


@st.cache_data(max_entries=256, show_spinner=False)
def _score(spec: T.ToySpec, angles: tuple) -> T.ToyScore:
    return T.score(toy(spec), rotation(spec.n_bits, angles))


def rotation(n_bits: int, angles: tuple) -> np.ndarray:
    return T.rotation_2d(angles[0]) if n_bits == 2 else T.rotation_3d(*angles)


# ---- settings ------------------------------------------------------------------------------------------------
def settings() -> T.ToySpec:
    """The toy's settings, one row of widgets (mirrored in the URL as ``toy_bits``)."""
    init_from_param("hv_toy_bits", "toy_bits", int, [2, 3])
    c1, c2, c3, c4, c5 = st.columns([1, 2, 2, 2, 1])
    n_bits = int(c1.radio("Bits", [2, 3], horizontal=True, key="hv_toy_bits",
                          help="2 bits: the plane; 3 bits: space (drag to turn the 3-D view)"))
    top = 2 ** n_bits
    if st.session_state.get("hv_toy_classes", 4) > top:
        st.session_state["hv_toy_classes"] = top
    classes = c2.slider("Classes (one per corner)", 2, top, min(4, top), key="hv_toy_classes")
    spread = c3.slider("Spread of each cluster", 0.05, 1.0, 0.3, 0.05, key="hv_toy_spread",
                       help="standard deviation of the Gaussian around each class centre")
    offset = c4.slider("Clusters turned away from the corners (°)", 0, 90, 30, key="hv_toy_offset",
                       help="the class centres are hypercube corners turned by this angle" +
                            (" about the axis (1, 2, 3)" if n_bits == 3 else ""))
    seed = int(c5.number_input("Seed", 0, 10_000, 0, key="hv_toy_seed"))
    set_params(toy_bits=n_bits)
    return T.ToySpec(n_bits=n_bits, n_classes=int(classes), spread=float(spread), offset=float(offset), seed=seed)


# ---- rotate by hand --------------------------------------------------------------------------------------------
def _hand_angles(n_bits: int) -> tuple:
    if n_bits == 2:
        theta = st.slider("Rotation angle θ (°)", -180.0, 180.0, 0.0, 1.0, key="hv_toy_theta",
                          help="X @ R(θ) turns every point counter-clockwise by θ")
        return (float(theta),)
    c = st.columns(3)
    yaw = c[0].slider("yaw: about z (°)", -180.0, 180.0, 0.0, 1.0, key="hv_toy_yaw")
    pitch = c[1].slider("pitch: about y (°)", -90.0, 90.0, 0.0, 1.0, key="hv_toy_pitch")
    roll = c[2].slider("roll: about x (°)", -180.0, 180.0, 0.0, 1.0, key="hv_toy_roll")
    return float(yaw), float(pitch), float(roll)


def _angle_text(n_bits: int, angles) -> str:
    if n_bits == 2:
        return f"θ = {float(np.ravel(angles)[0]):.1f}°"
    return "(yaw, pitch, roll) = (" + ", ".join(f"{a:.0f}°" for a in angles) + ")"


@st.fragment
def by_hand(spec: T.ToySpec) -> None:
    """Sliders → the rotated toy, its codes, error and mAP; the error against θ with the grid's best. A fragment:
    moving a slider reruns only this part."""
    t = toy(spec)
    angles = _hand_angles(spec.n_bits)
    s = attempt(_score, spec, angles, what="scoring the toy")
    best = st.session_state.get("hv_toy_best")
    if best is None or best[0] != spec or s.quantization_error < best[2]:
        st.session_state["hv_toy_best"] = best = (spec, angles, s.quantization_error)
    left, right = st.columns([3, 2])
    left.plotly_chart(V.toy_scatter(t, s.U, title=f"X @ R, {_angle_text(spec.n_bits, angles)}"),
                      key="hv_toy_scatter")
    with right:
        m1, m2 = st.columns(2)
        m1.metric("quantization error", f"{s.quantization_error:.4f}",
                  help="mean (|u| − 1)² over the database points, rows rescaled to norm √n_bits first")
        m2.metric("mAP (ties expected)", f"{s.map:.3f}",
                  help=f"queries vs database; optimistic {s.map_optimistic:.3f}, pessimistic {s.map_pessimistic:.3f}")
        st.caption(f"Tie orders: optimistic {s.map_optimistic:.3f} · expected {s.map:.3f} · pessimistic "
                   f"{s.map_pessimistic:.3f} — the spread is what the order of points sharing one corner decides.")
        st.dataframe([{"code": c, "points on this corner": n} for c, n in s.corner_counts.items()],
                     hide_index=True, key="hv_toy_codes")
        g = grid(spec)
        st.caption(f"Your lowest error so far: **{best[2]:.4f}** at {_angle_text(spec.n_bits, best[1])}. "
                   + _grid_text(spec, g))
    if spec.n_bits == 2:
        marks = {lf.label: T.angle_2d(lf.rotation) for lf in _all_learned(spec)}
        st.plotly_chart(V.toy_landscape(g.angles, g.errors, g.maps, marks=marks, hand=angles[0]),
                        key="hv_toy_landscape")
        st.caption("The curves repeat every 90°: turning by a quarter turn only swaps and flips bits, which changes "
                   "no Hamming distance and no |u|. Dashed lines: where the learned rotations landed.")


def _grid_text(spec: T.ToySpec, g: T.Grid) -> str:
    if spec.n_bits == 2:
        return (f"The best angle on a 1° grid (θ = 0°, 1°, …, 359°): θ = {T.symmetric_angle(g.best_angle):.0f}° "
                f"(mod 90°), error **{g.best_error:.4f}**.")
    return (f"The best of a {g.step:.0f}° grid over yaw, pitch and roll ({len(g.errors):,} rotations): "
            f"{_angle_text(3, g.best_angle)}, error **{g.best_error:.4f}**.")


# ---- rotation learned ------------------------------------------------------------------------------------------
def _all_learned(spec: T.ToySpec) -> list[T.Learned]:
    return [attempt(learned, spec, name, what=f"fitting {name} on the toy") for name in T.LEARNERS]


def _jump(spec: T.ToySpec, R: np.ndarray) -> None:
    """Button callback: put the hand sliders on rotation ``R`` (its proper equivalent)."""
    values = (round(T.angle_2d(R), 1),) if spec.n_bits == 2 else tuple(round(v, 1) for v in T.euler_3d(R))
    for key, v in zip(HAND_KEYS[spec.n_bits], values):
        st.session_state[key] = float(v)


def learned_view(spec: T.ToySpec) -> None:
    """HQ, ITQ and random search fitted on the toy: the animation of one of them from its start to its end, the
    curves of all three, and how their results compare with the grid's best."""
    t = toy(spec)
    fits = _all_learned(spec)
    g = grid(spec)
    init_from_param("hv_toy_learner", "learner", str, list(T.LEARNERS))
    name = st.radio("Animate", list(T.LEARNERS), format_func=LEARNER_LABELS.get, horizontal=True,
                    key="hv_toy_learner")
    set_params(learner=name)
    f = fits[list(T.LEARNERS).index(name)]
    left, right = st.columns([3, 2])
    left.plotly_chart(V.toy_animation(t, f), key="hv_toy_animation")
    right.plotly_chart(V.toy_curves(f, best_error=g.best_error), key="hv_toy_curves")
    right.button(f"Put the hand sliders on {f.label}'s rotation", key="hv_toy_jump", on_click=_jump,
                 args=(spec, f.rotation))
    st.dataframe(comparison_rows(spec, fits, g), hide_index=True, key="hv_toy_learned_table")
    st.markdown(verdict(spec, fits, g))
    if name == "hq":
        st.caption("HQ's rotation is R = H₁H₂" + ("H₃" if spec.n_bits == 3 else "") + ": each H_i reflects across "
                   "the dashed mirror " + ("plane" if spec.n_bits == 3 else "line") + " through 0 orthogonal to its "
                   "vector v_i. The v_i start at the unit vectors, so R = −I at step 0 (every bit flipped, every "
                   "distance kept: the same ranking as sign)" + (", and two mirrors at angle α make a turn by 2α."
                                                                if spec.n_bits == 2 else
                   "; three reflections have det −1, so −R — the same codes with every bit flipped — is the "
                   "rotation the sliders show."))
    elif name == "itq":
        st.caption("ITQ starts from a seeded random rotation and alternates: codes B = sgn(XR), then the rotation "
                   "closest to them (orthogonal Procrustes).")
    else:
        st.caption("Random search starts at R = I and keeps a random turn only when it raises mAP on a labelled "
                   "subset — it aims at mAP, not at the quantization error, and stops gaining once mAP is 1.")


def comparison_rows(spec: T.ToySpec, fits, g: T.Grid) -> list[dict]:
    rows = []
    for f in fits:
        row = {"rotation": f"{f.label} ({len(f.steps) - 1} steps)"}
        if spec.n_bits == 2:
            row["θ (mod 90°)"] = round(T.symmetric_angle(T.angle_2d(f.rotation)), 2)
        else:
            row["yaw, pitch, roll"] = ", ".join(f"{v:.0f}°" for v in T.euler_3d(f.rotation))
        rows.append({**row, "quantization error": f"{f.error:.6f}", "mAP": f"{f.map:.4f}"})
    grid_row = {"rotation": f"best of the {g.step:.0f}° grid"}
    if spec.n_bits == 2:
        grid_row["θ (mod 90°)"] = round(T.symmetric_angle(g.best_angle), 2)
    else:
        grid_row["yaw, pitch, roll"] = ", ".join(f"{v:.0f}°" for v in g.best_angle)
    rows.append({**grid_row, "quantization error": f"{g.best_error:.6f}",
                 "mAP": f"{T.toy_map(toy(spec), g.best_rotation):.4f}"})
    return rows


def verdict(spec: T.ToySpec, fits, g: T.Grid) -> str:
    """One sentence, computed from the numbers, on where HQ and ITQ landed relative to the grid's best."""
    parts = []
    for f in fits:
        if f.name == "random":
            continue
        diff = f.error - g.best_error
        where = f"{'lower' if diff < 0 else 'higher'} by {abs(diff):.1e}" if diff else "equal"
        if spec.n_bits == 2:
            away = abs(T.symmetric_angle(T.angle_2d(f.rotation) - g.best_angle))
            parts.append(f"{f.label} lands {away:.1f}° from the 1° grid's best angle, error {f.error:.6f} vs the "
                         f"grid's {g.best_error:.6f} ({where})")
        else:
            parts.append(f"{f.label} reaches error {f.error:.6f} vs the {g.step:.0f}° grid's best "
                         f"{g.best_error:.6f} ({where})")
    rnd = next(f for f in fits if f.name == "random")
    return ("**Where the learned rotations land:** " + "; ".join(parts) + f". Random search ends at error "
            f"{rnd.error:.5f} with mAP {rnd.map:.3f}: it optimises mAP, not the error.")


def explain() -> None:
    st.markdown(
        "**What you see.** Turning the cloud never changes the distance between two points — only which side of "
        "each axis a point falls on, which is its bits. Many points snap to the same corner: they *tie*, all at "
        "Hamming distance 0 from one another. A ranking must still put tied points in some order, so mAP depends "
        "on that order: the optimistic, expected and pessimistic numbers above are the luckiest order, the "
        "average over all orders and the unluckiest.")
    st.page_link("pages/4_queries.py", label="Ties on a real query: the tie group at the cut-off (Queries)",
                 icon=":material/search:")
