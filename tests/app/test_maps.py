"""Codes & embeddings: what a selection shows (per-class counts, a sample across classes, a CSV of ids, classes and
codes) and the map figures the page sends (linked brushing, class filter, one colour scale, hover, clicked point),
checked on the figure specs as the browser receives them."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections import Counter

import numpy as np
import pytest

from hashviz.codes import to_bits
from hashviz.embeddings import Embeddings
from hashviz.quantize import make_quantizer
from hashviz.session.maps import class_counts, point_errors, sample_across_classes, selection_csv
from hashviz.ui.maps import selected_rows
from tests.app.conftest import open_app, problems


def _emb(multilabel=False, n=600, seed=0) -> Embeddings:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 8)).astype(np.float32)
    if multilabel:
        labels = (rng.random((n, 4)) < 0.35).astype(np.uint8)
    else:
        labels = rng.choice(5, size=n, p=[0.6, 0.2, 0.1, 0.07, 0.03])
    names = ["=SUM(A1)", "bird", "cat", "dog", "frog"][: 4 if multilabel else 5]
    return Embeddings(z=z, labels=labels, split=rng.integers(0, 3, n).astype(np.uint8), class_names=names)


def test_class_counts_match_a_counter():
    emb = _emb()
    rows = np.arange(0, 600, 3)
    want = Counter(emb.class_names[c] for c in emb.labels[rows])
    got = class_counts(emb, rows)
    assert dict(got) == dict(want)
    assert [c for _, c in got] == sorted(want.values(), reverse=True)
    multi = _emb(multilabel=True)
    got = dict(class_counts(multi, rows))
    for c, name in enumerate(multi.class_names):
        assert got.get(name, 0) == int(multi.labels[rows, c].sum())


def test_the_grid_samples_across_classes():
    emb = _emb()
    rows = np.arange(600)
    shown = sample_across_classes(emb, rows, limit=40, seed=1)
    assert len(shown) == 40 and len(set(shown)) == 40 and set(shown) <= set(rows)
    per = Counter(emb.labels[shown])
    counts = Counter(emb.labels[rows])
    assert set(per) == set(counts)  # every class of the selection has an image, the rarest (3 %) too
    by_size = sorted(counts, key=counts.get)
    assert [per[c] for c in by_size] == sorted(per[c] for c in by_size)  # bigger classes never get fewer
    assert per[0] > 40 * 0.5  # the 60 % class still gets most of the grid
    assert list(emb.labels[shown]) == sorted(emb.labels[shown])  # grouped by class
    assert np.array_equal(shown, sample_across_classes(emb, rows, limit=40, seed=1))  # seeded
    assert not np.array_equal(shown, sample_across_classes(emb, rows, limit=40, seed=2))
    small = np.array([5, 1, 9])
    assert sample_across_classes(emb, small, limit=40).tolist() == [1, 5, 9]  # fewer than the limit: all
    # more classes than slots: the biggest classes get one image each
    two = sample_across_classes(emb, rows, limit=2)
    assert sorted(emb.labels[two]) == [0, 1]


def test_selection_csv_has_ids_classes_and_both_codes():
    emb = _emb()
    train = emb.part("train").z
    sign, itq = make_quantizer("sign", 8).fit(train), make_quantizer("itq", 8).fit(train)
    rows = [17, 3, 250, 3]
    table = list(csv.reader(io.StringIO(selection_csv(emb, rows, sign, itq, "itq"))))
    assert table[0] == ["row", "id", "split", "class", "code_sign", "code_itq"]
    body = table[1:]
    assert [int(r[0]) for r in body] == [3, 17, 250]  # each row once, in order
    for r in body:
        row = int(r[0])
        assert int(r[1]) == emb.ids[row] and r[2] == ["train", "query", "database"][emb.split[row]]
        name = emb.class_names[emb.labels[row]]
        assert r[3] == ("'" + name if name.startswith("=") else name)  # never a spreadsheet formula
        for col, q in ((4, sign), (5, itq)):
            assert r[col] == "".join("1" if b else "0" for b in to_bits(q.transform(emb.z[[row]]))[0])
    multi = _emb(multilabel=True)
    table = list(csv.reader(io.StringIO(selection_csv(multi, [0, 1], sign, sign, "sign"))))
    for r in table[1:]:
        names = [multi.class_names[c] for c in np.flatnonzero(multi.labels[int(r[0])])]
        assert r[3] == ("'" if ";".join(names).startswith("=") else "") + ";".join(names)


def test_selected_rows_from_plotly_events():
    assert selected_rows(None) == [] and selected_rows({"selection": {"points": []}}) == []
    event = {"selection": {"points": [{"customdata": 5}, {"customdata": [2, "x"]}, {"customdata": 5},
                                      {"x": 1.0}, {"customdata": "junk"}, {"customdata": []}]}}
    assert selected_rows(event) == [2, 5]


# ---- the page's figures (AppTest on the prepared store; PCA layouts, HASHVIZ_UMAP=0) ---------------------------
def _decode(v):
    """Plotly's JSON arrays: a list, or {"dtype", "bdata"} base64 typed arrays."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return v


