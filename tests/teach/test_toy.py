"""The playground's toy: seeded data, rotation conventions, the library's error and mAP, the grid searches and
the real quantizers' paths — checked against literal definitions written here."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from hashviz.errors import HashvizError
from hashviz.teach import toy as T


def brute_error(X: np.ndarray, R: np.ndarray) -> float:
    """DESIGN.md's quantization error, literally: rows of X R rescaled to norm √n, mean over entries of
    (|u| − 1)²."""
    total, count = 0.0, 0
    for x in np.asarray(X, dtype=np.float64):
        u = x @ R
        u = u * math.sqrt(len(u)) / math.sqrt(sum(v * v for v in u))
        for v in u:
            total += (abs(v) - 1.0) ** 2
            count += 1
    return total / count


def householder_product(V: np.ndarray) -> np.ndarray:
    R = np.eye(V.shape[0])
    for i in range(V.shape[1]):
        v = V[:, i:i + 1]
        R = R @ (np.eye(V.shape[0]) - 2 * v @ v.T / float((v.T @ v)[0, 0]))
    return R


def signed_permutations(n: int):
    for perm in itertools.permutations(range(n)):
        for signs in itertools.product((1.0, -1.0), repeat=n):
            P = np.zeros((n, n))
            P[list(range(n)), list(perm)] = signs
            yield P


def test_toy_is_seeded_and_shaped_as_specified():
    spec = T.ToySpec(n_bits=2, n_classes=3, spread=0.2, offset=20, n_per_class=40, query_share=0.25, seed=5)
    a, b = T.make_toy(spec), T.make_toy(spec)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.split, b.split)
    assert not np.array_equal(a.X, T.make_toy(T.ToySpec(n_bits=2, n_classes=3, spread=0.2, offset=20,
                                                        n_per_class=40, query_share=0.25, seed=6)).X)
    assert a.X.shape == (120, 2) and a.X.dtype == np.float32
    assert np.bincount(a.labels).tolist() == [40, 40, 40]
    assert [int((a.split[a.labels == c] == T.QUERY).sum()) for c in range(3)] == [10, 10, 10]
    assert np.array_equal(a.train, a.database) and len(a.query) + len(a.database) == a.n
    # the centres are hypercube corners turned by the planted rotation, and the clusters sit around them
    assert np.allclose(a.centres, T.CORNERS[2][:3] @ T.rotation_2d(20))
    for c in range(3):
        assert np.linalg.norm(a.X[a.labels == c].mean(axis=0) - a.centres[c]) < 0.1


def test_bad_settings_are_refused_with_a_hint():
    for spec in (T.ToySpec(n_bits=4), T.ToySpec(n_bits=2, n_classes=5), T.ToySpec(spread=-1),
                 T.ToySpec(n_per_class=2), T.ToySpec(offset=float("nan"))):
        with pytest.raises(HashvizError) as e:
            T.make_toy(spec)
        assert e.value.message and e.value.hint


def test_rotation_conventions():
    # X @ R(θ) turns counter-clockwise: e1 at 90° becomes e2
    assert np.allclose(np.array([1.0, 0.0]) @ T.rotation_2d(90), [0.0, 1.0])
    assert np.allclose(T.rotation_2d(180), -np.eye(2))
    assert T.angle_2d(-np.eye(2)) == pytest.approx(-180.0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        yaw, pitch, roll = rng.uniform(-179, 179), rng.uniform(-89, 89), rng.uniform(-179, 179)
        R = T.rotation_3d(yaw, pitch, roll)
        assert np.allclose(R.T @ R, np.eye(3)) and np.linalg.det(R) == pytest.approx(1.0)
        assert np.allclose(T.rotation_3d(*T.euler_3d(R)), R)
        assert np.allclose(T.rotation_3d(*T.euler_3d(-R)), R)       # the reflection −R maps to R
        assert np.allclose(T.rotations_3d(np.array([[yaw, pitch, roll]]))[0], R)
        theta = rng.uniform(-180, 180)
        assert T.angle_2d(T.rotation_2d(theta)) == pytest.approx(theta)
        F = T.rotation_2d(theta) @ np.diag([1.0, -1.0])              # a reflection: the rotation it stands for
        assert T.angle_2d(F) == pytest.approx(theta)
    # roll about x, then pitch about y, then yaw about z
    assert np.allclose(np.array([0.0, 1.0, 0.0]) @ T.rotation_3d(0, 0, 90), [0, 0, 1])
    assert np.allclose(np.array([1.0, 0.0, 0.0]) @ T.rotation_3d(90, 0, 0), [0, 1, 0])
    axis = T.AXIS_3D
    assert np.allclose(axis @ T.axis_rotation(axis, 40), axis)       # the planted turn keeps its axis
    assert T.symmetric_angle(150.0) == pytest.approx(-30.0) and T.symmetric_angle(44.0) == pytest.approx(44.0)


def test_error_and_map_are_the_library_definitions():
    toy = T.make_toy(T.ToySpec(n_bits=2, n_classes=4, spread=0.3, offset=30, n_per_class=20))
    R = T.rotation_2d(-12.0)
    assert T.toy_error(toy, R) == pytest.approx(brute_error(toy.X[toy.train], R), rel=1e-9)
    s = T.score(toy, R)
    assert s.quantization_error == pytest.approx(brute_error(toy.X[toy.train], R), rel=1e-9)
    assert np.array_equal(s.bits, (toy.X.astype(np.float64) @ R) >= 0)
    # every corner is listed, with the number of points whose code names it
    expected = {"".join("1" if v >= 0 else "0" for v in c): 0 for c in itertools.product((-1, 1), repeat=2)}
    for row in s.bits:
        expected["".join("1" if b else "0" for b in row)] += 1
    assert s.corner_counts == expected and sum(s.corner_counts.values()) == toy.n
    assert s.map_pessimistic <= s.map <= s.map_optimistic
    # known answer: points exactly on the sign-aligned corners, one class per corner → every query is perfect
    exact = T.make_toy(T.ToySpec(n_bits=3, n_classes=8, spread=0.0, offset=0.0, n_per_class=10))
    assert T.toy_map(exact, np.eye(3)) == pytest.approx(1.0)
    assert T.toy_error(exact, np.eye(3)) == pytest.approx(0.0, abs=1e-12)


def test_signed_permutations_change_neither_error_nor_map():
    """Why the searches may skip reflections and repeat every 90°: R and R·S (S a signed permutation) give the
    same error and the same mAP."""
    for n_bits in (2, 3):
        toy = T.make_toy(T.ToySpec(n_bits=n_bits, n_classes=4, spread=0.4, offset=25, n_per_class=15))
        R = T.rotation_2d(17.0) if n_bits == 2 else T.rotation_3d(10, 20, 30)
        e, m = T.toy_error(toy, R), T.toy_map(toy, R)
        for S in signed_permutations(n_bits):
            assert T.toy_error(toy, R @ S) == pytest.approx(e, rel=1e-9)
            assert T.toy_map(toy, R @ S) == pytest.approx(m, rel=1e-12)


def test_grid_search_2d_is_the_literal_loop():
    toy = T.make_toy(T.ToySpec(n_per_class=15, seed=3))
    g = T.grid_search_2d(toy, 5.0)
    literal = [brute_error(toy.X[toy.train], T.rotation_2d(theta)) for theta in range(0, 360, 5)]
    assert np.allclose(g.errors, literal, rtol=1e-9)
    assert g.best_error == pytest.approx(min(literal)) and g.best_angle == 5.0 * int(np.argmin(literal))
    assert np.allclose(g.maps, [T.toy_map(toy, T.rotation_2d(theta)) for theta in range(0, 360, 5)])
    assert g.angles.tolist() == list(range(0, 360, 5))


def test_grid_finds_the_planted_rotation_back():
    """Tight clusters turned by 30°: the best rotation turns them back by 30° (mod 90°)."""
    toy = T.make_toy(T.ToySpec(n_bits=2, n_classes=4, spread=0.05, offset=30))
    g = T.grid_search_2d(toy, 1.0, with_map=False)
    assert abs(T.symmetric_angle(g.best_angle + 30.0)) <= 1.0
    g3 = T.grid_search_3d(T.make_toy(T.ToySpec(n_bits=3, n_classes=8, spread=0.05, offset=30)), 10.0)
    assert len(g3.errors) == 36 * 19 * 36
    assert g3.best_error == pytest.approx(g3.errors.min())
    assert T.toy_error(T.make_toy(T.ToySpec(n_bits=3, n_classes=8, spread=0.05, offset=30)), g3.best_rotation) \
        == pytest.approx(g3.best_error)


@pytest.mark.parametrize("spec", [T.ToySpec(), T.ToySpec(offset=10, spread=0.2, seed=1),
                                  T.ToySpec(n_classes=3, offset=40, spread=0.4, seed=2)])
def test_learned_hq_is_no_worse_than_the_best_degree(spec):
    """The acceptance check: the real HQ quantizer on the 2-D toy reaches a quantization error no higher than the
    best angle of a 1° grid over every rotation (reflections included by symmetry), measured by the literal
    definition."""
    toy = T.make_toy(spec)
    literal = min(brute_error(toy.X[toy.train], T.rotation_2d(theta)) for theta in range(360))
    hq = T.learn(toy, "hq")
    assert brute_error(toy.X[toy.train], hq.rotation) <= literal
    assert hq.error == pytest.approx(brute_error(toy.X[toy.train], hq.rotation), rel=1e-9)


def test_learned_paths_start_where_each_quantizer_starts():
    toy = T.make_toy(T.ToySpec(n_per_class=20))
    hq = T.learn(toy, "hq")
    assert np.allclose(hq.rotations[0], -np.eye(2))                 # v_i = e_i: R = −I, a turn by 180°
    assert hq.steps.tolist() == list(range(201))
    for R, V in zip(hq.rotations, hq.vectors):
        assert np.allclose(R, householder_product(V), atol=1e-6)    # R = H1 H2 from the vectors of that step
        assert np.linalg.det(R) == pytest.approx(1.0)               # two reflections: a proper rotation
    assert hq.errors == pytest.approx([T.toy_error(toy, R) for R in hq.rotations], rel=1e-9)
    assert hq.map == pytest.approx(T.toy_map(toy, hq.rotation)) and hq.map_steps[-1] == hq.steps[-1]
    assert hq.map_steps[0] == 0 and len(hq.map_steps) <= 100
    random = T.learn(toy, "random")
    assert np.allclose(random.rotations[0], np.eye(2)) and len(random.steps) == 801
    itq = T.learn(toy, "itq")
    assert len(itq.steps) == 51 and itq.errors[-1] <= itq.errors[1] + 1e-9
    hq3 = T.learn(T.make_toy(T.ToySpec(n_bits=3, n_classes=8, n_per_class=15)), "hq")
    assert np.allclose(hq3.rotations[0], -np.eye(3)) and np.linalg.det(hq3.rotation) == pytest.approx(-1.0)
    with pytest.raises(HashvizError):
        T.learn(toy, "sign")


def test_hq_beats_the_coarse_3d_grid():
    toy = T.make_toy(T.ToySpec(n_bits=3, n_classes=8))
    assert T.learn(toy, "hq").error <= T.grid_search_3d(toy, 10.0).best_error


def test_mirror_directions_are_unit_normals_of_the_reflections():
    V = np.array([[3.0, 1.0], [4.0, -2.0]])
    D = T.mirror_directions(V)
    assert np.allclose(np.linalg.norm(D, axis=0), 1.0)
    for i in range(2):
        H = np.eye(2) - 2 * np.outer(D[:, i], D[:, i])
        assert np.allclose(D[:, i] @ H, -D[:, i])                    # the normal flips
        line = np.array([-D[1, i], D[0, i]])
        assert np.allclose(line @ H, line)                           # the mirror line stays
