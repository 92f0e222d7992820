"""Plotly figures of the rotation playground's toy (:mod:`hashviz.teach.toy`): the points with the hypercube
corners they snap to and the axes (the sign boundaries), an animation of a learned rotation from its start to its
end with HQ's mirrors, the error and mAP against the angle, and the learning curves. No Streamlit here.

The scatter and its animation are SVG (``go.Scatter``; ``scattergl`` does not animate) — the toy has a few hundred
points. Every figure is a pure function of the toy and rotations computed in :mod:`hashviz.teach.toy`; nothing
is scored here except codes (``U >= 0``), which are what the picture shows."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hashviz.teach.toy import Learned, Toy, all_corners, code_strings, mirror_directions, thin_steps
from hashviz.viz.figures import NEUTRAL, PALETTE, QUANTIZER_COLORS, _layout, class_color, quantizer_color

MIRROR_COLORS = ("#AA4499", "#999933", "#44AA99")


def _extent(toy: Toy) -> float:
    return float(max(1.6, 1.08 * np.abs(toy.X).max()))


def _corner_text(U: np.ndarray, n_bits: int) -> tuple[np.ndarray, list[str]]:
    corners = all_corners(n_bits)
    codes = code_strings(U >= 0)
    counts = {c: 0 for c in code_strings(corners >= 0)}
    for c in codes:
        counts[c] += 1
    return corners, [f"{c} ({counts[c]})" for c in code_strings(corners >= 0)]


def _snaps(U: np.ndarray) -> list[np.ndarray]:
    """Segments from each point to the corner it snaps to, as coordinate arrays with None breaks."""
    corner = np.where(U >= 0, 1.0, -1.0)
    out = []
    for d in range(U.shape[1]):
        seg = np.full(3 * len(U), np.nan)
        seg[0::3], seg[1::3] = U[:, d], corner[:, d]
        out.append(seg)
    return out


def _mirror_segments(vectors: np.ndarray, extent: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """2-D: the mirror of each reflection, the line through 0 orthogonal to v_i, clipped to ±extent."""
    out = []
    for v in mirror_directions(vectors).T:
        d = np.array([-v[1], v[0]]) * extent * 1.5
        out.append((np.array([-d[0], d[0]]), np.array([-d[1], d[1]])))
    return out


def _mirror_plane(v: np.ndarray, extent: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3-D: a square of the plane through 0 orthogonal to v (four corners)."""
    v = v / np.linalg.norm(v)
    a = np.cross(v, [1.0, 0, 0] if abs(v[0]) < 0.9 else [0, 1.0, 0])
    a /= np.linalg.norm(a)
    b = np.cross(v, a)
    pts = np.array([s * a + t * b for s, t in ((-1, -1), (1, -1), (1, 1), (-1, 1))]) * extent
    return pts[:, 0], pts[:, 1], pts[:, 2]


def _trace(three: bool, coords, **kw) -> dict:
    """A scatter (2-D) or scatter3d trace as a plain dict (coords: one array per axis)."""
    return dict(type="scatter3d" if three else "scatter", **dict(zip("xyz", coords)), **kw)