def _maps(at) -> list[dict]:
    """The three map figures (z, codes before, codes after) as sent to the browser."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    maps = [s for s in specs if s["layout"].get("dragmode") == "lasso"]
    assert len(maps) == 3
    return maps


def _traces(spec, *names):
    """The traces whose ``meta`` (the data traces: "points", "other classes") or name is one of ``names``."""
    return [t for t in spec["data"] if t.get("meta", t.get("name")) in names]


def _selected(spec) -> list[int]:
    out = []
    for t in _traces(spec, "points", "other classes"):
        ids = _decode(t["customdata"])
        out += [int(ids[k]) for k in t.get("selectedpoints") or []]
    return sorted(out)


def _rows(spec, name="points") -> list[int]:
    return sorted(int(i) for t in _traces(spec, name) for i in _decode(t["customdata"]))


def test_a_selection_greys_the_same_rows_in_every_map(filled):
    at = open_app("pages/3_embeddings.py")
    assert problems(at) == []
    assert all("selectedpoints" not in t for s in _maps(at) for t in s["data"])  # nothing selected yet
    at.session_state["hv_sel"] = [3, 10, 42, 99, 2500]
    at.run()
    assert problems(at) == []
    assert [_selected(s) for s in _maps(at)] == [[3, 10, 42, 99, 2500]] * 3
    for spec in _maps(at):
        for pts in _traces(spec, "points"):
            assert "row %{customdata}" in pts["hovertemplate"] and pts["unselected"]["marker"]["color"]
    # the code maps show the code's bits on hover, the embeddings map does not
    z_map, before, after = _maps(at)
    assert all("code %{hovertext}" in t["hovertemplate"] for t in _traces(before, "points"))
    assert not any(t.get("hovertext") for t in _traces(z_map, "points"))


def test_the_class_filter_greys_other_classes_in_every_map(filled):
    from hashviz.ui import cache

    at = open_app("pages/3_embeddings.py")
    at.multiselect(key="hv_map_classes").set_value([3]).run()
    assert problems(at) == []
    key = at.session_state["hv_run"]
    emb = cache._embeddings(str(filled), key, 16)
    for spec in _maps(at):
        assert _rows(spec) == np.flatnonzero(emb.labels == 3).tolist()
        assert _rows(spec, "other classes") == np.flatnonzero(emb.labels != 3).tolist()
        legend = {t["name"]: t["marker"]["color"] for t in spec["data"] if t.get("showlegend")}
        assert {n for n, c in legend.items() if c != "rgba(150,150,150,0.35)"} == {emb.class_names[3]}


def test_colouring_by_error_puts_both_code_maps_on_one_scale(filled):
    from hashviz.session.maps import MapData
    from hashviz.ui import cache

    at = open_app("pages/3_embeddings.py")
    at.radio(key="hv_map_colour").set_value("quantization error").run()
    assert problems(at) == []
    key = at.session_state["hv_run"]
    emb = cache._embeddings(str(filled), key, 16)
    qs = cache._quantizers(str(filled), key, 16, None, with_live=False)
    data = MapData.build(emb, qs["sign"].quantizer, qs["itq"].quantizer)
    errors = [point_errors(qs[q].quantizer, data.z) for q in ("sign", "itq")]
    lo, hi = min(e.min() for e in errors), max(e.max() for e in errors)
    _, before, after = _maps(at)
    for spec, err in ((before, errors[0]), (after, errors[1])):
        (pts,) = _traces(spec, "points")  # coloured by a value: one trace, one colour bar
        m = pts["marker"]
        assert (m["cmin"], m["cmax"]) == pytest.approx((lo, hi))
        ids = _decode(pts["customdata"])
        assert np.allclose(_decode(m["color"]), err[np.searchsorted(data.rows, ids)])


def test_a_clicked_point_shows_its_image_codes_and_neighbours(filled):
    at = open_app("pages/3_embeddings.py")
    at.session_state["hv_sel"] = [42]
    at.session_state["hv_sel_anchor"] = 42
    at.run()
    assert problems(at) == []
    assert any(m.value == "**Clicked point 42**" for m in at.markdown)
    side = next(h.proto.body for h in at.get("html") if 'width="96"' in h.proto.body)
    assert side.count("<img") == 1
    assert any("sign: `" in c.value and "ITQ: `" in c.value for c in at.caption)
    assert len([m for m in at.markdown if m.value.startswith("**Nearest codes to point 42")]) == 2
    for spec in _maps(at)[1:]:  # the neighbours ringed and the point starred on both code maps
        assert len(_rows(spec, "Hamming neighbours")) == 12 and _rows(spec, "clicked point") == [42]


def test_the_selection_caption_counts_classes_and_offers_the_csv(filled):
    from hashviz.ui import cache

    at = open_app("pages/3_embeddings.py")
    rows = list(range(0, 5000, 20))
    at.session_state["hv_sel"] = rows
    at.run()
    assert problems(at) == []
    key = at.session_state["hv_run"]
    emb = cache._embeddings(str(filled), key, 16)
    caption = next(c.value for c in at.caption if "selected" in c.value)
    assert caption.startswith(f"**{len(rows)} selected**")
    for name, count in class_counts(emb, rows):
        assert f"{name} {count}" in caption
    grid = [h.proto.body for h in at.get("html") if "hv-grid" in h.proto.body][-1]
    assert grid.count("<img") == 80
    assert any(b.proto.label.startswith("Selection (CSV") for b in at.get("download_button"))


@pytest.mark.parametrize("ties", ["expected", "stable", "optimistic", "pessimistic", "random"])
def test_rank_with_codes_encoded_once_is_the_same_ranking(ties):
    from hashviz.session.browse import rank

    emb = _emb()
    q = make_quantizer("itq", 8).fit(emb.part("train").z)
    codes = q.encode(emb.z)
    query = int(np.flatnonzero(emb.split == 1)[3])
    a, b = rank(emb, q, query, 15, ties, seed=4), rank(emb, q, query, 15, ties, seed=4, codes=codes)
    for field in ("rows", "distances", "relevant", "bits", "query_bits"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert a.ap == b.ap or (np.isnan(a.ap) and np.isnan(b.ap))
    from hashviz.session.browse import relevant_ranks

    full = rank(emb, q, query, 10_000, ties, seed=4)
    ranks, n_rel = relevant_ranks(emb, q, query, ties, seed=4, codes=codes)
    assert ranks.tolist() == (np.flatnonzero(full.relevant) + 1).tolist() and n_rel == int(full.relevant.sum())
    assert np.array_equal(ranks, relevant_ranks(emb, q, query, ties, seed=4)[0])
