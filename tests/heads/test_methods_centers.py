"""Hash-centre generators keep their distances; SHC's centre optimiser; hierarchy distances and the
hierarchical retrieval score against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from hashviz.codes import encode, hamming_distances
from hashviz.errors import InvalidInputError
from hashviz.heads import centers as hc
from hashviz.retrieval.hierarchical import (
    class_distance_matrix,
    class_similarity_matrix,
    item_similarity,
    mean_semantic_similarity_at_k,
)


def brute_distances(c):
    return np.array([[sum(a != b for a, b in zip(r, s)) for s in c] for r in c])


@pytest.mark.parametrize("n_bits", [8, 16, 64, 128])
def test_hadamard_rows_are_exactly_half_the_bits_apart(n_bits):
    h = hc.hadamard_matrix(n_bits).astype(np.int64)
    assert np.array_equal(h @ h.T, n_bits * np.eye(n_bits))
    d = brute_distances(h[: min(n_bits, 12)]) if n_bits > 16 else brute_distances(h)
    off = ~np.eye(len(d), dtype=bool)
    assert (d[off] == n_bits // 2).all()
    cen = hc.hadamard_centers(2 * n_bits, n_bits, rng=np.random.default_rng(0))
    assert np.array_equal(cen, np.vstack([h, -h]))  # H rows then −H rows
    dd = hc.pairwise_hamming(cen)
    for i in range(2 * n_bits):
        for j in range(2 * n_bits):
            want = 0 if i == j else (n_bits if abs(i - j) == n_bits else n_bits // 2)
            assert dd[i, j] == want


def test_hadamard_needs_a_power_of_two():
    with pytest.raises(InvalidInputError):
        hc.hadamard_matrix(12)


@pytest.mark.parametrize("n_classes,n_bits", [(10, 12), (40, 20), (100, 48), (10, 100), (50, 16)])
def test_centres_for_any_bit_length_keep_the_minimum_distance(n_classes, n_bits):
    rng = np.random.default_rng(1)
    want = n_bits // 4 + 1
    cen = hc.hadamard_centers(n_classes, n_bits, rng=rng)  # falls back to random balanced rows
    assert cen.shape == (n_classes, n_bits) and set(np.unique(cen)) <= {-1, 1}
    assert hc.min_pairwise_distance(cen) >= want
    assert hc.min_pairwise_distance(cen) == brute_distances(cen)[~np.eye(n_classes, dtype=bool)].min()
    if not hc.is_power_of_two(n_bits):
        pos = (cen == 1).sum(axis=1)
        assert ((pos == n_bits // 2) | (pos == (n_bits + 1) // 2)).all()  # balanced rows


def test_random_balanced_rows_meet_the_requested_distance_or_relax_it_when_impossible():
    rng = np.random.default_rng(0)
    cen = hc.random_balanced_centers(20, 32, rng=rng, min_distance=12)
    assert hc.min_pairwise_distance(cen) >= 12
    assert ((cen == 1).sum(axis=1) == 16).all()
    # 100 classes in 8 bits: no distance above 1 is possible; still distinct rows
    many = hc.random_balanced_centers(100, 8, rng=rng)
    assert len(np.unique(many, axis=0)) == 100 and hc.min_pairwise_distance(many) >= 1


def test_generators_are_deterministic_given_the_rng():
    for method in ("bernoulli", "hadamard", "max_distance", "random_balanced"):
        a = hc.make_centers(method, 12, 24, rng=np.random.default_rng(5))
        b = hc.make_centers(method, 12, 24, rng=np.random.default_rng(5))
        assert np.array_equal(a, b)
    with pytest.raises(InvalidInputError):
        hc.make_centers("gaussian", 3, 8, rng=np.random.default_rng(0))


@pytest.mark.parametrize("n_classes,n_bits", [(10, 16), (10, 12), (30, 32)])
def test_max_distance_generator_spreads_targets_at_least_as_far_as_its_start(n_classes, n_bits):
    rng = np.random.default_rng(3)
    start = hc.bernoulli_centers(n_classes, n_bits, rng=np.random.default_rng(3))
    opt = hc.max_distance_centers(n_classes, n_bits, rng=rng, init=start)
    assert hc.min_pairwise_distance(opt) >= hc.min_pairwise_distance(start)
    balanced = hc.random_balanced_centers(n_classes, n_bits, rng=np.random.default_rng(4))
    spread = hc.max_distance_centers(n_classes, n_bits, rng=np.random.default_rng(4))  # starts from `balanced`
    assert hc.min_pairwise_distance(spread) >= max(hc.min_pairwise_distance(balanced), n_bits // 4 + 1)


def test_multilabel_centre_is_the_sign_of_the_sum_with_ties_broken():
    cen = np.array([[1, 1, -1, -1], [1, -1, 1, -1], [-1, -1, -1, 1]])
    ties = np.array([-1, 1, 1, -1])
    y = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1]], float)
    out = hc.multilabel_centers(y, cen, ties)
    assert np.array_equal(out, [[1, 1, -1, -1], [1, 1, 1, -1], [1, -1, -1, -1]])
    tout = hc.multilabel_centers(torch.tensor(y), torch.tensor(cen, dtype=torch.float64), torch.tensor(ties))
    assert np.array_equal(tout.numpy(), out)


def test_similarity_centres_follow_the_similarity_and_keep_the_minimum_distance():
    s = np.full((6, 6), 0.0)
    s[:3, :3] = s[3:, 3:] = 0.5  # two families
    np.fill_diagonal(s, 1.0)
    rng = np.random.default_rng(0)
    start = hc.hadamard_centers(6, 32, rng=np.random.default_rng(0), min_distance=9)
    cen = hc.similarity_centers(s, 32, rng=rng, min_distance=9)

    def objective(c):
        g = c.astype(float) @ c.T / 32
        off = ~np.eye(6, dtype=bool)
        return ((g - s)[off] ** 2).sum()

    assert hc.min_pairwise_distance(cen) >= 9
    assert objective(cen) < objective(start) - 0.5
    d = hc.pairwise_hamming(cen)
    within = [d[i, j] for i in range(6) for j in range(i + 1, 6) if (i < 3) == (j < 3)]
    across = [d[i, j] for i in range(3) for j in range(3, 6)]
    assert np.mean(within) < np.mean(across)


# ---------------------------------------------------------------- hierarchy distances and the retrieval score

def test_two_level_hierarchy_distances():
    d = class_distance_matrix(("loops", "straight", "loops", "curves"), 4)
    assert np.allclose(d, [[0, 1, 0.5, 1], [1, 0, 1, 1], [0.5, 1, 0, 1], [1, 1, 1, 0]])
    assert np.allclose(class_similarity_matrix(("a", "a", "b", "b"), 4), 1 - class_distance_matrix(
        ("a", "a", "b", "b"), 4))


def test_deeper_mapping_hierarchy_by_name_and_by_index():
    tree = {"cat": "mammal", "dog": "mammal", "trout": "fish", "mammal": "animal", "fish": "animal",
            "truck": "vehicle"}
    d = class_distance_matrix(tree, 4, ["cat", "dog", "trout", "truck"])
    # heights: classes 0, mammal/fish 1, animal 2, vehicle 1, root 3
    assert np.allclose(d, np.array([[0, 1, 2, 3], [1, 0, 2, 3], [2, 2, 0, 3], [3, 3, 3, 0]]) / 3)
    assert np.allclose(class_distance_matrix({0: "a", 1: "a", 2: "b"}, 3),
                       class_distance_matrix({"0": "a", "1": "a", "2": "b"}, 3))


def test_bad_hierarchies_give_clear_errors():
    with pytest.raises(InvalidInputError, match="no parent for 1 classes"):
        class_distance_matrix({"0": "a", "1": "a"}, 3)
    with pytest.raises(InvalidInputError, match="cycle"):
        class_distance_matrix({0: "a", 1: "b", "a": "b", "b": "a"}, 2)
    with pytest.raises(InvalidInputError, match="parents for"):
        class_distance_matrix(("a", "b"), 3)
    with pytest.raises(InvalidInputError, match="needed"):
        class_distance_matrix(None, 3)


def brute_at_k(dist, sim, k, ties):
    out = []
    for r in range(len(dist)):
        if ties == "stable":
            order = sorted(range(dist.shape[1]), key=lambda j: (dist[r, j], j))
            out.append(np.mean([sim[r, j] for j in order[:k]]))
        else:  # average over every order consistent with the distances
            vals = []
            for perm in itertools.permutations(range(dist.shape[1])):
                if all(dist[r, perm[a]] <= dist[r, perm[a + 1]] for a in range(len(perm) - 1)):
                    vals.append(np.mean([sim[r, j] for j in perm[:k]]))
            out.append(np.mean(vals))
    return float(np.mean(out))


@pytest.mark.parametrize("ties", ["expected", "stable"])
@pytest.mark.parametrize("k", [1, 3, 6])
def test_mean_semantic_similarity_at_k_matches_brute_force(ties, k):
    rng = np.random.default_rng(7)
    zq, zd = rng.standard_normal((4, 8)), rng.standard_normal((6, 8))
    zd[3] = zd[1]  # force ties
    lq, ld = np.array([0, 1, 2, 3]), np.array([0, 0, 1, 2, 3, 3])
    s = class_similarity_matrix(("a", "a", "b", "b"), 4)
    got = mean_semantic_similarity_at_k(encode(zq), encode(zd), lq, ld, s, k, ties=ties)
    dist = hamming_distances(encode(zq), encode(zd)).astype(int)
    assert got == pytest.approx(brute_at_k(dist, s[lq][:, ld], k, ties))


def test_item_similarity_for_multilabel_is_the_best_label_pair():
    s = class_similarity_matrix(("a", "a", "b"), 3)
    q = np.array([[1, 0, 0], [0, 0, 1]], bool)
    db = np.array([[0, 1, 0], [0, 1, 1], [0, 0, 0]], bool)
    out = item_similarity(q, db, s)
    assert np.allclose(out, [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])


def test_nearest_center_accuracy_against_brute_force():
    from hashviz.heads.centers import nearest_center_accuracy

    rng = np.random.default_rng(3)
    centers = np.where(rng.standard_normal((5, 12)) > 0, 1, -1)
    z = rng.standard_normal((60, 12))
    y = rng.integers(0, 5, 60)
    hits = 0
    for zi, yi in zip(z, y, strict=True):
        d = [int(np.sum((np.where(zi >= 0, 1, -1)) != c)) for c in centers]
        hits += int(d.index(min(d)) == yi)  # list.index: first (lowest class) on ties
    assert nearest_center_accuracy(z, y, centers) == pytest.approx(hits / 60)
    # embeddings that sit on their own centre are all right; multi-hot labels count any own class
    assert nearest_center_accuracy(centers * 0.3, np.arange(5), centers) == 1.0
    multi = np.zeros((5, 5), dtype=int)
    multi[np.arange(5), (np.arange(5) + 1) % 5] = 1
    assert nearest_center_accuracy(centers, multi, centers) == 0.0
    multi[np.arange(5), np.arange(5)] = 1
    assert nearest_center_accuracy(centers, multi, centers) == 1.0
    with pytest.raises(InvalidInputError, match="do not match"):
        nearest_center_accuracy(z[:, :8], y, centers)
