"""Plotly figure builders for the app (each returns a ``go.Figure``; no Streamlit here).

Colours are colour-blind safe: classes use the Okabe–Ito palette (black swapped for grey so dark themes stay
readable) extended by Paul Tol's purple and olive (his dark indigo and wine nearly vanish on a dark background);
continuous values use ``cividis``; correlations use the diverging ``RdBu``. Lines and marks that are not data
(±1 targets, rings, corners) use :data:`NEUTRAL` grey, never black or white; text, axes and backgrounds come from
Streamlit's plotly theme, so figures follow the light or dark theme. Relevance is never colour alone: ✓/✗ marks go
with the green/vermillion borders.
Scatter plots switch to WebGL (``scattergl``) above :data:`WEBGL_THRESHOLD` points.

Plotly renders a subset of HTML (``<a href>``, ``<b>``, ``<span style>``…) in titles, legends, tick labels,
annotations and hover text, so every name that reaches one of them (class names, quantizer and run labels, titles
built from them) goes through :func:`_text` first: user text is shown as text, never as markup.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999", "#AA4499",
           "#999933")
QUANTIZER_COLORS = {"sign": "#999999", "itq": "#E69F00", "hq": "#0072B2", "random": "#009E73"}
RELEVANT_COLOR, IRRELEVANT_COLOR = "#009E73", "#D55E00"
SEQUENTIAL = "cividis"
DIVERGING = "RdBu"
RANK_TICKS_MAX = 3_000  # above this many relevant-item ticks (all rows), the rank strip shows shares per rank bin
RANK_BINS = 400
WEBGL_THRESHOLD = 2_000  # one WebGL trace draws 10,000 points in tens of ms; SVG needs a DOM node per point
GREY = "rgba(150,150,150,0.35)"
NEUTRAL = "#8a8a8a"  # lines and marks readable on light and dark backgrounds (never black or white)


def _text(value) -> str:
    """A name for plotly text (trace names, titles, ticks, annotations, hover): ``&``, ``<`` and ``>`` as entities,
    which plotly shows as the characters — so a class called ``<a href=…>`` is shown, not made a link."""
    return html.escape(str(value), quote=False)


def _texts(values):
    """:func:`_text` on the strings of a sequence (numbers stay numbers, so numeric axes stay numeric)."""
    return None if values is None else [_text(v) if isinstance(v, str) else v for v in values]


def class_color(i: int) -> str:
    return PALETTE[int(i) % len(PALETTE)]


_QUANTIZER_ALIASES = {"random search": "random", "random-search": "random", "hq (householder)": "hq"}
# colours for other curves (live fits…): never one of the fixed quantizer colours, so "live HQ" ≠ sign's grey
# (and not the yellow, too faint for a thin line on the light theme)
_OTHER_COLORS = tuple(c for c in PALETTE if c not in QUANTIZER_COLORS.values() and c != "#F0E442")


def quantizer_color(name: str, i: int = 0) -> str:
    key = str(name).split(":")[0].strip().lower()
    key = _QUANTIZER_ALIASES.get(key, key)
    return QUANTIZER_COLORS.get(key) or _OTHER_COLORS[int(i) % len(_OTHER_COLORS)]


def _layout(fig: go.Figure, *, height: int = 360, title: str | None = None, **kw) -> go.Figure:
    """Shared look: the title on top, a horizontal legend in its own strip between title and plot."""
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=75 if title else 30, b=10),
                      title=dict(text=_text(title), y=0.98, yanchor="top") if title else None,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0), **kw)
    return fig


def _scatter_cls(n: int):
    return go.Scattergl if n > WEBGL_THRESHOLD else go.Scatter


# ---- live rotation training -----------------------------------------------------------------------------------
def thin(n: int, max_points: int) -> np.ndarray:
    """At most ``max_points`` evenly spaced indices into ``range(n)``, always with the first and the last."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


PROBE_MAP_LABEL = "probe mAP@all (hashviz)"  # the live fits' probe score: hashviz's protocol on a query subset


def loss_is_quantization_error(curve: Sequence[Mapping]) -> bool:
    """Whether every row with both values has loss = quantization error (HQ's l2 and ITQ on rescaled rows: the
    same quantity), and there is at least one such row."""
    both = [(r["loss"], r["quantization_error"]) for r in curve
            if r.get("loss") is not None and r.get("quantization_error") is not None]
    return bool(both) and all(abs(a - b) <= 1e-9 * max(1.0, abs(b)) for a, b in both)


