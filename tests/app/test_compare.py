"""Compare's scoring, UI-free (hashviz.session.compare): one encoding and one count per quantizer give the numbers
of ``evaluate`` (the CLI's) under every protocol, k, tie order and radius, later protocol changes reuse the
counts, the curves and bit statistics equal the public metric functions, and the quantizer × bits grid is the
long form pivoted."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hashviz.embeddings import Embeddings
from hashviz.evaluate import evaluate
from hashviz.quantize import make_quantizer
from hashviz.retrieval import metrics as M
from hashviz.session import compare
from hashviz.session.runs import FittedQuantizer, stored_fitted
from tests.helpers import clustered_embeddings

FIELDS = ("map", "map_optimistic", "map_pessimistic", "map_at_k", "p_at_k", "p_within_radius",
          "quantization_error")
SAME = ("protocol", "ties", "map_k", "top_k", "radius", "n_query", "n_database", "n_no_relevant", "map_label")


def _emb(n_bits=16, seed=0) -> Embeddings:
    z, labels = clustered_embeddings(n_per_class=80, n_classes=5, n_bits=n_bits, noise=0.9, seed=seed)
    rng = np.random.default_rng(seed)
    split = np.full(len(z), 2, np.uint8)
    order = rng.permutation(len(z))
    split[order[:60]] = 1
    split[order[60:160]] = 0
    return Embeddings(z=z, labels=labels, split=split)


def _fitted(emb, name="itq") -> FittedQuantizer:
    q = make_quantizer(name, emb.dim).fit(emb.part("train").z)
    return stored_fitted(name, q)


def test_code_stats_equal_the_public_metric_functions():
    emb = _emb()
    f = _fitted(emb)
    s = compare.code_stats(emb, f)
    q, db = emb.part("query"), emb.part("database")
    qc, dc = f.quantizer.encode(q.z), f.quantizer.encode(db.z)
    assert np.array_equal(s.query_codes, qc) and np.array_equal(s.database_codes, dc)
    precision, recall = M.precision_recall_by_radius(qc, dc, q.labels, db.labels, n_bits=emb.dim)
    assert np.array_equal(s.precision, precision) and np.array_equal(s.recall, recall)
    bits = f.quantizer.transform(db.z) >= 0
    assert np.allclose(s.balance, bits.mean(0))
    assert np.allclose(s.correlation, np.corrcoef(np.where(bits, 1.0, -1.0).T))
    assert s.quantization_error == pytest.approx(M.quantization_error(f.quantizer.transform(db.z)), rel=1e-12)


PROTOCOLS = [("hashviz", None, 1000, 2), ("hashviz", "optimistic", 17, 3), ("hashviz", "stable", 25, 0),
             ("deephash", None, 40, 2), ("h2q", None, 50, 1), ("orthohash", None, 1000, 2),
             ("deephash", "pessimistic", 30, 2)]


@pytest.mark.parametrize("protocol,ties,top_k,radius", PROTOCOLS)
def test_a_score_equals_evaluate_under_every_protocol(protocol, ties, top_k, radius):
    emb = _emb()
    f = _fitted(emb, "hq")
    stats = compare.code_stats(emb, f)
    row = compare.score(emb, f, top_k=top_k, ties=ties, radius=radius, protocol=protocol, stats=stats)
    ev = evaluate(emb, "hq", top_k=top_k, ties=ties, radius=radius, fitted=f.quantizer, protocol=protocol).to_dict()
    for k in FIELDS:
        assert row[k] == pytest.approx(ev[k], abs=1e-12), k
    for k in SAME:
        assert row[k] == ev[k], k
    assert row["quantizer"] == "hq" and row["label"] == f.label and row["n_bits"] == emb.dim
    assert math.isnan(row["hierarchical_at_k"])


def test_protocol_changes_reuse_the_codes_and_their_counts():
    """The Hamming counts are made once per quantizer: scoring under another k, radius, closed-form tie order or
    protocol depth reads the same counts (the very array object)."""
    emb = _emb()
    f = _fitted(emb)
    stats = compare.code_stats(emb, f)
    counts = stats.problem.counts()
    for kw in ({"top_k": 10}, {"radius": 0}, {"ties": "optimistic"}, {"protocol": "orthohash", "ties": "expected"}):
        compare.score(emb, f, stats=stats, **kw)
        assert stats.problem.counts() is counts


def test_hierarchical_score_equals_evaluate_with_the_similarity():
    emb = _emb()
    f = _fitted(emb, "hq")
    rng = np.random.default_rng(3)
    a = rng.random((5, 5))
    sim = (a + a.T) / 2
    np.fill_diagonal(sim, 1.0)
    for ties in (None, "stable"):
        row = compare.score(emb, f, top_k=30, ties=ties, similarity=sim)
        ev = evaluate(emb, "hq", top_k=30, ties=ties, fitted=f.quantizer, similarity=sim)
        assert row["hierarchical_at_k"] == pytest.approx(ev.hierarchical_at_k, abs=1e-12)


def _rows():
    """Score rows of three quantizers at two lengths, one live fit at 16 bits only."""
    rows = []
    for n_bits in (16, 32):
        emb = _emb(n_bits, seed=n_bits)
        fs = [_fitted(emb, n) for n in ("sign", "itq", "hq")]
        if n_bits == 16:
            fs.append(FittedQuantizer(id="live:HQ-l2", label="live HQ-l2", quantizer=fs[2].quantizer))
        rows += [compare.score(emb, f, top_k=30) for f in fs]
    return rows


def test_the_grid_is_the_long_form_pivoted():
    rows = _rows()
    long = compare.table(rows)
    pess = "mAP@all (hashviz) pessimistic (relevant last in ties)"
    opt = "mAP@all (hashviz) optimistic (relevant first in ties)"
    assert long[pess].dtype.kind == "f" and long[opt].dtype.kind == "f"  # the tie spread as numbers
    assert (long[pess] <= long["mAP@all (hashviz)"]).all() and (long["mAP@all (hashviz)"] <= long[opt]).all()
    metrics = compare.cell_metrics(rows)
    assert metrics[0] == "mAP@all (hashviz)" and compare.TIE_SPREAD in metrics
    assert "P@30 (hashviz)" in metrics and pess in metrics
    for metric in metrics:
        grid = compare.grid(rows, metric)
        assert list(grid.columns) == ["quantizer", "16 bits", "32 bits"]
        assert list(grid["quantizer"]) == ["sign", "ITQ", "HQ", "live HQ-l2"]
        for r in rows:  # every cell is the row's number (brute force over the rows)
            want = r["map_optimistic"] - r["map_pessimistic"] if metric == compare.TIE_SPREAD else \
                long[(long["quantizer"] == r["label"]) & (long["n_bits"] == r["n_bits"])][metric].item()
            cell = grid.loc[grid["quantizer"] == r["label"], f"{r['n_bits']} bits"].item()
            assert cell == pytest.approx(want, abs=1e-15)
        live_32 = grid.loc[grid["quantizer"] == "live HQ-l2", "32 bits"].item()
        assert math.isnan(live_32)  # the live fit exists at 16 bits only