def _traces(toy: Toy, U: np.ndarray, vectors: np.ndarray | None, extent: float, *, static: bool,
            codes_on_hover: bool = True) -> list[dict]:
    """The scatter's traces in a fixed order: [edges, axes] (static only), corners, snaps, one per class,
    mirrors (when ``vectors``). Frames of an animation replace the non-static ones in the same order; they carry
    only coordinates and texts (``static=False``), and the animation's hover names no code
    (``codes_on_hover=False``), since a frame does not replace hover data: 30 frames of the default toy are
    0.5 MB of JSON instead of 1.3 MB.

    Plain dicts, put into one figure at the end: building plotly objects trace by trace (and ``add_vline``) cost
    ~100 ms per figure, and the hand slider redraws this figure on every move."""
    three = toy.n_bits == 3
    corners, corner_labels = _corner_text(U, toy.n_bits)
    traces = []
    if static:
        edges = [[] for _ in range(toy.n_bits)]
        for i, a in enumerate(corners):          # hypercube edges: corners one bit apart
            for b in corners[i + 1:]:
                if np.sum(a != b) == 1:
                    for d in range(toy.n_bits):
                        edges[d] += [a[d], b[d], None]
        traces.append(_trace(three, edges, mode="lines", name="hypercube (±1)ⁿ", hoverinfo="skip",
                             line=dict(color=NEUTRAL, width=1, dash="dot")))
        if three:                                 # the coordinate axes: a bit flips where a point crosses 0
            axes = [[] for _ in range(3)]
            for d in range(3):
                for e in range(3):
                    axes[e] += [-extent if e == d else 0, extent if e == d else 0, None]
            traces.append(_trace(True, axes, mode="lines", name="axes", hoverinfo="skip",
                                 line=dict(color=NEUTRAL, width=2)))
    traces.append(_trace(three, corners.T, mode="markers+text", text=corner_labels,
                         name="corner: code (points on it)", textposition="top center",
                         textfont=dict(size=14, color=NEUTRAL), hovertemplate="corner %{text}<extra></extra>",
                         marker=dict(size=5, symbol="diamond-open", color=NEUTRAL) if three else
                         dict(size=16, symbol="x-thin", color=NEUTRAL, line=dict(width=3, color=NEUTRAL))))
    traces.append(_trace(three, [v.astype(np.float32) for v in _snaps(U)], mode="lines", name="snaps to",
                         hoverinfo="skip", line=dict(color="rgba(150,150,150,0.3)", width=1)))
    codes = np.array(code_strings(U >= 0))
    role = np.where(toy.split == 1, "query", "database")
    for c, name in enumerate(toy.class_names):
        rows = np.flatnonzero(toy.labels == c)
        xyz = U[rows].T.astype(np.float32)
        if not static:
            traces.append(_trace(three, xyz, name=name))
            continue
        marker = dict(size=3.5 if three else 7, color=class_color(c), opacity=0.85)
        if not three:
            marker["line"] = dict(width=0.5, color="rgba(255,255,255,0.6)")
        if codes_on_hover:
            hover = dict(customdata=np.stack([codes[rows], role[rows]], axis=1),
                         hovertemplate=f"{name} · code %{{customdata[0]}} · %{{customdata[1]}}<extra></extra>")
        else:
            hover = dict(customdata=role[rows], hovertemplate=f"{name} · %{{customdata}}<extra></extra>")
        traces.append(_trace(three, xyz, mode="markers", name=name, marker=marker, **hover))
    if vectors is not None:
        for i in range(vectors.shape[1]):
            color = MIRROR_COLORS[i % len(MIRROR_COLORS)]
            if three:
                x, y, z = _mirror_plane(vectors[:, i], extent)
                traces.append(dict(type="mesh3d", x=x, y=y, z=z, i=[0, 0], j=[1, 2], k=[2, 3], opacity=0.18,
                                   color=color, name=f"mirror of H{i + 1}", showlegend=True, hoverinfo="name"))
            else:
                x, y = _mirror_segments(vectors, extent)[i]
                traces.append(dict(type="scatter", x=x, y=y, mode="lines", name=f"mirror of H{i + 1}",
                                   hoverinfo="name", line=dict(color=color, width=2, dash="dash")))
    return traces


def _scene_layout(toy: Toy, extent: float, height: int, title: str | None, bottom: int = 10) -> dict:
    """Layout of the scatter: fixed equal ranges, the axes (2-D: lines at 0), legend on the right."""
    layout = dict(height=height, margin=dict(l=10, r=10, t=50 if title else 40, b=bottom),
                  legend=dict(orientation="v", yanchor="top", y=1, x=1.02, xanchor="left"))
    if title:
        layout["title"] = dict(text=title, y=0.98, yanchor="top")
    if toy.n_bits == 3:
        ax = dict(range=[-extent, extent], zeroline=False)
        layout["scene"] = dict(xaxis=dict(ax, title=dict(text="bit 1")), yaxis=dict(ax, title=dict(text="bit 2")),
                               zaxis=dict(ax, title=dict(text="bit 3")), aspectmode="cube",
                               camera=dict(eye=dict(x=1.5, y=1.3, z=0.9)))
    else:
        line = dict(color=NEUTRAL, width=1.5)
        layout["shapes"] = [dict(type="line", xref="x domain", yref="y", x0=0, x1=1, y0=0, y1=0, line=line),
                            dict(type="line", xref="x", yref="y domain", x0=0, x1=0, y0=0, y1=1, line=line)]
        layout["xaxis"] = dict(range=[-extent, extent], zeroline=False, constrain="domain",
                               title=dict(text="coordinate 1 (bit 1: right of the axis)"))
        layout["yaxis"] = dict(range=[-extent, extent], zeroline=False, scaleanchor="x", scaleratio=1,
                               constrain="domain", title=dict(text="coordinate 2 (bit 2: above)"))
    return layout


