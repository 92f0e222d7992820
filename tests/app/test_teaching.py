"""The teaching texts through AppTest, on the prepared mnist5k store: ties at the cut-off and "where two quantizers
differ most" on Queries (against literal counts), one curve for loss = quantization error and the Steps text on
Rotation, the purity sentence on Codes & embeddings, the link from Compare, and the guided tour."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hashviz.retrieval.metrics import average_precisions
from tests.app.conftest import APP, open_app, problems

# AppTests of a whole feature: in `make test`, not in the quick `make test-fast`
pytestmark = pytest.mark.slow

QUERIES = "pages/4_queries.py"


def _store(home):
    from hashviz.session.runs import Workspace

    ws = Workspace(home)
    key = ws.list_runs()[0].key
    return ws, key


def _texts(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info])


def _literal_gains(home, n_bits=16):
    """AP(HQ) − AP(sign) of every query, from the stored quantizers' codes (ties expected)."""
    ws, key = _store(home)
    emb = ws.load_embeddings(key, n_bits)
    q, db = emb.mask("query"), emb.mask("database")
    aps = {}
    for name in ("hq", "sign"):
        codes = ws.stored_quantizer(key, n_bits, name).encode(emb.z)
        aps[name] = average_precisions(codes[q], codes[db], emb.labels[q], emb.labels[db])
    return emb, np.flatnonzero(q), aps["hq"] - aps["sign"], aps


def test_queries_picks_where_hq_and_sign_differ_most(filled):
    emb, rows, gain, aps = _literal_gains(filled)
    order = np.argsort(-gain, kind="stable")
    at = open_app(QUERIES, query={"mode": "differ", "bits": "16"})
    assert problems(at) == []
    assert at.session_state["hv_q_a"] == "hq" and at.session_state["hv_q_b"] == "sign"
    header = next(m.value for m in at.markdown if m.value.startswith("**Query "))
    assert header.startswith(f"**Query {rows[order[0]]}**")
    caption = next(c.value for c in at.caption if "sorted by AP(HQ) − AP(sign)" in c.value)
    assert f"difference **{gain[order[0]]:+.3f}**" in caption
    assert f"HQ is better on {int((gain > 1e-12).sum()):,} queries" in caption
    at.number_input(key="hv_q_seed").set_value(1).run()
    assert next(m.value for m in at.markdown if m.value.startswith("**Query ")).startswith(
        f"**Query {rows[order[1]]}**")
    # where the relevant items are ranked: the strip and its counts
    strip = next(c for c in at.get("plotly_chart") if c.proto.id.endswith("hv_q_strip"))
    assert {t["name"] for t in json.loads(strip.proto.spec)["data"]} >= {"sign", "ITQ", "HQ"}
    assert "Relevant items of this query at 16 bits" in _texts(at)


def test_ties_table_counts_the_group_the_cut_off_cuts(filled):
    ws, key = _store(filled)
    emb = ws.load_embeddings(key, 16)
    at = open_app(QUERIES, query={"bits": "16", "k": "10", "seed": "4"})
    assert problems(at) == []
    query = int(re.match(r"\*\*Query (\d+)\*\*", next(m.value for m in at.markdown
                                                      if m.value.startswith("**Query "))).group(1))
    table = next(d.value for d in at.dataframe if d.value is not None and "tied at it" in d.value.columns)
    db = np.flatnonzero(emb.mask("database"))
    db = db[db != query]
    same = emb.labels[db] == emb.labels[query]
    for name, label in (("sign", "sign"), ("hq", "HQ")):
        codes = ws.stored_quantizer(key, 16, name).encode(emb.z)
        dist = np.array([sum(bin(int(a) ^ int(b)).count("1") for a, b in zip(codes[query], codes[i])) for i in db])
        d10 = np.sort(dist)[9]
        row = table[table["quantizer"] == label].iloc[0]
        assert row["k-th distance"] == d10 and row["closer (all in top k)"] == int((dist < d10).sum())
        assert row["tied at it"] == int((dist == d10).sum()) and row["tied in top k"] == 10 - int((dist < d10).sum())
        assert row["relevant tied"] == int(((dist == d10) & same).sum())
        ap = average_precisions(codes[[query]], codes[db], emb.labels[[query]], emb.labels[db])[0]
        assert row["AP expected"] == f"{ap:.3f}"
        assert float(row["AP pessimistic"]) <= float(row["AP expected"]) <= float(row["AP optimistic"])
        # the same AP is the one shown above the list
        assert any(m.value.startswith(f"**{label}** · AP@all (hashviz) {ap:.3f}") for m in at.markdown)
    assert "expected** is the exact average over every order" in _texts(at)


def test_compare_links_its_spread_column_to_the_ties_explanation(filled):
    at = open_app("pages/5_compare.py")
    assert problems(at) == []
    links = [p for p in at.get("page_link")]
    assert any("tie spread" in p.proto.label and p.proto.page.endswith("queries") for p in links)


