"""User text in figures is text: plotly renders <a href>, <b>, <span style>… in trace names, titles, tick labels,
annotations and hover, so every name that reaches one of them arrives with &, < and > as entities (which plotly
shows as the characters). Checked on the serialised figure — what the browser receives."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest

from hashviz.viz import figures as F
from hashviz.viz.images import image_grid_html

HOSTILE = ('<style>h1,h2,h3{color:red!important;font-size:90px!important}</style>S',
           '<a href="https://evil.example/phish">Session expired, click to log in</a>',
           '<form action="https://evil.example/steal"><input name="pw"><button>Go</button></form>')
TAG = re.compile(r"<\s*/?\s*(style|a|form|input|button|b|span|br|i|sub|sup)\b", re.I)


def shown(name: str) -> str:
    """What plotly receives for a name: &, < and > as entities (quotes stay, they are plain text there)."""
    return html.escape(name, quote=False)


def strings(fig) -> list[str]:
    """Every string in the figure's JSON, as the browser gets it."""
    out = []

    def walk(v):
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(json.loads(fig.to_json()))
    return out


def assert_no_markup(fig):
    bad = [s for s in strings(fig) if TAG.search(s)]
    assert bad == [], bad


@pytest.fixture
def labels():
    return np.repeat([0, 1, 2], 10)


def test_class_names_in_map_legends_and_hover(labels):
    xy = np.random.default_rng(0).standard_normal((30, 2))
    fig = F.embedding_map(xy, labels=labels, class_names=HOSTILE, title=f"codes after: {HOSTILE[1]}",
                          codes=np.zeros((30, 8), bool))
    assert_no_markup(fig)
    assert [t.name for t in fig.data if t.showlegend] == [shown(n) for n in HOSTILE]  # the legend
    assert fig.layout.title.text == shown(f"codes after: {HOSTILE[1]}")
    points = [t for t in fig.data if t.meta == F.MAP_POINTS]  # the hover: each point's class, as text
    assert {int(i): t.text for t in points for i in t.customdata} == {r: shown(HOSTILE[r // 10]) for r in range(30)}
    multi = F.embedding_map(xy, labels=np.eye(3, dtype=bool)[labels], class_names=HOSTILE)
    assert_no_markup(multi)
    values = F.embedding_map(xy, values=np.arange(30.0), value_name=HOSTILE[2])
    assert_no_markup(values)
    assert values.data[0].marker.colorbar.title.text == shown(HOSTILE[2])


def test_class_names_in_the_coordinate_scatter_and_its_titles(labels):
    U = np.random.default_rng(1).standard_normal((30, 4))
    fig = F.coordinate_scatter(U, U, 0, 1, labels=labels, class_names=HOSTILE, titles=("sign", HOSTILE[0]))
    assert_no_markup(fig)
    assert [t.name for t in fig.data if t.showlegend and t.name != "±1 corners"] == [shown(n) for n in HOSTILE]
    assert shown(HOSTILE[0]) in [a.text for a in fig.layout.annotations]


def test_class_names_on_the_axes_of_the_similarity_heatmaps():
    S = np.eye(3)
    fig = F.similarity_pair(S, S, class_names=HOSTILE)
    assert_no_markup(fig)
    assert list(fig.data[0].x) == [shown(n) for n in HOSTILE] == list(fig.layout.yaxis.tickvals)


def test_quantizer_and_run_labels_in_comparison_figures():
    name = "live <b>HQ</b> <a href='x'>"
    rows = [{"quantizer": name, "n_bits": b, "map": 0.5} for b in (16, 32)]
    for fig in (F.map_vs_bits(rows, label=f"mAP of {name}"),
                F.pr_by_radius({name: (np.array([1.0, 0.5]), np.array([0.1, 0.9]))}),
                F.bit_balance_heatmap({name: np.array([0.5, 0.4])}),
                F.bit_correlation_heatmaps({name: np.eye(2), "sign": np.eye(2)}, title=f"{name}: bit correlation"),
                # the name in the histogram's legend only, then in the bit balance's only
                F.rotation_distributions(np.zeros(5), np.ones(5), {"sign": np.array([0.5])}, labels=("sign", name)),
                F.rotation_distributions(np.zeros(5), np.ones(5), {name: np.array([0.5, 0.4])}),
                F.training_curves([{"step": 0, "loss": 1.0, "quantization_error": 1.0, "map": 0.1}],
                                  references={name: 0.4})):
        assert_no_markup(fig)
        assert any(shown(name) in s for s in strings(fig))
    # colours still follow the quantizer, and numeric axes stay numeric
    assert F.map_vs_bits([{"quantizer": "hq", "n_bits": 16, "map": 0.5}]).data[0].line.color == F.QUANTIZER_COLORS["hq"]
    assert list(F.bit_correlation_heatmaps({"sign": np.eye(2)}).data[0].x) == [0, 1]


def test_image_grid_captions_and_tooltips_are_escaped():
    out = image_grid_html(np.zeros((3, 4, 4, 3), np.uint8), captions=list(HOSTILE), tooltips=list(HOSTILE))
    assert not re.search(r"<\s*/?\s*(style|a|form|input|button)\b", out, re.I)  # only the grid's own tags
    assert html.escape(HOSTILE[1], quote=True) in out