def _figure(spec: dict) -> go.Figure:
    """A figure from a plain dict without plotly's per-property validation (these builders run on every slider
    move; tests validate their output with ``go.Figure(fig.to_dict())``)."""
    return go.Figure(spec, _validate=False)


def toy_scatter(toy: Toy, U: np.ndarray, *, vectors: np.ndarray | None = None, title: str | None = None,
                height: int = 520) -> go.Figure:
    """The toy's points ``U`` (rotated: ``X @ R``) coloured by class, each joined to the corner its code names,
    with the corners labelled "code (points on it)", the hypercube and the axes. ``vectors``: HQ's Householder
    vectors (columns), drawn as their mirror lines (2-D) or planes (3-D)."""
    U = np.asarray(U, dtype=np.float64)
    extent = _extent(toy)
    return _figure(dict(data=_traces(toy, U, vectors, extent, static=True),
                        layout=_scene_layout(toy, extent, height, title)))


def frame_title(learned: Learned, k: int) -> str:
    i = int(np.searchsorted(learned.map_steps, learned.steps[k]))
    m = learned.maps[i] if i < len(learned.maps) and learned.map_steps[i] == learned.steps[k] else None
    return (f"{learned.label}: step {int(learned.steps[k])} · quantization error {learned.errors[k]:.4f}"
            + (f" · mAP {m:.3f}" if m is not None else ""))


def toy_animation(toy: Toy, learned: Learned, *, max_frames: int = 30, height: int = 540,
                  duration_ms: int = 120) -> go.Figure:
    """The toy turning from ``learned``'s start (HQ: R = −I) to its learned rotation: one plotly frame per shown
    step (at most ``max_frames``, always the first and the last, chosen among the steps whose mAP is known), with
    a play button and a step slider. Each frame moves the points, their snap lines, the corner counts and (HQ)
    the mirrors; its name is the step number and the frame's title gives the step's error and mAP."""
    extent = _extent(toy)
    X = toy.X.astype(np.float64)
    known = np.flatnonzero(np.isin(learned.steps, learned.map_steps))
    pick = known[thin_steps(len(known), max_frames)]
    first = pick[0]
    vec = learned.vectors
    data = _traces(toy, X @ learned.rotations[first], None if vec is None else vec[first], extent, static=True,
                   codes_on_hover=False)
    n_static = 2 if toy.n_bits == 3 else 1
    moving = list(range(n_static, len(data)))
    frames = [dict(data=_traces(toy, X @ learned.rotations[k], None if vec is None else vec[k], extent,
                                static=False),
                   traces=moving, name=str(int(learned.steps[k])),
                   layout=dict(title=dict(text=frame_title(learned, k)))) for k in pick]
    redraw = True  # each frame also changes its title (step, error, mAP), which only a redraw shows
    play = dict(frame=dict(duration=duration_ms, redraw=redraw), transition=dict(duration=0), fromcurrent=True,
                mode="immediate")
    still = dict(frame=dict(duration=0, redraw=redraw), mode="immediate", transition=dict(duration=0))
    layout = _scene_layout(toy, extent, height, frame_title(learned, first), bottom=110)
    layout["updatemenus"] = [dict(type="buttons", direction="left", x=0, y=-0.12, xanchor="left", yanchor="top",
                                  showactive=False, buttons=[
                                      dict(label="▶ play", method="animate", args=[None, play]),
                                      dict(label="❚❚ pause", method="animate", args=[[None], still])])]
    layout["sliders"] = [dict(active=0, x=0.22, len=0.78, y=-0.08, yanchor="top", currentvalue=dict(prefix="step "),
                              steps=[dict(method="animate", label=f["name"], args=[[f["name"]], still])
                                     for f in frames])]
    return _figure(dict(data=data, layout=layout, frames=frames))


