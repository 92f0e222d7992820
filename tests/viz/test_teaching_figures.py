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
    rows = dict(zip(fig.layout.yaxis.ticktext, fig.layout.yaxis.tickvals))  # one named row per quantizer
    assert set(by_name["sign"].y) == {rows["sign"]} and set(by_name["HQ"].y) == {rows["HQ"]} and len(rows) == 2
    assert sorted(s.x0 for s in fig.layout.shapes) == [3.5, 5.5]


def test_rank_strip_of_very_many_relevant_items_is_the_share_relevant_per_rank_bin():
    """Above F.RANK_TICKS_MAX ticks each row is a density: the share of each rank bin's items that are relevant
    (brute force: count the ranks falling in each bin, divide by the bin's number of ranks)."""
    rng = np.random.default_rng(0)
    max_rank = 100_000
    ranks = {"sign": np.sort(rng.choice(max_rank, 20_000, replace=False) + 1),
             "HQ": np.arange(1, 20_001)}  # every one of the first 20,000 ranks relevant
    fig = F.rank_strip(ranks, k=10, n_relevant=20_000, max_rank=max_rank)
    (heat,) = fig.data
    assert heat.type == "heatmap" and np.asarray(heat.z).shape == (2, F.RANK_BINS)
    lo, hi = np.asarray(heat.customdata)[0, :, 0], np.asarray(heat.customdata)[0, :, 1]
    assert lo[0] == 1 and hi[-1] == max_rank and (lo[1:] == hi[:-1] + 1).all()
    for row, r in enumerate(ranks.values()):
        brute = [((r >= a) & (r <= b)).sum() / (b - a + 1) for a, b in zip(lo, hi)]
        assert np.allclose(np.asarray(heat.z)[row], brute)
    assert np.asarray(heat.z)[1, :80].min() == 1.0 and np.asarray(heat.z)[1, 80:].max() == 0.0
    assert sorted(s.x0 for s in fig.layout.shapes) == [10.5, 20_000.5]
