"""Figure builders: the data in the traces is the data given, selections and highlights are where asked."""

from __future__ import annotations

import numpy as np

from hashviz.viz import figures as F
from hashviz.viz.images import bit_string, image_grid_html


def test_palette_is_distinct_and_quantizers_have_fixed_colours():
    assert len(set(F.PALETTE)) == len(F.PALETTE) >= 10
    assert F.quantizer_color("hq") == F.QUANTIZER_COLORS["hq"]
    assert F.class_color(10) == F.class_color(0)


def _points(fig, meta=F.MAP_POINTS):
    """The map's data traces (by their ``meta``), in drawing order."""
    return [t for t in fig.data if t.meta == meta]


def _by_class(traces) -> dict:
    """Trace name → the sorted row ids of all its traces (a class is drawn in several layers)."""
    out: dict = {}
    for t in traces:
        out.setdefault(t.name, []).extend(int(i) for i in t.customdata)
    return {k: sorted(v) for k, v in out.items()}


def _column(traces, attr):
    """One value per point across ``traces`` (a scalar attribute repeats for each point of its trace)."""
    out = []
    for t in traces:
        v = getattr(t, attr)
        out += [v] * len(t.customdata) if isinstance(v, str) or v is None else list(v)
    return out


def test_embedding_map_flat_customdata_and_greyed_selection():
    rng = np.random.default_rng(0)
    xy = rng.standard_normal((30, 2))
    labels = np.repeat([0, 1, 2], 10)
    fig = F.embedding_map(xy, labels=labels, class_names=["a", "b", "c"], selected=[1, 12, 25], highlight=[3, 4],
                          anchor=2)
    pts = _points(fig)
    ids = np.concatenate([np.asarray(t.customdata) for t in pts])
    assert sorted(ids.tolist()) == list(range(30))
    assert np.allclose(np.c_[_column(pts, "x"), _column(pts, "y")], xy[ids])  # every point where its row is
    # traces of one class each, in the class's colour, named by it; the first of each class is its legend entry
    assert _by_class(pts) == {n: list(range(10 * c, 10 * c + 10)) for c, n in enumerate("abc")}
    assert all(t.marker.color == F.class_color("abc".index(t.name)) for t in pts)
    assert [t.name for t in fig.data if t.showlegend] == ["a", "b", "c"]
    # drawn layer by layer (a, b, c, a, b, c, …): no class lies entirely above another
    assert [t.name for t in pts] == list("abc") * F.MAP_LAYERS
    assert fig.layout.legend.itemsizing == "constant"  # legend marks keep their size, not the points' 5 px
    # selectedpoints are positions inside each trace whose customdata are the selected rows
    assert sorted(int(t.customdata[k]) for t in pts for k in t.selectedpoints) == [1, 12, 25]
    assert all(t.unselected.marker.color == F.GREY for t in pts)
    ring = next(t for t in fig.data if t.name == "Hamming neighbours")
    assert sorted(np.asarray(ring.customdata).tolist()) == [3, 4]
    star = next(t for t in fig.data if t.name == "clicked point")
    assert np.allclose([star.x[0], star.y[0]], xy[2])
    assert fig.layout.dragmode == "lasso"