def _chart(at, key):
    return json.loads(next(c.proto.spec for c in at.get("plotly_chart") if c.proto.id.endswith(key)))


def test_rotation_draws_one_curve_when_loss_is_the_quantization_error_and_explains_steps(filled):
    at = open_app("pages/2_rotation.py")
    at.selectbox(key="hv_rot_q").set_value("hq").run()
    at.number_input(key="hv_rot_hq_steps").set_value(400)
    at.button(key="hv_rot_start").click().run()
    at.run()
    assert problems(at) == []
    names = [t["name"] for t in _chart(at, "hv_curve_chart")["data"]]
    assert names == ["quantization error", "probe mAP@all (hashviz)"]
    text = _texts(at)
    assert "over *all* 400 steps" in text and "one curve" in text
    step = int(re.search(r"step (\d+) ·", text).group(1))
    tau = 2.0 * (0.01 / 2.0) ** ((step - 1) / 399)
    assert f"smoothing width τ = {tau:.3f}" in text
    at.button(key="hv_rot_discard").click().run()
    # l1: loss and quantization error are different numbers, drawn as two curves
    at.selectbox(key="hv_rot_hq_loss").set_value("l1").run()
    at.button(key="hv_rot_start").click().run()
    at.run()
    assert [t["name"] for t in _chart(at, "hv_curve_chart")["data"]] == ["loss (l1)", "quantization error",
                                                                         "probe mAP@all (hashviz)"]
    assert "Steps only sets how long the fit runs" in _texts(at)
    at.button(key="hv_rot_discard").click().run()
    from hashviz.session.jobs import SESSION_OBJECTS

    SESSION_OBJECTS.prune(lambda s: False)


def test_codes_page_states_the_purity_of_this_run(filled):
    at = open_app("pages/3_embeddings.py")
    assert problems(at) == []
    text = next(c.value for c in at.caption if c.value.startswith("Neighbourhood purity"))
    nums = [float(v) for v in re.findall(r"(?:embeddings|codes) (\d\.\d{3})", text)]
    assert len(nums) == 3 and all(0 <= v <= 1 for v in nums)
    before, after = nums[1], nums[2]
    if after - before > 0.02:
        assert "tightens" in text
    elif after - before < -0.02:
        assert "fewer" in text
    else:
        assert "look alike" in text
    assert "classes blur into each other; after" not in _texts(at)     # no unconditional claim any more


def _nav_titles() -> list[str]:
    return re.findall(r'st\.Page\("[^"]+", title="([^"]+)"', Path(APP).read_text())


def test_tour_text_lives_in_one_place_in_navigation_order():
    from hashviz.ui.tour import STEPS

    assert [s["title"] for s in STEPS] == _nav_titles()
    root = Path(APP).parent
    assert [s["page"] for s in STEPS] == re.findall(r'st\.Page\("([^"]+)"', Path(APP).read_text())
    assert all((root / s["page"]).exists() for s in STEPS)
    for page in (root / "pages").glob("*.py"):                         # no page carries tour text itself
        assert "Guided tour" not in page.read_text()


@pytest.mark.parametrize("page", ["pages/1_data.py", "pages/0_playground.py", "pages/2_rotation.py",
                                  "pages/3_embeddings.py", "pages/4_queries.py", "pages/5_compare.py"])
def test_tour_shows_the_next_step_on_every_page_and_switches_off(filled, page):
    from hashviz.ui.tour import STEPS

    i = next(k for k, s in enumerate(STEPS) if s["page"] == page)
    at = open_app(page, query={"tour": "1"})
    assert problems(at) == []
    info = [x.value for x in at.info if x.value.startswith("**Guided tour")]
    assert info == [f"**Guided tour · step {i + 1} of {len(STEPS)}.** **Do:** {STEPS[i]['do']}  \n"
                    f"**Look for:** {STEPS[i]['look']}"]
    nxt = [p.proto.label for p in at.get("page_link") if p.proto.label.startswith("Next on the tour")]
    assert nxt == ([f"Next on the tour: {STEPS[i + 1]['title']}"] if i + 1 < len(STEPS) else [])
    at.toggle(key="hv_tour_widget").set_value(False).run()
    assert not [x for x in at.info if x.value.startswith("**Guided tour")]
    assert "tour" not in at.query_params


def test_tour_before_a_run_says_to_prepare(fresh):
    at = open_app(None, query={"tour": "1"})
    assert problems(at) == []
    info = next(x.value for x in at.info if x.value.startswith("**Guided tour"))
    assert "Press **Prepare default**" in info and "step 1 of" in info
    off = open_app()
    assert not [x for x in off.info if x.value.startswith("**Guided tour")]
