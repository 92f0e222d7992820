"""The playground's figures carry the toy's data: rotated points, the codes they snap to, HQ's mirrors, and an
animation whose frames run from the quantizer's start (HQ: −I) to its learned rotation."""

from __future__ import annotations

import numpy as np
import pytest

from hashviz.teach import toy as T
from hashviz.viz import toy as V


@pytest.fixture(scope="module")
def toy2():
    return T.make_toy(T.ToySpec(n_per_class=25))


@pytest.fixture(scope="module")
def hq2(toy2):
    return T.learn(toy2, "hq")


def _class_points(traces, toy) -> np.ndarray:
    """Rows of the class traces put back in the toy's row order."""
    out = np.zeros((toy.n, toy.n_bits))
    for c, name in enumerate(toy.class_names):
        t = next(t for t in traces if t.name == name)
        cols = [t.x, t.y] + ([t.z] if toy.n_bits == 3 else [])
        out[toy.labels == c] = np.stack([np.asarray(v, dtype=float) for v in cols], axis=1)
    return out


def test_scatter_shows_the_rotated_points_and_the_corners_they_snap_to(toy2):
    R = T.rotation_2d(-20)
    U = toy2.X.astype(np.float64) @ R
    fig = V.toy_scatter(toy2, U)
    assert np.allclose(_class_points(fig.data, toy2), U)
    corners = next(t for t in fig.data if t.name.startswith("corner"))
    counts = T.score(toy2, R).corner_counts
    for x, y, text in zip(corners.x, corners.y, corners.text):
        code = ("1" if x > 0 else "0") + ("1" if y > 0 else "0")
        assert text == f"{code} ({counts[code]})"
    # each point's hover names its own code
    t0 = next(t for t in fig.data if t.name == "class 0")
    rows = np.flatnonzero(toy2.labels == 0)
    assert [c[0] for c in t0.customdata] == T.code_strings(U[rows] >= 0)
    # the snap segments join every point to the corner of its code
    snaps = next(t for t in fig.data if t.name == "snaps to")
    xs, ys = np.asarray(snaps.x, dtype=float), np.asarray(snaps.y, dtype=float)
    assert np.allclose(xs[0::3], U[:, 0]) and np.allclose(xs[1::3], np.where(U[:, 0] >= 0, 1, -1))
    assert np.allclose(ys[1::3], np.where(U[:, 1] >= 0, 1, -1)) and np.isnan(xs[2::3]).all()
    assert all(t.type == "scatter" for t in fig.data)                     # SVG, so it can animate


def test_mirrors_are_orthogonal_to_the_householder_vectors(toy2, hq2):
    V_last = hq2.vectors[-1]
    fig = V.toy_scatter(toy2, toy2.X @ hq2.rotation, vectors=V_last)
    for i in range(2):
        m = next(t for t in fig.data if t.name == f"mirror of H{i + 1}")
        d = np.array([m.x[1] - m.x[0], m.y[1] - m.y[0]])
        assert abs(d @ V_last[:, i]) < 1e-9 * np.linalg.norm(d) * np.linalg.norm(V_last[:, i])
        assert np.allclose([m.x[0] + m.x[1], m.y[0] + m.y[1]], 0)            # through the origin


def test_animation_runs_from_minus_identity_to_the_learned_rotation(toy2, hq2):
    fig = V.toy_animation(toy2, hq2, max_frames=30)
    frames = fig.frames
    assert 2 <= len(frames) <= 30
    steps = [int(f.name) for f in frames]
    assert steps[0] == 0 and steps[-1] == int(hq2.steps[-1]) and steps == sorted(steps)
    X = toy2.X.astype(np.float64)
    assert np.allclose(_class_points(frames[0].data, toy2), -X)              # R = −I at step 0
    assert np.allclose(_class_points(frames[-1].data, toy2), X @ hq2.rotation)
    assert np.allclose(_class_points(fig.data, toy2), -X)                    # the figure opens on the first frame
    k = int(np.flatnonzero(hq2.steps == steps[-1])[0])
    assert f"quantization error {hq2.errors[k]:.4f}" in frames[-1].layout.title.text
    assert f"mAP {hq2.map:.3f}" in frames[-1].layout.title.text
    # every frame updates the same (non-static) traces, mirrors included
    n = len(fig.data)
    assert all(list(f.traces) == list(range(1, n)) for f in frames)
    assert [t.name for t in frames[-1].data][-2:] == ["mirror of H1", "mirror of H2"]
    assert [s["label"] for s in fig.layout.sliders[0].steps] == [f.name for f in frames]
    assert all(t.type == "scatter" for f in frames for t in f.data)


def test_animation_in_3d_redraws_and_keeps_its_planes():
    toy = T.make_toy(T.ToySpec(n_bits=3, n_classes=8, n_per_class=10))
    hq = T.learn(toy, "hq")
    fig = V.toy_animation(toy, hq, max_frames=10)
    assert np.allclose(_class_points(fig.frames[0].data, toy), -toy.X.astype(np.float64))
    assert np.allclose(_class_points(fig.frames[-1].data, toy), toy.X.astype(np.float64) @ hq.rotation)
    assert sum(t.type == "mesh3d" for t in fig.frames[-1].data) == 3
    play = fig.layout.updatemenus[0].buttons[0].args[1]
    assert play["frame"]["redraw"] is True


def test_landscape_marks_every_equivalent_angle(toy2, hq2):
    g = T.grid_search_2d(toy2, 5.0)
    theta = T.angle_2d(hq2.rotation)
    fig = V.toy_landscape(g.angles, g.errors, g.maps, marks={"HQ": theta}, hand=12.0)
    xs = sorted(s.x0 for s in fig.layout.shapes if s.line.dash == "dash")
    assert len(xs) == 4 and np.allclose(np.diff(xs), 90.0)
    assert any(abs(T.symmetric_angle(x - theta)) < 1e-9 for x in xs)
    assert any(s.x0 == 12.0 for s in fig.layout.shapes)
    err = fig.data[0]
    assert np.all(np.diff(err.x) > 0) and -180 <= min(err.x) and max(err.x) < 180
    curves = V.toy_curves(hq2, best_error=g.best_error)
    assert np.allclose(curves.data[0].y, hq2.errors) and np.allclose(curves.data[1].y, hq2.maps)


def test_figures_pass_plotly_validation(toy2, hq2):
    """The builders skip plotly's validation for speed; every property they set must still be valid."""
    import plotly.graph_objects as go

    toy3 = T.make_toy(T.ToySpec(n_bits=3, n_classes=8, n_per_class=10))
    hq3 = T.learn(toy3, "hq")
    g = T.grid_search_2d(toy2, 10.0)
    figures = [V.toy_scatter(toy2, toy2.X, vectors=hq2.vectors[-1], title="t"), V.toy_animation(toy2, hq2),
               V.toy_scatter(toy3, toy3.X, vectors=hq3.vectors[-1]), V.toy_animation(toy3, hq3, max_frames=5),
               V.toy_landscape(g.angles, g.errors, g.maps, marks={"HQ": 10.0}, hand=0.0), V.toy_curves(hq2)]
    for fig in figures:
        go.Figure(fig.to_dict())           # raises on any invalid property
