"""Figures for the teaching texts: the live curve draws loss and quantization error once when they are the same
number, and the rank strip puts a tick at every relevant item's rank."""

from __future__ import annotations

import numpy as np

from hashviz.quantize import make_quantizer
from hashviz.viz import figures as F
from tests.helpers import clustered_embeddings


def _curve(quantizer, X, steps=None):
    rows = [{"step": 0, "loss": None, "quantization_error": 0.5, "map": 0.4}]
    for s in quantizer.fit_steps(X):
        rows.append({"step": s.step, "loss": s.loss, "quantization_error": s.quantization_error,
                     "map": 0.5 if s.step % 10 == 0 else None})
    return rows


def test_one_curve_when_the_loss_is_the_quantization_error():
    X, _ = clustered_embeddings(n_per_class=30, n_classes=4, n_bits=8)
    for name, options in (("hq", {"steps": 30}), ("itq", {"n_iter": 10})):
        curve = _curve(make_quantizer(name, 8, **options), X)
        assert F.loss_is_quantization_error(curve)
        fig = F.training_curves(curve, loss_name="loss (l2)")
        names = [t.name for t in fig.data]
        assert names == ["quantization error", "probe mAP@all (hashviz)"]
        assert list(fig.data[0].y) == [r["quantization_error"] for r in curve]
        assert "= loss (l2)" in fig.layout.yaxis.title.text and "yaxis2" not in fig.layout.to_plotly_json()
    # a different loss (l1): both curves, quantization error on its own axis
    curve = _curve(make_quantizer("hq", 8, steps=30, loss="l1"), X)
    assert not F.loss_is_quantization_error(curve)
    fig = F.training_curves(curve, loss_name="loss (l1)")
    assert [t.name for t in fig.data] == ["loss (l1)", "quantization error", "probe mAP@all (hashviz)"]
    assert fig.data[1].yaxis == "y2"
    assert not F.loss_is_quantization_error([{"step": 0, "loss": None, "quantization_error": 0.3}])


def test_rank_strip_ticks_every_relevant_rank_up_to_the_limit():
    ranks = {"sign": np.array([1, 2, 5, 40, 90]), "HQ": np.array([1, 2, 3, 4, 5])}
    fig = F.rank_strip(ranks, k=3, n_relevant=5, max_rank=50)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["sign"].x) == [1, 2, 5, 40] and list(by_name["HQ"].x) == [1, 2, 3, 4, 5]
    assert set(by_name["sign"].y) == {"sign"}
    assert sorted(s.x0 for s in fig.layout.shapes) == [3.5, 5.5]
