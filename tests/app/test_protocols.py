"""Protocols in the app (issue 13): Compare and Queries have a protocol selector whose choice changes the numbers
to that protocol's (checked against the library's evaluator), is kept in the URL and named in every label, CSV
column and the provenance; the "same codes, every protocol" table equals evaluate_protocols exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hashviz.embeddings import Embeddings
from hashviz.evaluate import evaluate, evaluate_protocols
from tests.app.conftest import open_app, problems

# AppTests of a whole feature: in `make test`, not in the quick `make test-fast`
pytestmark = pytest.mark.slow


def _run(filled):
    from hashviz.pipeline import list_prepared, load_quantizer

    res = list_prepared(filled)[0]
    run = res.run(16)
    emb = Embeddings.load(run.embeddings)
    return res, emb, {q: load_quantizer(run.quantizers[q], filled) for q in ("sign", "itq", "hq")}


def _metric_columns(df) -> list[str]:
    return [c for c in df.columns if c.startswith(("mAP", "P@")) and not c.startswith("P@r")]


def test_compare_protocol_choice_changes_the_numbers_and_every_label(filled):
    res, emb, qs = _run(filled)
    ndb = int(emb.mask("database").sum())
    at = open_app("pages/5_compare.py")
    assert problems(at) == [] and at.selectbox(key="hv_cmp_protocol").value == "hashviz"
    hv = at.dataframe[0].value
    assert all("(hashviz)" in c for c in _metric_columns(hv)) and "mAP@all (hashviz)" in hv.columns
    at.selectbox(key="hv_cmp_protocol").set_value("deephash").run()
    assert problems(at) == [] and at.query_params["protocol"] == "deephash"
    dh = at.dataframe[0].value
    label = f"mAP@{ndb - 1} (deephash)"
    assert label in dh.columns and all("(deephash)" in c for c in _metric_columns(dh))
    assert f"{label} tie spread (pessimistic…optimistic)" in dh.columns
    for q, name in (("sign", "sign"), ("itq", "ITQ"), ("hq", "HQ")):
        want = evaluate(emb, q, fitted=qs[q], protocol="deephash")
        row = dh[(dh["quantizer"] == name) & (dh["n_bits"] == 16)].iloc[0]
        old = hv[(hv["quantizer"] == name) & (hv["n_bits"] == 16)].iloc[0]
        assert row[label] == pytest.approx(want.map, abs=1e-12) and want.ties == "stable"
        assert row["P@1000 (deephash)"] == pytest.approx(want.p_at_k, abs=1e-12)
        assert row[label] != old["mAP@all (hashviz)"]            # the protocol changes the number
    # the CSV the page exports is this table: its header names the protocol
    header = dh.to_csv(index=False).splitlines()[0]
    assert label in header and "P@1000 (deephash)" in header
    # overriding the tie order is named in every label too
    at.selectbox(key="hv_cmp_ties").set_value("optimistic").run()
    opt = at.dataframe[0].value
    label = f"mAP@{ndb - 1} (deephash, ties optimistic)"
    assert at.query_params["ties"] == "optimistic" and label in opt.columns
    assert all("(deephash, ties optimistic)" in c for c in _metric_columns(opt))
    row = opt[(opt["quantizer"] == "HQ") & (opt["n_bits"] == 16)].iloc[0]
    assert row[label] == pytest.approx(evaluate(emb, "hq", fitted=qs["hq"], protocol="deephash",
                                                ties="optimistic").map, abs=1e-12)


def test_the_url_reopens_compare_on_its_protocol(filled):
    at = open_app("pages/5_compare.py", query={"protocol": "h2q"})
    assert problems(at) == [] and at.selectbox(key="hv_cmp_protocol").value == "h2q"
    assert any(c.endswith("(h2q)") for c in at.dataframe[0].value.columns)
    bad = open_app("pages/5_compare.py", query={"protocol": "nope"})     # an unknown one is ignored
    assert problems(bad) == [] and bad.selectbox(key="hv_cmp_protocol").value == "hashviz"


def test_same_codes_every_protocol_equals_evaluate_protocols(filled):
    _, emb, qs = _run(filled)
    at = open_app("pages/5_compare.py")
    table = at.dataframe[1].value
    assert list(table["quantizer"]) == ["sign", "ITQ", "HQ"]
    for q, name in (("sign", "sign"), ("itq", "ITQ"), ("hq", "HQ")):
        row = table[table["quantizer"] == name].iloc[0]
        want = evaluate_protocols(emb, q, fitted=qs[q])
        vals = []
        for ev in want:
            col = f"{ev.protocol}: {ev.map_label.split(' (')[0]}"
            assert row[col] == ev.map                               # exactly the library's numbers
            vals.append(ev.map)
        assert row["spread (largest − smallest)"] == max(vals) - min(vals)
    assert {c.split(":")[0] for c in table.columns if ":" in c} == {"hashviz", "deephash", "h2q", "orthohash"}


def test_provenance_and_csv_of_an_export_name_the_protocol(filled):
    from hashviz.session import compare
    from hashviz.session.runs import Workspace, stored_fitted

    res, emb, qs = _run(filled)
    run = Workspace(filled).get_run(res.key)
    fitted = {q: stored_fitted(q, f) for q, f in qs.items()}
    rows = [compare.score(emb, f, protocol="orthohash") for f in fitted.values()]
    df = compare.table(rows)
    params = {"protocol": "orthohash", "top_k": 1000, "ties": None, "radius": 2, "bit_lengths": [16]}
    files = {f.label: f for f in compare.exports(run.to_dict(), emb, fitted, lambda: df.to_csv(index=False),
                                                 params, 16)}
    prov = json.loads(files["Provenance (JSON)"].build())
    assert prov["protocol"]["protocol"] == "orthohash" and "OrthoHash" in prov["protocol"]["protocol_rules"]
    assert prov["protocol"]["ties"] == "the protocol's own (stable)"
    csv_header = files["Table (CSV)"].build().decode().splitlines()[0]
    assert "mAP@all (orthohash)" in csv_header and "P@1000 (orthohash)" in csv_header


def _query_ap(emb, quantizer, row, protocol):
    """The query's term in the protocol's mAP, from the library's evaluator."""
    ev = evaluate(emb, "q", fitted=quantizer, protocol=protocol)
    return float(ev.average_precisions[list(np.flatnonzero(emb.mask("query"))).index(row)]), ev