def training_curves(curve: Sequence[Mapping], *, references: Mapping[str, float] | None = None,
                    loss_name: str = "loss", max_points: int = 300, merged: bool | None = None,
                    map_label: str = PROBE_MAP_LABEL) -> go.Figure:
    """Left: loss and quantization error against steps; right: probe mAP against steps with reference lines
    (e.g. ``{"sign": 0.41, "ITQ": 0.55}``). ``curve`` rows: ``step``, ``loss``, ``quantization_error`` and,
    every few steps, ``map`` (named ``map_label``: its protocol). When the loss *is* the quantization error
    (``merged``; by default :func:`loss_is_quantization_error` of the curve) the left panel draws it once, named
    "quantization error", with the loss's name on its axis.

    Redrawn several times a second while a rotation trains, so it is kept light: at most ``max_points`` rows per
    line (evenly thinned, the newest always kept), laid out by hand (no make_subplots), a fixed ``uirevision``
    so zoom survives the redraws."""
    rows = [curve[i] for i in thin(len(curve), max_points)]
    pts = [r for r in curve if r.get("map") is not None]
    pts = [pts[i] for i in thin(len(pts), max_points)]
    steps = [r["step"] for r in rows]
    merged = loss_is_quantization_error(curve) if merged is None else merged
    qe = go.Scatter(x=steps, y=[r.get("quantization_error") for r in rows], name="quantization error",
                    mode="lines", line=dict(color=PALETTE[5], dash=None if merged else "dot"), xaxis="x",
                    yaxis="y" if merged else "y2")
    data = ([qe] if merged else [
        go.Scatter(x=steps, y=[r.get("loss") for r in rows], name=loss_name, mode="lines",
                   line=dict(color=PALETTE[0]), xaxis="x", yaxis="y"), qe]) + [
        go.Scatter(x=[r["step"] for r in pts], y=[r["map"] for r in pts], name=map_label,
                   mode="lines+markers" if len(pts) <= 60 else "lines", line=dict(color=QUANTIZER_COLORS["hq"]),
                   xaxis="x2", yaxis="y3"),
    ]
    shapes, notes = [], []
    for i, (name, value) in enumerate((references or {}).items()):
        if value is None or not np.isfinite(value):
            continue
        color = quantizer_color(name, i)
        shapes.append(dict(type="line", xref="x2 domain", yref="y3", x0=0, x1=1, y0=float(value), y1=float(value),
                           line=dict(color=color, dash="dash")))
        notes.append(dict(xref="x2 domain", yref="y3", x=1, y=float(value), text=f"{_text(name)} {value:.3f}",
                          showarrow=False, xanchor="right", yanchor="bottom", font=dict(color=color)))
    layout = dict(
        xaxis=dict(domain=[0, 0.38], title=dict(text="step")), xaxis2=dict(domain=[0.62, 1], title=dict(text="step")),
        yaxis=dict(title=dict(text=f"quantization error = {loss_name}" if merged else loss_name)),
        yaxis3=dict(title=dict(text=map_label), anchor="x2"), shapes=shapes, annotations=notes,
        uirevision="training_curves")
    if not merged:
        layout["yaxis2"] = dict(title=dict(text="quantization error"), overlaying="y", side="right", showgrid=False)
    return _layout(go.Figure(data=data, layout=layout), height=340)


def _densities(before, after, bins: int):
    """(bin centres, bin width, (density before, density after)) on shared bins spanning both sets and ±1.5."""
    before, after = np.asarray(before, dtype=float).ravel(), np.asarray(after, dtype=float).ravel()
    lo = float(min(before.min(initial=0), after.min(initial=0), -1.5))
    hi = float(max(before.max(initial=0), after.max(initial=0), 1.5))
    edges = np.linspace(lo, hi, bins + 1)
    densities = tuple(np.histogram(v, bins=edges, density=True)[0] for v in (before, after))
    return (edges[:-1] + edges[1:]) / 2, float(edges[1] - edges[0]), densities


