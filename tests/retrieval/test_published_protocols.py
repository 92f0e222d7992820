"""docs/metrics.md's notes on DeepHash-pytorch's evaluation, checked against a literal re-statement of it."""

from __future__ import annotations

import numpy as np

from hashviz.codes import encode, hamming_distances, to_bits
from hashviz.retrieval.metrics import mean_average_precision


def deephash_style_top_map(q_pm1, db_pm1, q_onehot, db_onehot, topk) -> float:
    """CalcTopMap as DeepHash-pytorch defines it (written from its description): ±1 codes, distance
    ½(K − ⟨b_q, b_d⟩), rank by distance (here with a stable sort), keep ``ranked[0:topk]`` (a Python slice, so
    ``topk=-1`` drops the last item), AP = mean of (hits so far / rank) over the hits kept, summed over queries
    with a hit and divided by the number of all queries."""
    k_bits = q_pm1.shape[1]
    total = 0.0
    for i in range(len(q_pm1)):
        relevant = (q_onehot[i] @ db_onehot.T) > 0
        dist = 0.5 * (k_bits - db_pm1 @ q_pm1[i])
        kept = relevant[np.argsort(dist, kind="stable")][0:topk]
        hits = int(kept.sum())
        if hits == 0:
            continue
        total += float(np.mean(np.arange(1, hits + 1) / (np.flatnonzero(kept) + 1.0)))
    return total / len(q_pm1)


def test_calctopmap_with_topk_minus_one_is_stable_ties_at_n_database_minus_one():
    rng = np.random.default_rng(4)
    n_bits, n_classes = 12, 4
    centres = rng.standard_normal((n_classes, n_bits))
    q_labels, db_labels = rng.integers(0, n_classes, 40), rng.integers(0, n_classes, 300)
    q_z = centres[q_labels] + 1.2 * rng.standard_normal((40, n_bits))
    db_z = centres[db_labels] + 1.2 * rng.standard_normal((300, n_bits))
    assert np.all(q_z != 0) and np.all(db_z != 0)
    q_pm1, db_pm1 = np.where(q_z >= 0, 1.0, -1.0), np.where(db_z >= 0, 1.0, -1.0)
    eye = np.eye(n_classes)
    peers = deephash_style_top_map(q_pm1, db_pm1, eye[q_labels], eye[db_labels], -1)
    qc, dc = encode(q_z), encode(db_z)
    ours = mean_average_precision(qc, dc, q_labels, db_labels, ties="stable", top_k=len(db_z) - 1)
    assert abs(ours - peers) < 1e-12
    # and it is not mAP@all: the last-ranked item is dropped
    everything = mean_average_precision(qc, dc, q_labels, db_labels, ties="stable")
    assert abs(everything - peers) > 1e-6
    assert abs(everything - deephash_style_top_map(q_pm1, db_pm1, eye[q_labels], eye[db_labels], None)) < 1e-12


def test_sign_of_zero():
    """hashviz: 0 → bit 1, integer distances; peers' sign(0) = 0 gives half-bit distances."""
    z = np.array([[0.0, 1.0, -1.0, 2.0]])
    other = np.array([[-1.0, 1.0, -1.0, 2.0]])
    assert to_bits(z).tolist() == [[True, True, False, True]]
    assert int(hamming_distances(encode(z), encode(other))[0, 0]) == 1
    peers = 0.5 * (4 - np.sign(z) @ np.sign(other).T)
    assert peers[0, 0] == 0.5