def test_queries_protocol_choice_changes_the_ap_to_that_protocols_term(filled):
    from hashviz.session.browse import choose_query

    _, emb, qs = _run(filled)
    ndb = int(emb.mask("database").sum())
    # a query whose HQ AP differs between the two protocols at the 3 decimals shown
    for seed in range(50):
        row = choose_query(emb, "random", seed=seed)
        hv, _ = _query_ap(emb, qs["hq"], row, "hashviz")
        dh, _ = _query_ap(emb, qs["hq"], row, "deephash")
        if f"{hv:.3f}" != f"{dh:.3f}":
            break
    else:
        pytest.fail("no query with a different AP under deephash")
    at = open_app("pages/4_queries.py", query={"bits": "16", "seed": str(seed)})
    assert problems(at) == [] and at.selectbox(key="hv_q_protocol").value == "hashviz"
    heads = [m.value for m in at.markdown if m.value.startswith("**HQ**")]
    assert heads[0].startswith(f"**HQ** · AP@all (hashviz) {hv:.3f} · ")
    at.selectbox(key="hv_q_protocol").set_value("deephash").run()
    assert problems(at) == [] and at.query_params["protocol"] == "deephash"
    heads = [m.value for m in at.markdown if m.value.startswith("**HQ**")]
    assert heads[0].startswith(f"**HQ** · AP@{ndb - 1} (deephash) {dh:.3f} · ")
    assert any("protocol `deephash`" in m.value for m in at.markdown)


@pytest.mark.parametrize("protocol", ["hashviz", "deephash", "h2q", "orthohash"])
def test_a_ranked_query_s_ap_is_its_term_in_the_protocols_map(filled, protocol):
    from hashviz.session.browse import rank

    _, emb, qs = _run(filled)
    rows = np.flatnonzero(emb.mask("query"))[:5]
    for row in rows:
        r = rank(emb, qs["hq"], int(row), k=10, ties=None, protocol=protocol)
        want, ev = _query_ap(emb, qs["hq"], int(row), protocol)
        assert r.ap == want and r.ap_label == "AP" + ev.map_label[3:]
        d = r.distances
        assert (np.diff(d) >= 0).all()                               # ranked by Hamming distance
    if protocol == "h2q":   # ties broken by the Euclidean distance of the normalised rotated embeddings
        from hashviz.retrieval.metrics import normalized_euclidean_distances

        r = rank(emb, qs["sign"], int(rows[0]), k=50, ties=None, protocol="h2q")
        q = qs["sign"].transform(emb.z[[rows[0]]])
        sec = normalized_euclidean_distances(q, qs["sign"].transform(emb.z[r.rows]))[0]
        for a in range(len(r.rows) - 1):
            if r.distances[a] == r.distances[a + 1]:
                assert sec[a] <= sec[a + 1]