def toy_landscape(angles: np.ndarray, errors: np.ndarray, maps: np.ndarray | None, *,
                  marks: Mapping[str, float] = (), hand: float | None = None, height: int = 340) -> go.Figure:
    """Quantization error (left axis) and mAP (right axis) of the 2-D toy against the rotation angle θ in
    [−180°, 180°), with the hand slider's θ and the learned rotations' angles (``marks``: label → θ, drawn at every
    copy 90° apart) marked."""
    a = (np.asarray(angles, dtype=float) + 180.0) % 360.0 - 180.0
    order = np.argsort(a)
    data = [dict(type="scatter", x=a[order], y=np.asarray(errors)[order], name="quantization error", mode="lines",
                 line=dict(color=PALETTE[5]), hovertemplate="θ %{x:.0f}°: error %{y:.4f}<extra></extra>")]
    if maps is not None:
        data.append(dict(type="scatter", x=a[order], y=np.asarray(maps)[order], name="mAP (ties expected)",
                         mode="lines", yaxis="y2", line=dict(color=PALETTE[0], dash="dot"),
                         hovertemplate="θ %{x:.0f}°: mAP %{y:.3f}<extra></extra>"))
    shapes, notes = [], []
    for i, (label, theta) in enumerate(dict(marks).items()):   # every copy, 90° apart; the label on one
        color = quantizer_color(label, i)
        base = (float(theta) + 45.0) % 90.0 - 45.0
        shapes += [dict(type="line", xref="x", yref="y domain", x0=float(x), x1=float(x), y0=0, y1=1,
                        line=dict(color=color, width=2, dash="dash"))
                   for x in base + np.array([-180.0, -90.0, 0.0, 90.0])]
        notes.append(dict(x=base, y=1.0 - 0.08 * i, xref="x", yref="y domain", text=str(label), showarrow=False,
                          xanchor="left", xshift=4, font=dict(color=color)))
    if hand is not None:
        shapes.append(dict(type="line", xref="x", yref="y domain", x0=float(hand), x1=float(hand), y0=0, y1=1,
                           line=dict(color=NEUTRAL, width=3)))
        notes.append(dict(x=float(hand), y=0, xref="x", yref="y domain", text="your θ", showarrow=False,
                          xanchor="left", yanchor="bottom", xshift=4))
    layout = dict(height=height, margin=dict(l=10, r=10, t=30, b=10), shapes=shapes, annotations=notes,
                  legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
                  xaxis=dict(title=dict(text="rotation angle θ (degrees)"), range=[-180, 180], dtick=45),
                  yaxis=dict(title=dict(text="quantization error")),
                  yaxis2=dict(title=dict(text="mAP"), overlaying="y", side="right", showgrid=False))
    return _figure(dict(data=data, layout=layout))


def toy_curves(learned: Learned, *, best_error: float | None = None, height: int = 420) -> go.Figure:
    """Quantization error (top) and mAP (bottom) against steps of one learned rotation; ``best_error``: the grid
    search's best error, drawn as a reference line."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=("quantization error", "mAP (ties expected)"))
    color = QUANTIZER_COLORS.get(learned.name) or PALETTE[0]
    fig.add_trace(go.Scatter(x=learned.steps, y=learned.errors, name="quantization error", mode="lines",
                             line=dict(color=color)), row=1, col=1)
    fig.add_trace(go.Scatter(x=learned.map_steps, y=learned.maps, name="mAP", mode="lines+markers",
                             marker=dict(size=4), line=dict(color=color, dash="dot")), row=2, col=1)
    if best_error is not None:
        fig.add_hline(y=float(best_error), line=dict(color=NEUTRAL, dash="dash", width=1), row=1, col=1,
                      annotation_text=f"grid's best {best_error:.4f}", annotation_position="top right")
    fig.update_xaxes(title_text="step", row=2, col=1)
    fig.update_layout(showlegend=False)
    return _layout(fig, height=height, title=f"{learned.label}: {len(learned.steps) - 1} steps")