def rotation_distributions(before: np.ndarray, after: np.ndarray, balances: Mapping[str, np.ndarray], *,
                           bins: int = 60, labels: tuple[str, str] = ("sign (no rotation)", "rotated")) -> go.Figure:
    """Left: overlaid histograms (densities, binned here so only bin heights travel to the browser) of the
    coordinates ``before`` and ``after`` a rotation — rows rescaled to norm √n_bits — with the ±1 targets marked
    (a good rotation moves the mass onto ±1); right: the fraction of +1 per bit for each named code set in
    ``balances``, 0.5 (dashed) being a perfectly balanced bit. One figure laid out by hand (the live page redraws
    it while a rotation trains, and one plotly redraw is cheaper in the browser than two)."""
    centres, width, densities = _densities(before, after, bins)
    data = []
    for density, name, color in zip(densities, labels, (QUANTIZER_COLORS["sign"], PALETTE[0]), strict=True):
        data.append(go.Bar(x=centres.round(4), y=density.round(5), width=width, name=_text(name), opacity=0.6,
                           marker_color=color, legendgroup=_text(name), xaxis="x", yaxis="y"))
    for i, (name, b) in enumerate(balances.items()):
        b = np.asarray(b, dtype=float)
        data.append(go.Bar(x=np.arange(len(b)), y=b.round(4), name=f"{_text(name)} (bit balance)",
                           marker_color=quantizer_color(name, i), xaxis="x2", yaxis="y2", offsetgroup=str(i)))
    line = dict(color=NEUTRAL, dash="dash", width=1)
    shapes = [dict(type="line", xref="x", yref="y domain", x0=v, x1=v, y0=0, y1=1, line=line) for v in (-1, 1)]
    shapes.append(dict(type="line", xref="x2 domain", yref="y2", x0=0, x1=1, y0=0.5, y1=0.5, line=line))
    layout = dict(
        barmode="overlay", bargap=0,
        xaxis=dict(domain=[0, 0.46], title=dict(text="rotated coordinate (targets ±1)")),
        xaxis2=dict(domain=[0.56, 1], title=dict(text="bit")),
        yaxis=dict(title=dict(text="density")),
        yaxis2=dict(title=dict(text="fraction of +1"), range=[0, 1], anchor="x2"),
        shapes=shapes, uirevision="rotation_distributions")
    return _layout(go.Figure(data=data, layout=layout), height=320)


