"""Neighbourhood purity behind the Codes & embeddings text: a literal nearest-neighbour loop for Euclidean
distances, every order of the tied codes for Hamming distances, and the sentence says only what the numbers say."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hashviz.embeddings import Embeddings
from hashviz.quantize import make_quantizer
from hashviz.session.maps import MapData, neighbourhood_purity, purities, purity_sentence
from tests.helpers import clustered_embeddings


def test_euclidean_purity_is_the_literal_neighbour_loop():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = rng.integers(0, 3, 40)
    literal = []
    for i in range(40):
        order = sorted((j for j in range(40) if j != i), key=lambda j: float(np.sum((X[i] - X[j]) ** 2)))
        literal.append(sum(y[j] == y[i] for j in order[:5]) / 5)
    assert neighbourhood_purity(X, y, k=5) == pytest.approx(np.mean(literal), abs=1e-12)
    assert neighbourhood_purity(X, y, k=5, anchors=np.array([3, 7])) == pytest.approx((literal[3] + literal[7]) / 2)


def test_hamming_purity_averages_every_order_of_the_ties():
    bits = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=bool)
    y = np.array([0, 0, 1, 1, 0, 1, 0])
    k = 2
    literal = []
    for i in range(len(bits)):
        others = [j for j in range(len(bits)) if j != i]
        dist = {j: int((bits[i] != bits[j]).sum()) for j in others}
        groups = [[j for j in others if dist[j] == d] for d in sorted(set(dist.values()))]
        shares = [sum(y[j] == y[i] for j in [j for g in perm for j in g][:k]) / k
                  for perm in itertools.product(*[itertools.permutations(g) for g in groups])]
        literal.append(np.mean(shares))
    assert neighbourhood_purity(bits, y, k=k) == pytest.approx(np.mean(literal), abs=1e-12)
    # multi-hot labels: relevant = share at least one label
    multi = np.eye(2, dtype=bool)[y] | np.array([[0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [1, 0], [0, 0]], dtype=bool)
    assert neighbourhood_purity(bits, multi, k=k) >= neighbourhood_purity(bits, y, k=k)


def test_purities_of_the_three_maps_and_the_sentence():
    z, labels = clustered_embeddings(n_per_class=50, n_classes=4, n_bits=8, noise=0.5, seed=2)
    split = np.zeros(len(z), np.uint8)
    split[::5] = 1
    emb = Embeddings(z=z, labels=labels, split=split)
    sign = make_quantizer("sign", 8).fit(emb.part("train").z)
    hq = make_quantizer("hq", 8).fit(emb.part("train").z)
    data = MapData.build(emb, sign, hq)
    p = purities(data, n_anchors=50)
    assert set(p) == {"embeddings", "before", "after"} and all(0 <= v <= 1 for v in p.values())
    assert p["before"] == pytest.approx(neighbourhood_purity(data.bits_before, data.labels,
                                                             anchors=np.sort(np.random.default_rng(0).choice(
                                                                 len(data.rows), 50, False))))
    text = purity_sentence({"embeddings": 0.9, "before": 0.6, "after": 0.8}, "HQ")
    assert "0.600" in text and "0.800" in text and "tightens" in text
    assert "look alike" in purity_sentence({"embeddings": 0.9, "before": 0.95, "after": 0.96}, "HQ")
    assert "fewer" in purity_sentence({"embeddings": 0.9, "before": 0.9, "after": 0.8}, "HQ")


def _purity_by_sorting(bits, labels, k, anchors):
    """The tie-expectation purity written out with a sort per anchor (the definition, slow)."""
    lab = np.asarray(labels)
    out = []
    for i in anchors:
        d = (bits != bits[i]).sum(1).astype(float)
        d[i] = np.inf
        same = (lab[i] & lab).any(1) if lab.ndim == 2 else lab == lab[i]
        dk = np.sort(d)[k - 1]
        closer, tied = d < dk, d == dk
        out.append(((same & closer).sum() + (k - closer.sum()) * (same & tied).sum() / tied.sum()) / k)
    return float(np.mean(out))


@pytest.mark.parametrize("multi", [False, True])
def test_hamming_purity_by_counting_equals_the_sorted_definition(multi):
    rng = np.random.default_rng(5)
    bits = rng.random((300, 6)) > 0.5                        # 6 bits, 300 rows: ties everywhere
    labels = (rng.random((300, 4)) > 0.7) if multi else rng.integers(0, 4, 300)  # multi: some rows unlabelled
    anchors = np.sort(rng.choice(300, 60, replace=False))
    for k in (1, 5, 40):
        assert neighbourhood_purity(bits, labels, k=k, anchors=anchors) == pytest.approx(
            _purity_by_sorting(bits, labels, k, anchors), abs=1e-12)