def test_embedding_map_hover_shows_row_class_and_code():
    xy = np.arange(8, dtype=float).reshape(4, 2)
    bits = np.array([[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
    fig = F.embedding_map(xy, labels=np.array([0, 1, 0, 1]), class_names=["cat", "<b>dog</b>"], codes=bits)
    pts = _points(fig)
    assert all("row %{customdata}" in t.hovertemplate and "%{text}" in t.hovertemplate for t in pts)
    assert all("code %{hovertext}" in t.hovertemplate for t in pts)
    by_row = dict(zip(_column(pts, "customdata"), zip(_column(pts, "text"), _column(pts, "hovertext"))))
    assert by_row[0] == ("cat", "101") and by_row[3] == ("&lt;b&gt;dog&lt;/b&gt;", "010")  # names as text
    # multi-label rows list every label; a row is coloured by its first label, a row without any is grey
    multi = np.array([[1, 1], [0, 1], [0, 0], [1, 0]], dtype=bool)
    pts = _points(F.embedding_map(xy, labels=multi, class_names=["a", "b"]))
    assert dict(zip(_column(pts, "customdata"), _column(pts, "text"))) == {0: "a, b", 1: "b", 2: "—", 3: "a"}
    assert _by_class(pts) == {"a": [0, 3], "b": [1], F.NO_LABEL: [2]}
    assert {t.name: t.marker.color for t in pts} == {"a": F.class_color(0), "b": F.class_color(1), F.NO_LABEL: F.GREY}
    # a class filter colours a multi-label row by the chosen label it was shown for
    pts = _points(F.embedding_map(xy, labels=multi, class_names=["a", "b"], shown_classes=[1]))
    assert _by_class(pts) == {"b": [0, 1]}


def test_many_classes_get_fewer_layers_and_each_class_one_legend_entry():
    n_classes = 30
    labels = np.arange(600) % n_classes
    fig = F.embedding_map(np.zeros((600, 2)), labels=labels, class_names=[f"c{i}" for i in range(n_classes)])
    pts = _points(fig)
    layers = max(1, min(F.MAP_LAYERS, F.MAP_LAYER_TRACES // n_classes))
    assert len(pts) == layers * n_classes and layers < F.MAP_LAYERS
    assert _by_class(pts) == {f"c{c}": list(range(c, 600, n_classes)) for c in range(n_classes)}
    assert sorted(t.name for t in pts if t.showlegend) == sorted(f"c{c}" for c in range(n_classes))


def test_code_strings_group_bits_like_bit_string():
    rng = np.random.default_rng(2)
    bits = rng.random((20, 19)) > 0.5
    assert F.code_strings(bits).tolist() == [bit_string(b) for b in bits]
    assert F.code_strings(bits, group=19).tolist() == ["".join("1" if x else "0" for x in b) for b in bits]


def test_two_maps_coloured_by_error_share_one_colour_scale():
    xy = np.zeros((6, 2))
    before, after = np.array([0.1, 0.5, 0.9, 0.3, 0.2, 0.4]), np.array([0.05, 0.1, 0.2, 0.1, 0.3, 0.15])
    lo, hi = float(min(before.min(), after.min())), float(max(before.max(), after.max()))
    figs = [F.embedding_map(xy, values=v, value_range=(lo, hi), labels=np.array([0, 1, 0, 1, 0, 1]),
                            class_names=["a", "b"]) for v in (before, after)]
    for fig, v in zip(figs, (before, after)):
        (pts,) = _points(fig)  # one trace: one colour bar
        assert (pts.marker.cmin, pts.marker.cmax) == (lo, hi) and pts.marker.showscale
        assert np.allclose(pts.marker.color, v[list(pts.customdata)])
        assert list(pts.text) == ["a", "b", "a", "b", "a", "b"]  # the class still in the hover


def test_shown_classes_grey_the_others_and_draw_them_first():
    xy = np.zeros((6, 2))
    labels = np.array([0, 1, 2, 0, 1, 2])
    for kw in ({}, {"values": np.arange(6.0)}):
        fig = F.embedding_map(xy, labels=labels, class_names=["a", "b", "c"], shown_classes=[1], **kw)
        others, pts = fig.data[0], _points(fig)
        assert others.meta == F.MAP_OTHERS and others.marker.color == F.GREY  # first: drawn under the rest
        assert sorted(others.customdata) == [0, 2, 3, 5] and sorted(_column(pts, "customdata")) == [1, 4]
        assert dict(zip(others.customdata, others.text)) == {0: "a", 2: "c", 3: "a", 5: "c"}
    legend = {t.name: t.marker.color for t in F.embedding_map(xy, labels=labels, class_names=["a", "b", "c"],
                                                                 shown_classes=[1]).data if t.showlegend}
    assert legend == {"a": F.GREY, "b": F.class_color(1), "c": F.GREY}
    ranks = {t.name: t.legendrank for t in F.embedding_map(xy, labels=labels, class_names=["a", "b", "c"],
                                                              shown_classes=[1]).data if t.showlegend}
    assert ranks == {"a": 0, "b": 1, "c": 2}  # the legend in class order, filtered or not
    # a selection greys the same rows in both traces
    fig = F.embedding_map(xy, labels=labels, class_names=["a", "b", "c"], shown_classes=[1], selected=[2, 4])
    chosen = [int(t.customdata[k]) for t in fig.data if t.meta for k in t.selectedpoints]
    assert sorted(chosen) == [2, 4]


def test_embedding_map_uses_webgl_for_big_sets_and_values_colouring():
    xy = np.zeros((F.WEBGL_THRESHOLD + 1, 2))
    fig = F.embedding_map(xy, values=np.arange(len(xy)))
    assert fig.data[0].type == "scattergl"
    assert fig.data[0].marker.colorscale is not None
    fig = F.embedding_map(xy, labels=np.arange(len(xy)) % 3, class_names="abc")
    assert {t.type for t in _points(fig)} == {"scattergl"}  # the map's size decides, not the trace's
    assert F.embedding_map(np.zeros((5, 2))).data[0].type == "scatter"


def test_embedding_map_with_subsample_index():
    xy = np.arange(10, dtype=float).reshape(5, 2)
    index = np.array([3, 8, 10, 11, 40])
    fig = F.embedding_map(xy, index=index, selected=[8, 40], anchor=10)
    assert list(fig.data[0].customdata) == index.tolist()
    assert sorted(fig.data[0].selectedpoints) == [1, 4]
    star = fig.data[-1]
    assert (star.x[0], star.y[0]) == (4.0, 5.0)


def test_training_curves_and_references():
    curve = [{"step": s, "loss": 1.0 / (s + 1), "quantization_error": 0.5 / (s + 1),
              "map": 0.5 + s / 100 if s % 5 == 0 else None} for s in range(20)]
    fig = F.training_curves(curve, references={"sign": 0.4, "ITQ": 0.6})
    loss, qerr, mAP = fig.data[:3]
    assert list(loss.x) == list(range(20)) and np.isclose(loss.y[3], 0.25)
    assert list(mAP.x) == [0, 5, 10, 15]
    assert {round(s.y0, 3) for s in fig.layout.shapes} == {0.4, 0.6}
    assert mAP.xaxis == "x2" and qerr.yaxis == "y2" and np.isclose(qerr.y[3], 0.125)


def test_coordinate_scatter_and_comparisons():
    rng = np.random.default_rng(1)
    b, a = rng.standard_normal((100, 4)), np.sign(rng.standard_normal((100, 4)))
    sc = F.coordinate_scatter(b, a, 0, 3, labels=np.repeat([0, 1], 50), class_names=["x", "y"])
    corners = [t for t in sc.data if t.name == "±1 corners"]
    assert len(corners) == 2 and sorted(zip(corners[0].x, corners[0].y)) == [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    pts = _points(sc)  # per panel: traces of one class each, in the class's colour, layer by layer
    for axis, U in (("x", b), ("x2", a)):
        panel = [t for t in pts if t.xaxis == axis]
        assert [t.name for t in panel] == ["x", "y"] * F.MAP_LAYERS
        assert all(t.marker.color == F.class_color("xy".index(t.name)) for t in panel)
        for name, rows in (("x", range(50)), ("y", range(50, 100))):
            got = sorted(zip(*[np.concatenate([getattr(t, c) for t in panel if t.name == name]) for c in "xy"]))
            assert np.allclose(got, sorted(zip(U[list(rows), 0], U[list(rows), 3])))
    assert [t.name for t in sc.data if t.showlegend and t.name != "±1 corners"] == ["x", "y"]
    assert sc.layout.legend.itemsizing == "constant"
    # the ±1 corners come after the points of their panel, in WebGL like them: drawn on top
    for axis in ("x", "x2"):
        panel = [t for t in sc.data if t.xaxis == axis and t.type == "scattergl"]
        assert panel[-1].name == "±1 corners" and panel[0].meta == F.MAP_POINTS
    # both panels share one square range that holds every point and the corners
    ranges = {tuple(sc.layout[a].range) for a in ("xaxis", "xaxis2", "yaxis", "yaxis2")}
    assert len(ranges) == 1
    lo, hi = ranges.pop()
    assert lo == -hi and hi >= max(1.2, np.abs(b[:, [0, 3]]).max(), np.abs(a[:, [0, 3]]).max())
    rows = [{"quantizer": q, "n_bits": nb, "map": m} for q, m0 in (("sign", 0.3), ("hq", 0.5))
            for nb, m in ((32, m0 + 0.1), (16, m0))]
    mv = F.map_vs_bits(rows)
    assert [t.name for t in mv.data] == ["sign", "hq"] and list(mv.data[1].x) == [16, 32]
    pr = F.pr_by_radius({"hq": (np.array([1.0, 0.8]), np.array([0.1, 0.5]))})
    assert list(pr.data[0].customdata) == [0, 1]
    corr = np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.1], [-0.2, 0.1, 1.0]])
    hm = F.bit_correlation_heatmaps({"sign": np.eye(3), "hq": corr})
    assert [a.text for a in hm.layout.annotations] == ["sign", "hq"]  # one panel per quantizer, by name
    assert [(t.xaxis, t.coloraxis) for t in hm.data] == [("x", "coloraxis"), ("x2", "coloraxis")]  # one scale
    assert (hm.layout.coloraxis.cmin, hm.layout.coloraxis.cmax) == (-1, 1) and np.allclose(hm.data[1].z, corr)
    bb = F.bit_balance_heatmap({"sign": np.array([0.5, 0.2]), "hq": np.array([0.4, 0.6])})
    assert np.allclose(bb.data[0].z, [[0.5, 0.2], [0.4, 0.6]])


def test_image_grid_html_borders_marks_and_tooltips():
    imgs = np.zeros((3, 8, 8), np.uint8)
    html = image_grid_html(imgs, captions=["d=0", "d=1", "d=2"], tooltips=["0101", "1<1", "x"],
                           relevant=[np.True_, False, None])
    assert html.count("<img") == 3 and html.count("data:image/png;base64,") == 3
    assert F.RELEVANT_COLOR in html and F.IRRELEVANT_COLOR in html
    assert "✓ d=0" in html and "✗ d=1" in html and 'title="1&lt;1"' in html


def test_bit_string_groups():
    assert bit_string(np.array([1, 0, 1, 1, 0, 0, 0, 0, 1], bool)) == "10110000 1"


def test_training_curves_thin_long_curves_but_keep_the_newest_step():
    curve = [{"step": s, "loss": 1.0 / (s + 1), "quantization_error": 0.1, "map": 0.5 if s % 10 == 0 else None}
             for s in range(5001)]
    fig = F.training_curves(curve, max_points=300)
    loss, _, mAP = fig.data[:3]
    assert len(loss.x) <= 300 and loss.x[0] == 0 and loss.x[-1] == 5000
    assert np.all(np.diff(loss.x) > 0)
    assert len(mAP.x) <= 300 and mAP.x[-1] == 5000
    assert fig.layout.uirevision is not None  # zoom survives the live redraws
    assert list(F.thin(5, 300)) == [0, 1, 2, 3, 4]


def test_rotation_distributions_one_figure_two_panels():
    rng = np.random.default_rng(2)
    b, a = rng.standard_normal((200, 8)), np.sign(rng.standard_normal((200, 8)))
    fig = F.rotation_distributions(b, a, {"sign": np.full(8, 0.5), "HQ": np.linspace(0.2, 0.8, 8)})
    hist = [t for t in fig.data if t.xaxis in (None, "x")]
    bal = [t for t in fig.data if t.xaxis == "x2"]
    assert len(hist) == 2 and len(bal) == 2
    # densities: bar heights × bin width sum to 1; all of `a` (signs) sits in the two bins holding ±1
    for t in hist:
        assert np.isclose(np.sum(t.y) * t.width, 1.0, atol=1e-3)
    assert np.count_nonzero(hist[1].y) == 2
    assert min(abs(c) for c, y in zip(hist[1].x, hist[1].y) if y) > 0.9
    assert {s.x0 for s in fig.layout.shapes if s.xref == "x"} == {-1, 1}
    # bit balance: the fraction of +1 per bit, coloured per quantizer, on [0, 1] with 0.5 dashed
    assert np.allclose(bal[1].y, np.linspace(0.2, 0.8, 8).round(4)) and list(bal[1].x) == list(range(8))
    assert [t.marker.color for t in bal] == [F.quantizer_color("sign", 0), F.quantizer_color("HQ", 1)]
    assert tuple(fig.layout.yaxis2.range) == (0, 1)
    half = [s for s in fig.layout.shapes if s.yref == "y2"]
    assert len(half) == 1 and half[0].y0 == half[0].y1 == 0.5 and half[0].line.dash == "dash"


def test_figures_draw_no_black_or_white_marks_that_vanish_in_one_theme():
    rng = np.random.default_rng(3)
    b, a = rng.standard_normal((50, 4)), rng.standard_normal((50, 4))
    figs = [F.coordinate_scatter(b, a, 0, 1), F.rotation_distributions(b, a, {"sign": np.full(4, 0.5)}),
            F.embedding_map(b[:, :2], highlight=[1, 2], anchor=0)]
    import json

    from plotly.utils import PlotlyJSONEncoder

    for fig in figs:
        spec = fig.to_plotly_json()
        spec["layout"].pop("template", None)  # the app's theme (Streamlit's template) supplies those colours
        text = json.dumps(spec, cls=PlotlyJSONEncoder).lower()
        for colour in ('"black"', '"white"', '"#000000"', '"#ffffff"', '"#000"', '"#fff"'):
            assert colour not in text, (colour, fig.layout.title.text)


def test_similarity_pair_shares_one_colour_scale_and_names_the_classes():
    S = np.array([[1.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 1.0]])
    C = np.array([[1.0, 0.25, -0.25], [0.25, 1.0, 0.0], [-0.25, 0.0, 1.0]])
    fig = F.similarity_pair(S, C, class_names=["cat", "dog", "car"])
    left, right = fig.data
    assert np.allclose(left.z, S) and np.allclose(right.z, C)
    assert left.coloraxis == right.coloraxis == "coloraxis"
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (-1, 1)
    assert list(left.x) == list(right.y) == ["cat", "dog", "car"]
    assert left.xaxis != right.xaxis  # side by side
    import pytest

    with pytest.raises(ValueError, match="same square shape"):
        F.similarity_pair(S, C[:2, :2])


def test_every_curve_of_one_figure_gets_its_own_colour():
    """Display labels map to the fixed colours (random search = random); other curves (live fits) never take a
    fixed quantizer colour, so a live HQ fit is not drawn in sign's grey."""
    labels = ["sign", "ITQ", "HQ", "random search", "live HQ-l2", "live random-search", "live HQ-l1"]
    colours = [F.quantizer_color(n, i) for i, n in enumerate(labels)]
    assert len(set(colours)) == len(colours)
    assert colours[3] == F.QUANTIZER_COLORS["random"]
    assert not set(colours[4:]) & set(F.QUANTIZER_COLORS.values())


def test_class_counts_figure_bars_per_split_then_sorted_sizes_for_many_classes():
    counts = {"query": np.array([3, 0, 5]), "database": np.array([30, 10, 50])}
    fig = F.class_counts_figure(counts, ["cat", "<b>dog</b>", "eel"])
    assert [(t.type, t.name) for t in fig.data] == [("bar", "query"), ("bar", "database")]
    assert list(fig.data[0].x) == ["cat", "&lt;b&gt;dog&lt;/b&gt;", "eel"] and list(fig.data[1].y) == [30, 10, 50]
    assert fig.layout.barmode == "group"
    many = {"database": np.arange(F.CLASS_BARS_MAX + 1)}
    fig = F.class_counts_figure(many, [f"c{i}" for i in range(F.CLASS_BARS_MAX + 1)], multi_label=True)
    (line,) = fig.data
    assert line.type == "scatter" and list(line.y) == sorted(many["database"], reverse=True)
    assert line.customdata[0] == f"c{F.CLASS_BARS_MAX}" and "items with the label" in fig.layout.yaxis.title.text