# ---- maps of embeddings and codes -----------------------------------------------------------------------------
def code_strings(bits: np.ndarray, group: int = 8) -> np.ndarray:
    """Each row of bool ``bits`` as ``"01011100 10…"`` (groups of ``group``), vectorised: a map's hover text."""
    bits = np.asarray(bits, dtype=bool)
    n, nb = bits.shape
    digits = bits.astype(np.uint8) + ord("0")
    n_groups = -(-nb // group)
    out = np.full((n, nb + n_groups - 1), ord(" "), dtype=np.uint8)
    for g in range(n_groups):
        out[:, g * (group + 1):g * (group + 1) + min(group, nb - g * group)] = digits[:, g * group:(g + 1) * group]
    return out.view(f"S{out.shape[1]}").ravel().astype(str)


MAP_POINTS, MAP_OTHERS = "points", "other classes"  # a map's data traces, by their ``meta`` (names are for legends)
NO_LABEL = "no label"  # the trace of multi-label rows without any label
# a map coloured by class draws each class in up to MAP_LAYERS interleaved traces (at most about MAP_LAYER_TRACES
# traces in all): one trace per class would draw the last class above every other one, hiding how mixed they are
MAP_LAYERS, MAP_LAYER_TRACES = 3, 48


def _class_name(class_names: Sequence[str], c: int) -> str:
    """Class ``c``'s name, or the id itself when the names do not reach it."""
    return str(class_names[c]) if 0 <= c < len(class_names) else str(c)


def _class_layers(classes: np.ndarray, rows: np.ndarray):
    """``(layer, class, rows of that class in that layer)`` in drawing order: each class present among ``rows``
    (``classes``: one class id per row of the full array) split into up to :data:`MAP_LAYERS` interleaved layers
    (fewer when there are many classes, so about :data:`MAP_LAYER_TRACES` traces at most), layer by layer."""
    present = np.unique(classes[rows])
    layers = int(np.clip(MAP_LAYER_TRACES // max(len(present), 1), 1, MAP_LAYERS))
    for layer in range(layers):
        for c in present:
            r = rows[classes[rows] == c][layer::layers]
            if len(r):
                yield layer, int(c), r


def embedding_map(xy: np.ndarray, *, labels: np.ndarray | None = None, class_names: Sequence[str] = (),
                  values: np.ndarray | None = None, value_name: str = "value",
                  value_range: tuple[float, float] | None = None, index: np.ndarray | None = None,
                  selected: Sequence[int] | None = None, highlight: Sequence[int] | None = None,
                  anchor: int | None = None, codes: np.ndarray | None = None,
                  shown_classes: Sequence[int] | None = None, title: str | None = None,
                  height: int = 460) -> go.Figure:
    """A 2-D map. Its data traces carry ``meta`` :data:`MAP_POINTS` (or :data:`MAP_OTHERS`) and a flat
    ``customdata`` row id per point (for selections).

    Coloured by class (``labels`` (n,) class ids; (n, c) multi-hot labels are coloured by their first label, all
    of them in the hover): WebGL traces of one class each, in its colour, named by the class (the first of each
    class is its legend entry) — a browser then converts one colour per trace, where a colour per point (a colour
    scale over class ids) cost a quarter of a second per 10,000-point map in software WebGL. Each class is split
    into :data:`MAP_LAYERS` interleaved layers (fewer with many classes), drawn layer by layer, so overlapping
    classes show as mixed rather than the last class on top. Coloured by a continuous
    ``values``: one trace on cividis, on ``value_range`` when given so two maps share one scale. Hover shows the
    row id, its class(es) and, with ``codes`` (bool (n, n_bits)), the code's bits. ``selected`` (row ids; an
    empty list selects nothing) greys every other point — the same rows in every map built with them (linked
    brushing); ``shown_classes`` (class indices) draws the other classes in one grey trace, under the rest (their
    legend entries grey); ``highlight`` rings points (e.g. Hamming neighbours of ``anchor``, drawn as a star).
    ``index`` maps rows of ``xy`` to row ids (subsampled maps). Default drag mode: lasso."""
    xy = np.asarray(xy, dtype=np.float32)
    n = len(xy)
    index = np.arange(n) if index is None else np.asarray(index)
    Scatter = _scatter_cls(n)
    labels = None if labels is None else np.asarray(labels)
    multi = labels is not None and labels.ndim == 2
    names = [str(c) for c in class_names]
    fig = go.Figure()

    def name_of(c: int) -> str:
        return _class_name(names, c)

    first = None  # one class per point for colours: the label, or a multi-label row's first label (-1: none)
    if labels is not None:
        if multi:
            lab = np.asarray(labels, dtype=bool)
            first = np.where(lab.any(axis=1), lab.argmax(axis=1), -1)
        else:
            first = labels.astype(np.int64)
    shown = np.ones(n, bool)
    if shown_classes is not None and labels is not None:
        chosen = np.asarray(list(shown_classes), dtype=np.int64)
        shown = (np.asarray(labels, bool)[:, chosen].any(axis=1) if multi else np.isin(labels, chosen)) \
            if chosen.size else np.zeros(n, bool)
        if multi and chosen.size:  # a row shown for a chosen label takes that label's colour
            mine = np.asarray(labels, bool)[:, chosen]
            first = np.where(shown, chosen[mine.argmax(axis=1)], first)
    if labels is None:
        def class_text(rows):
            return None
    elif multi:  # every label of a row
        every = np.asarray([", ".join(_text(name_of(c)) for c in np.flatnonzero(row)) or "—"
                            for row in np.asarray(labels, bool)], dtype=object)

        def class_text(rows):
            return every[rows]
    else:
        lookup = np.array([_text(name_of(c)) for c in range(int(first.max(initial=0)) + 1)], dtype=object)

        def class_text(rows):
            return lookup[first[rows]]
    code_text = None if codes is None else code_strings(np.asarray(codes))
    sel = None if selected is None else np.asarray(list(selected), np.int64)

    def add(rows, marker, meta, text, name=None, rank=None, showlegend=None, legendgroup=None):
        hover = ["row %{customdata}" + (" · %{text}" if labels is not None else "")]
        if code_text is not None:
            hover.append("code %{hovertext}")
        if values is not None and meta == MAP_POINTS:
            hover.append(f"{_text(value_name)} %{{marker.color:.3f}}")
        kw = dict(x=xy[rows, 0], y=xy[rows, 1], mode="markers", name=name or meta, meta=meta,
                  customdata=index[rows], marker=marker, text=text,
                  showlegend=name is not None if showlegend is None else showlegend, legendgroup=legendgroup,
                  hovertext=None if code_text is None else code_text[rows],
                  hovertemplate=" · ".join(hover) + "<extra></extra>")  # one line: no markup of ours either
        if rank is not None:
            kw["legendrank"] = rank
        if sel is not None:
            kw["selectedpoints"] = np.flatnonzero(np.isin(index[rows], sel)).tolist()
            kw["unselected"] = dict(marker=dict(color=GREY, opacity=0.35))
        fig.add_trace(Scatter(**kw))

    hidden = np.flatnonzero(~shown)
    if len(hidden):  # classes not chosen: grey, drawn first (under the others)
        add(hidden, dict(size=4, color=GREY), MAP_OTHERS, class_text(hidden))
    rows = np.flatnonzero(shown)
    if values is not None:
        v = np.asarray(values, dtype=float)
        lo, hi = value_range if value_range is not None else (float(v.min(initial=0)), float(v.max(initial=1)))
        add(rows, dict(size=5, color=v[rows], colorscale=SEQUENTIAL, cmin=lo, cmax=hi, showscale=True,
                       colorbar=dict(title=_text(value_name), thickness=12)), MAP_POINTS, class_text(rows))
    elif first is not None:  # one colour per trace; rank: the legend in class order
        for layer, c, r in _class_layers(first, rows):
            legend = dict(showlegend=layer == 0, legendgroup=str(c))
            if c < 0:
                add(r, dict(size=5, color=GREY), MAP_POINTS, class_text(r), name=NO_LABEL, rank=10 ** 6, **legend)
            else:
                add(r, dict(size=5, color=class_color(c)), MAP_POINTS, class_text(r) if multi else _text(name_of(c)),
                    name=_text(name_of(c)), rank=c, **legend)
        for c in np.setdiff1d(first[hidden], first[rows]):  # a class filtered out: a grey legend entry
            if c >= 0:
                fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=_text(name_of(int(c))),
                                         legendrank=int(c), marker=dict(size=8, color=GREY), hoverinfo="skip",
                                         showlegend=True))
    else:
        add(rows, dict(size=5, color=PALETTE[0]), MAP_POINTS, None)
    if highlight is not None and len(highlight):
        pos = {int(r): k for k, r in enumerate(index)}
        rows = [pos[int(h)] for h in highlight if int(h) in pos]
        fig.add_trace(Scatter(x=xy[rows, 0], y=xy[rows, 1], mode="markers", name="Hamming neighbours",
                              customdata=index[rows], hovertemplate="row %{customdata}<extra>neighbour</extra>",
                              marker=dict(size=11, color="rgba(0,0,0,0)", line=dict(color=NEUTRAL, width=2))))
    if anchor is not None:
        pos = np.flatnonzero(index == int(anchor))
        if len(pos):
            fig.add_trace(Scatter(x=xy[pos, 0], y=xy[pos, 1], mode="markers", name="clicked point",
                                  customdata=index[pos], hovertemplate="row %{customdata}<extra>clicked</extra>",
                                  marker=dict(size=16, symbol="star", color="#F0E442",
                                              line=dict(color=NEUTRAL, width=1.5))))
    fig.update_xaxes(showticklabels=False, title_text=None)
    fig.update_yaxes(showticklabels=False, title_text=None, scaleanchor="x", scaleratio=1)
    _layout(fig, height=height, title=title, dragmode="lasso")
    fig.update_layout(legend=dict(orientation="v", yanchor="top", y=1, x=1.01, xanchor="left", itemclick=False,
                                  itemdoubleclick=False, itemsizing="constant"),  # not the points' small size
                      margin=dict(t=50 if title else 10), hoverlabel=dict(namelength=-1))
    return fig


def coordinate_scatter(before: np.ndarray, after: np.ndarray, i: int, j: int, *, labels: np.ndarray | None = None,
                       class_names: Sequence[str] = (), titles: tuple[str, str] = ("before rotation", "after rotation"),
                       max_points: int = 5000) -> go.Figure:
    """Coordinates ``i`` and ``j`` of the (rescaled) embeddings before vs after rotation, with the four ±1
    corners — the points the codes snap to — drawn above the points, and the quadrant lines where a bit flips.
    Both panels share one square range, so they can be compared point for point. Each panel's points are one
    WebGL trace per class and layer (``meta`` :data:`MAP_POINTS`, layers as in :func:`embedding_map`; the left
    panel's first layer is the legend)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=_texts(titles), horizontal_spacing=0.08)
    before, after = np.asarray(before), np.asarray(after)
    n = len(before)
    rows = np.arange(n) if n <= max_points else np.sort(np.random.default_rng(0).choice(n, max_points, False))
    labels = None if labels is None else np.asarray(labels)
    single = labels is not None and labels.ndim == 1
    lim = 1.15 * max(1.2, float(np.abs(np.concatenate([before[rows][:, [i, j]], after[rows][:, [i, j]]])).max(
        initial=1.0)))
    for col, U in ((1, before), (2, after)):
        if single:  # traces of one class each, in its colour, layer by layer (as in embedding_map)
            for layer, c, r in _class_layers(labels, rows):
                name = _class_name(class_names, c)
                fig.add_trace(go.Scattergl(x=U[r, i], y=U[r, j], mode="markers", name=_text(name), meta=MAP_POINTS,
                                           legendgroup=str(c), legendrank=c, showlegend=col == 1 and layer == 0,
                                           hoverinfo="skip", marker=dict(size=4, opacity=0.7, color=class_color(c))),
                              row=1, col=col)
        else:
            fig.add_trace(go.Scattergl(x=U[rows, i], y=U[rows, j], mode="markers", name=MAP_POINTS, meta=MAP_POINTS,
                                       showlegend=False, marker=dict(size=4, color=PALETTE[0], opacity=0.7),
                                       hoverinfo="skip"), row=1, col=col)
        # WebGL draws in trace order, above every SVG trace: the corners are WebGL too and come last, on top
        fig.add_trace(go.Scattergl(x=[-1, 1, 1, -1], y=[-1, -1, 1, 1], mode="markers", name="±1 corners",
                                   legendgroup="corners", showlegend=col == 1, hoverinfo="skip",
                                   marker=dict(size=14, symbol="x", color=NEUTRAL)),
                      row=1, col=col)
        fig.add_hline(y=0, line=dict(color=NEUTRAL, width=1, dash="dot"), row=1, col=col)
        fig.add_vline(x=0, line=dict(color=NEUTRAL, width=1, dash="dot"), row=1, col=col)
    fig.update_xaxes(title_text=f"coordinate {i}", range=[-lim, lim])
    fig.update_yaxes(title_text=f"coordinate {j}", range=[-lim, lim])
    fig.update_yaxes(scaleanchor="x", scaleratio=1, row=1, col=1)
    fig.update_yaxes(scaleanchor="x2", scaleratio=1, row=1, col=2)
    _layout(fig, height=460)
    fig.update_layout(margin=dict(t=60), legend=dict(y=1.08, itemclick=False, itemdoubleclick=False,
                                                     itemsizing="constant"))
    return fig


def rank_strip(ranks: Mapping[str, np.ndarray], *, k: int, n_relevant: int, max_rank: int) -> go.Figure:
    """One row per quantizer, a tick at the (1-based) rank of each relevant item up to ``max_rank``; dashed lines
    at the cut-off ``k`` and at rank ``n_relevant`` (a perfect ranking puts every relevant item left of it)."""
    import html

    fig = go.Figure()
    names = [html.escape(str(n)) for n in ranks]           # names reach plotly's HTML-subset text
    kept = [np.asarray(r)[np.asarray(r) <= max_rank] for r in ranks.values()]
    if sum(len(r) for r in kept) > RANK_TICKS_MAX:
        # a CIFAR-10-sized query has ~6,000 relevant items per quantizer, a NUS-WIDE-sized one ~100,000: ticks that
        # many overlap into a bar, and at 200k they kept the browser busy for 45 s (the next page waited), so each
        # row becomes the share of relevant items per rank bin
        edges = np.unique(np.linspace(0.5, max_rank + 0.5, min(RANK_BINS, max_rank) + 1))
        share = np.array([np.histogram(r, bins=edges)[0] / np.diff(edges) for r in kept])
        centres = (edges[:-1] + edges[1:]) / 2
        fig.add_trace(go.Heatmap(x=centres, y=list(range(len(names))), z=share, zmin=0, zmax=1,
                                 colorscale=SEQUENTIAL, colorbar=dict(title="share relevant", thickness=12),
                                 customdata=np.stack([np.broadcast_to(edges[:-1] + 0.5, share.shape),
                                                      np.broadcast_to(edges[1:] - 0.5, share.shape)], axis=-1),
                                 hovertemplate="ranks %{customdata[0]:.0f}–%{customdata[1]:.0f}: %{z:.1%} "
                                               "relevant<extra></extra>"))
        title = f"where the relevant items are ranked (share relevant in {len(centres)} rank bins)"
    else:
        # rows on a numeric axis (ticks named) and WebGL above a few thousand ticks: a CIFAR-sized query has ~6,000
        # relevant items per quantizer, and as SVG with a category per point that took seconds to build and draw
        Scatter = go.Scattergl if sum(len(r) for r in kept) > WEBGL_THRESHOLD else go.Scatter
        for i, (name, r) in enumerate(zip(names, kept)):
            fig.add_trace(Scatter(x=r, y=np.full(len(r), i), mode="markers", name=name, showlegend=False,
                                  marker=dict(symbol="line-ns-open", size=14, line=dict(width=1.5),
                                              color=quantizer_color(name, i)),
                                  hovertemplate=name + ": relevant item at rank %{x}<extra></extra>"))
        title = "where the relevant items are ranked"
    for x, text in ((k + 0.5, f"k = {k}"), (n_relevant + 0.5, f"{n_relevant} relevant")):
        fig.add_vline(x=x, line=dict(color=NEUTRAL, dash="dash", width=1), annotation_text=text,
                      annotation_position="top")
    fig.update_xaxes(title_text="rank (1 = nearest)", range=[0, max_rank + 1])
    fig.update_yaxes(autorange="reversed", tickmode="array", tickvals=list(range(len(names))), ticktext=names,
                     range=[len(names) - 0.5, -0.5])
    return _layout(fig, height=110 + 36 * len(names), title=title)


# ---- the data ----------------------------------------------------------------------------------------------------
SPLIT_COLORS = {"query": PALETTE[1], "database": PALETTE[0], "train": PALETTE[2]}
CLASS_BARS_MAX = 100  # above this many classes, class sizes are drawn sorted (one line per split), not as bars


def class_counts_figure(counts: Mapping[str, np.ndarray], class_names: Sequence[str], *,
                        multi_label: bool = False) -> go.Figure:
    """Items per class in each split (grouped bars, one colour per split), so a class missing from the queries
    or a skewed split shows at a glance. Above :data:`CLASS_BARS_MAX` classes: each split's class sizes sorted
    from largest to smallest (hover: the class)."""
    names = [_text(c) for c in class_names]
    fig = go.Figure()
    what = "items with the label" if multi_label else "items"
    if len(names) <= CLASS_BARS_MAX:
        for split, c in counts.items():
            fig.add_trace(go.Bar(x=names, y=np.asarray(c), name=split, marker_color=SPLIT_COLORS.get(split),
                                 hovertemplate=f"%{{x}}: %{{y:,}} {what} ({split})<extra></extra>"))
        fig.update_layout(barmode="group")
        fig.update_xaxes(title_text=None, type="category", tickangle=-45 if len(names) > 12 else 0)
    else:
        for split, c in counts.items():
            c = np.asarray(c)
            order = np.argsort(-c, kind="stable")
            fig.add_trace(go.Scatter(x=np.arange(1, len(c) + 1), y=c[order], name=split, mode="lines",
                                     customdata=np.asarray(names, dtype=object)[order],
                                     line=dict(color=SPLIT_COLORS.get(split)),
                                     hovertemplate=f"%{{customdata}}: %{{y:,}} {what} ({split})<extra></extra>"))
        fig.update_xaxes(title_text="classes, largest first")
    fig.update_yaxes(title_text=what)
    return _layout(fig, height=300, title=f"{what.capitalize()} per class in each split")


# ---- comparisons ----------------------------------------------------------------------------------------------
def map_vs_bits(table, *, metric: str = "map", label: str = "mAP@all") -> go.Figure:
    """One line per quantizer: ``metric`` against n_bits. ``table``: rows with ``quantizer``, ``n_bits`` and
    ``metric`` (a DataFrame or a list of dicts)."""
    rows = table.to_dict("records") if hasattr(table, "to_dict") else list(table)
    fig = go.Figure()
    names = list(dict.fromkeys(r["quantizer"] for r in rows))
    for i, name in enumerate(names):
        pts = sorted((r for r in rows if r["quantizer"] == name), key=lambda r: r["n_bits"])
        fig.add_trace(go.Scatter(x=[r["n_bits"] for r in pts], y=[r[metric] for r in pts], name=_text(name),
                                 mode="lines+markers", line=dict(color=quantizer_color(name, i))))
    fig.update_xaxes(title_text="bits", tickvals=sorted({r["n_bits"] for r in rows}))
    fig.update_yaxes(title_text=_text(label))
    return _layout(fig, height=340, title=f"{label} against code length")


def pr_by_radius(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> go.Figure:
    """Precision against recall as the Hamming radius grows from 0 (one marker per radius, radius on hover)."""
    fig = go.Figure()
    for i, (name, (precision, recall)) in enumerate(curves.items()):
        r = np.arange(len(precision))
        fig.add_trace(go.Scatter(x=np.asarray(recall), y=np.asarray(precision), name=_text(name), mode="lines+markers",
                                 customdata=r, hovertemplate="radius %{customdata}: P %{y:.3f}, R %{x:.3f}",
                                 line=dict(color=quantizer_color(name, i))))
    fig.update_xaxes(title_text="recall", range=[0, 1.02])
    fig.update_yaxes(title_text="precision", range=[0, 1.02])
    return _layout(fig, height=360, title="precision–recall by Hamming radius")


def heatmap(matrix: np.ndarray, *, title: str, x: Sequence | None = None, y: Sequence | None = None,
            zmin: float | None = None, zmax: float | None = None, colorscale: str = SEQUENTIAL,
            colorbar_title: str = "") -> go.Figure:
    fig = go.Figure(go.Heatmap(z=np.asarray(matrix, dtype=float), x=_texts(x), y=_texts(y), zmin=zmin, zmax=zmax,
                               colorscale=colorscale, colorbar=dict(title=_text(colorbar_title), thickness=12)))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, height=340, title=title)


SIMILARITY_TITLES = ("class similarity S (classifier confusions)", "hash-centre similarity (1/K)·H Hᵀ")


def similarity_pair(class_similarity: np.ndarray, center_similarity: np.ndarray, *,
                    class_names: Sequence[str] = (), titles: tuple[str, str] = SIMILARITY_TITLES) -> go.Figure:
    """Two class × class heatmaps side by side on one colour scale (−1…1, diverging, one colour bar), class names
    on both axes: what SHC wanted (S) and what its ±1 centres give."""
    S, C = np.asarray(class_similarity, dtype=float), np.asarray(center_similarity, dtype=float)
    if S.shape != C.shape or S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"similarity matrices must be the same square shape, got {S.shape} and {C.shape}")
    n = len(S)
    names = [_text(class_names[i]) if i < len(class_names) else str(i) for i in range(n)]
    fig = make_subplots(rows=1, cols=2, subplot_titles=_texts(titles), horizontal_spacing=0.14)
    for col, M in ((1, S), (2, C)):
        fig.add_trace(go.Heatmap(z=M.round(4), x=names, y=names, coloraxis="coloraxis",
                                 hovertemplate="%{y} · %{x}: %{z:.3f}<extra></extra>"), row=1, col=col)
    fig.update_yaxes(autorange="reversed", tickmode="array", tickvals=names)
    fig.update_xaxes(tickmode="array", tickvals=names, tickangle=-45 if max(map(len, names)) > 3 else 0)
    fig.update_layout(coloraxis=dict(colorscale=DIVERGING, cmin=-1, cmax=1,
                                     colorbar=dict(title="similarity", thickness=12)))
    return _layout(fig, height=max(380, 28 * n + 160))


def bit_correlation_heatmaps(correlations: Mapping[str, np.ndarray], title: str = "bit correlation") -> go.Figure:
    """Pearson correlation between bits (diagonal 1), one square panel per quantizer (titled by its name) on one
    colour scale, -1…1: independent bits are near 0 (white). One figure, not one per quantizer: the browser draws
    one plot."""
    names = list(correlations)
    fig = make_subplots(rows=1, cols=max(len(names), 1), subplot_titles=[_text(n) for n in names],
                        horizontal_spacing=0.04)
    for k, corr in enumerate(correlations.values()):
        n = len(corr)
        fig.add_trace(go.Heatmap(z=np.asarray(corr, dtype=float), x=list(range(n)), y=list(range(n)),
                                 coloraxis="coloraxis",
                                 hovertemplate="bits %{x} and %{y}: r = %{z:.3f}<extra></extra>"), row=1, col=k + 1)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(coloraxis=dict(colorscale=DIVERGING, cmin=-1, cmax=1,
                                     colorbar=dict(title=_text("r"), thickness=12)))
    return _layout(fig, height=300, title=title)


def bit_balance_heatmap(balances: Mapping[str, np.ndarray], title: str = "bit balance (fraction of +1)"):
    names = list(balances)
    width = max(len(np.asarray(b)) for b in balances.values())
    M = np.full((len(names), width), np.nan)
    for k, b in enumerate(balances.values()):
        M[k, :len(b)] = b
    return heatmap(M, title=title, x=list(range(width)), y=names, zmin=0, zmax=1, colorscale=DIVERGING,
                   colorbar_title="+1")


# ---- penalty vs rotation ------------------------------------------------------------------------------------
def penalty_vs_rotation(sweep, n_bits: int) -> go.Figure:
    """Two panels for one bit length of a :class:`hashviz.penalty.PenaltySweep`: mAP against λ (log axis) for
    the sign codes of the penalised heads (λ > 0), and the quantization error against λ beside it; horizontal
    lines mark λ = 0 with sign, ITQ and HQ (λ = 0 has no place on a log axis). Axis titles name the protocol."""
    label = sweep.map_label
    positive = [lam for lam in sweep.lambdas if lam > 0]
    titles = (f"{label} against {sweep.option}", f"quantization error against {sweep.option}")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=titles)
    for col, metric in ((1, "map"), (2, "quantization_error")):
        if positive and "sign" in sweep.quantizers:
            ys = [getattr(sweep.cell(lam, n_bits, "sign"), metric) for lam in positive]
            fig.add_trace(go.Scatter(x=positive, y=ys, mode="lines+markers", name=f"sign, {sweep.option} > 0",
                                     line=dict(color=quantizer_color("sign")), legendgroup="sign",
                                     showlegend=col == 1,
                                     hovertemplate=f"{sweep.option} %{{x:g}}: %{{y:.4f}}<extra>sign</extra>"),
                          row=1, col=col)
        if 0.0 in sweep.lambdas:
            for q, dash in (("sign", "dot"), ("itq", "dash"), ("hq", "solid")):
                if q not in sweep.quantizers:
                    continue
                y = getattr(sweep.cell(0.0, n_bits, q), metric)
                name = f"{sweep.option} = 0 + {q.upper() if q != 'sign' else 'sign'}"
                # a horizontal line as a trace (so it has a legend entry and hover), spanning the λ range
                xs = [min(positive), max(positive)] if positive else [1e-3, 1.0]
                fig.add_trace(go.Scatter(x=xs, y=[y, y], mode="lines", name=name, legendgroup=name,
                                         showlegend=col == 1, line=dict(color=quantizer_color(q), dash=dash),
                                         hovertemplate=f"{name}: {y:.4f}<extra></extra>"), row=1, col=col)
    fig.update_xaxes(type="log", title_text=f"{sweep.option} (log scale)")
    fig.update_yaxes(title_text=label, row=1, col=1)
    fig.update_yaxes(title_text="quantization error", row=1, col=2)
    return _layout(fig, height=380, title=f"penalty vs rotation: {sweep.head}, {n_bits} bits")
