"""The Playground page through AppTest: it needs no prepared run, renders for 2 and 3 bits, the hand slider moves
the error and the codes, the learned HQ rotation is at least as good as the best degree of a 1° grid, and the
animation runs from R = −I to the learned rotation."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest

from hashviz.teach import toy as T
from tests.app.conftest import open_app, problems

# AppTests of a whole feature: in `make test`, not in the quick `make test-fast`
pytestmark = pytest.mark.slow

PAGE = "pages/0_playground.py"


def _metric(at, label: str) -> float:
    return float(next(m.value for m in at.metric if m.label == label))


def _codes(at) -> dict:
    df = next(d.value for d in at.dataframe if "points on this corner" in d.value.columns)
    return dict(zip(df["code"], df["points on this corner"]))


def _chart(at, key: str) -> dict:
    return json.loads(next(c.proto.spec for c in at.get("plotly_chart") if c.proto.id.endswith(key)))


def _arr(v) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata"(, "shape")} (plotly ≥ 6)."""
    if isinstance(v, dict):
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return a.reshape([int(n) for n in str(v["shape"]).split(",")]) if "shape" in v else a
    return np.asarray(v, dtype=float)


def _xy(trace) -> np.ndarray:
    return np.c_[_arr(trace["x"]), _arr(trace["y"])]


def _literal_error(X: np.ndarray, R: np.ndarray) -> float:
    U = np.asarray(X, dtype=np.float64) @ R
    U = U * math.sqrt(U.shape[1]) / np.linalg.norm(U, axis=1, keepdims=True)
    return float(np.mean((np.abs(U) - 1) ** 2))


@pytest.fixture
def playground(fresh):
    at = open_app(PAGE)
    assert problems(at) == []
    return at


def test_renders_for_two_bits_without_a_run(playground):
    at = playground
    assert at.title[0].value == "Playground" and len(at.markdown[0].value.split(". ")) >= 2
    assert [s.key for s in at.slider if s.key.startswith("hv_toy_") and s.key not in
            ("hv_toy_classes", "hv_toy_spread", "hv_toy_offset")] == ["hv_toy_theta"]
    assert set(_codes(at)) == {"00", "01", "10", "11"} and sum(_codes(at).values()) == 240
    spec = _chart(at, "hv_toy_scatter")
    assert spec["data"][0]["type"] == "scatter"
    text = "\n".join(m.value for m in at.markdown)
    assert "Where the learned rotations land" in text and "What you see" in text


def test_renders_for_three_bits(playground):
    at = playground
    at.radio(key="hv_toy_bits").set_value(3).run()
    assert problems(at) == []
    assert {"hv_toy_yaw", "hv_toy_pitch", "hv_toy_roll"} <= {s.key for s in at.slider}
    codes = _codes(at)
    assert len(codes) == 8 and all(len(c) == 3 for c in codes) and sum(codes.values()) == 240
    assert any(t["type"] == "scatter3d" for t in _chart(at, "hv_toy_scatter")["data"])
    assert len(_chart(at, "hv_toy_animation")["frames"]) >= 2


def test_moving_the_angle_changes_error_and_codes(playground):
    at = playground
    before_error, before_codes = _metric(at, "quantization error"), _codes(at)
    at.slider(key="hv_toy_theta").set_value(-30.0).run()
    after_error, after_codes = _metric(at, "quantization error"), _codes(at)
    assert after_error < before_error and after_codes != before_codes
    # the number shown is the library's definition for the toy the page drew, at that angle
    toy = T.make_toy(T.ToySpec())
    assert after_error == pytest.approx(_literal_error(toy.X[toy.train], T.rotation_2d(-30.0)), abs=5e-5)
    scatter = _chart(at, "hv_toy_scatter")
    pts = next(t for t in scatter["data"] if t["name"] == "class 0")
    rows = toy.labels == 0
    assert np.allclose(_xy(pts), toy.X[rows].astype(np.float64) @ T.rotation_2d(-30.0))


def test_learned_hq_reaches_the_best_degree_and_the_animation_runs_from_minus_identity(playground):
    at = playground
    toy = T.make_toy(T.ToySpec())
    grid = [_literal_error(toy.X[toy.train], T.rotation_2d(theta)) for theta in range(360)]
    table = next(d.value for d in at.dataframe if "rotation" in d.value.columns)
    hq_error = float(table.loc[table["rotation"].str.startswith("HQ"), "quantization error"].iloc[0])
    grid_error = float(table.loc[table["rotation"].str.startswith("best of"), "quantization error"].iloc[0])
    assert grid_error == pytest.approx(min(grid), abs=1e-6)
    assert hq_error <= min(grid) + 5e-7            # the table shows 6 decimals
    # the animation: frame 0 is R = −I (HQ's start), the last frame the learned rotation
    anim = _chart(at, "hv_toy_animation")
    frames = anim["frames"]
    assert frames[0]["name"] == "0" and int(frames[-1]["name"]) == 200
    hq = T.learn(toy, "hq")
    for frame, R in ((frames[0], -np.eye(2)), (frames[-1], hq.rotation)):
        pts = next(t for t in frame["data"] if t["name"] == "class 1")
        assert np.allclose(_xy(pts), toy.X[toy.labels == 1].astype(np.float64) @ R)
    assert _literal_error(toy.X[toy.train], hq.rotation) == pytest.approx(hq_error, abs=5e-7)
    # "put the hand sliders on HQ's rotation": the hand view then shows HQ's error
    next(b for b in at.button if b.key == "hv_toy_jump").click().run()
    assert problems(at) == []
    assert at.slider(key="hv_toy_theta").value == pytest.approx(round(T.angle_2d(hq.rotation), 1))
    assert _metric(at, "quantization error") == pytest.approx(hq_error, abs=2e-4)


def test_other_learners_animate_from_their_own_start(playground):
    at = playground
    at.radio(key="hv_toy_learner").set_value("random").run()
    assert problems(at) == []
    frames = _chart(at, "hv_toy_animation")["frames"]
    toy = T.make_toy(T.ToySpec())
    pts = next(t for t in frames[0]["data"] if t["name"] == "class 0")
    assert np.allclose(_xy(pts), toy.X[toy.labels == 0])      # random search starts at I
    assert "Random search starts at R = I" in "\n".join(c.value for c in at.caption)
