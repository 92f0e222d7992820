"""Live fits are traceable and owned: every Start is a new fit named by its settings (never overwriting an
earlier one), a fit belongs to the browser workspace that trained it (others see it only when shared, and cannot
discard it), a fit cut off mid-run shows as stopped and resumes exactly, provenance records it as the live fit it
is, and a checkpoint that cannot be written is said on the page."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from hashviz.session.live import LiveRotation, fit_label, unique_name
from hashviz.session.runs import Workspace
from tests.app.conftest import compare_long, open_app, problems

# AppTests of a whole feature: in `make test`, not in the quick `make test-fast`
pytestmark = pytest.mark.slow


def _run(home):
    ws = Workspace(home)
    return ws, ws.list_runs()[0].key


def _ticks(at, n: int) -> None:
    for _ in range(n):  # each AppTest run is one fragment tick
        at.run()


def test_fit_names_come_from_the_settings_and_repeat_with_a_number():
    a = fit_label("hq", {"loss": "l2", "lr": 0.01, "batch_size": None, "steps": 300})
    b = fit_label("hq", {"loss": "l1", "lr": 0.01, "batch_size": 256, "steps": 300})
    assert a == "HQ-l2 · lr 0.01 · full batch · 300 steps" and b == "HQ-l1 · lr 0.01 · batch 256 · 300 steps"
    assert fit_label("itq", {"n_iter": 20}) == "ITQ · 20 iterations"
    assert unique_name(a, []) == a and unique_name(a, [a]) == f"{a} #2" and unique_name(a, [a, f"{a} #2"]) == f"{a} #3"


def test_a_resumed_fit_ends_exactly_where_an_uninterrupted_one_does(filled):
    ws, key = _run(filled)
    emb = ws.load_embeddings(key, 16)
    options = {"loss": "l2", "steps": 120}
    whole = LiveRotation(emb, "hq", options, map_every=0).start()
    while whole.running:
        whole.advance(max_seconds=10)
    cut = LiveRotation(emb, "hq", options, map_every=0).start()
    cut.advance(max_steps=45)
    cut.stop()
    assert cut.n_steps == 45
    again = LiveRotation(emb, "hq", options, map_every=0).resume(cut.curve)
    assert again.replaying == 45
    while again.running:
        again.advance(max_seconds=10)
    assert again.n_steps == whole.n_steps == 120
    assert np.array_equal(again.rotation, whole.rotation)  # bit-for-bit: the fit is deterministic
    assert [r["loss"] for r in again.curve[1:]] == [r["loss"] for r in whole.curve[1:]]


def test_background_probe_scores_the_rotation_of_its_step(filled):
    """The probe mAP scored beside the fit is the mAP of the rotation at the step it is shown at."""
    from hashviz.session.live import Probe, _snapshot

    ws, key = _run(filled)
    emb = ws.load_embeddings(key, 16)
    t = LiveRotation(emb, "hq", {"steps": 60}, map_every=20, map_min_seconds=0.0, background_probe=True).start()
    rotations = {}
    while t.running:
        t.advance(max_steps=1)
        rotations[t.n_steps] = _snapshot(t.quantizer)
    scored = {r["step"]: r["map"] for r in t.curve if r.get("map") is not None}
    assert 60 in scored and len(scored) >= 3
    probe = Probe.of(emb, t.probe)
    for step, value in scored.items():
        if step in rotations:
            assert value == pytest.approx(probe.score(rotations[step]), abs=1e-12)


class Browsers:
    """Two browser sessions in one process: AppTest gives every app the same session id, so each run is made
    under its own id (what Streamlit's runtime gives two real browsers)."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch

    def use(self, sid: str):
        self.monkeypatch.setattr("hashviz.ui.sessions.session_id", lambda: sid)


def test_two_browsers_own_their_fits_and_sharing_is_explicit(filled, monkeypatch):
    from hashviz.session.jobs import SESSION_OBJECTS

    ws, key = _run(filled)
    browsers = Browsers(monkeypatch)
    browsers.use("A")
    a = open_app("pages/2_rotation.py", query={"run": key, "bits": "16"})
    browsers.use("B")
    b = open_app("pages/2_rotation.py", query={"run": key, "bits": "16"})
    me_a, me_b = a.query_params["me"], b.query_params["me"]
    assert me_a != me_b
    for sid, at in (("A", a), ("B", b)):
        browsers.use(sid)
        at.number_input(key="hv_rot_hq_steps").set_value(50_000)
        at.button(key="hv_rot_start").click().run()
        _ticks(at, 3)
    # the same settings twice in one browser: both kept
    browsers.use("A")
    a.button(key="hv_rot_stop").click().run()
    a.button(key="hv_rot_start").click().run()
    _ticks(a, 3)
    fits = ws.live_fits(key, 16)
    names_a = sorted(f.name for f in fits if f.owner == me_a)
    assert names_a == ["HQ-l2 · lr 0.01 · full batch · 50000 steps", "HQ-l2 · lr 0.01 · full batch · 50000 steps #2"]
    assert len([f for f in fits if f.owner == me_b]) == 1
    # B sees only its own fit until A shares one
    assert [f.owner for f in ws.live_fits(key, 16, me_b)] == [me_b]
    browsers.use("B2")
    cmp_b = open_app("pages/5_compare.py", query={"run": key, "bits": "16", "me": me_b})
    assert sum(q.startswith("live ") for q in compare_long(cmp_b)["quantizer"]) == 1
    browsers.use("A")
    a.toggle(key=next(t.key for t in a.toggle if t.key.startswith("hv_rot_share_"))).set_value(True).run()
    _ticks(a, 3)  # a running fit carries the flag in its next checkpoint
    browsers.use("B2")
    cmp_b = open_app("pages/5_compare.py", query={"run": key, "bits": "16", "me": me_b})
    shared = [q for q in compare_long(cmp_b)["quantizer"] if q.endswith("(shared)")]
    assert shared == ["live HQ-l2 · lr 0.01 · full batch · 50000 steps #2 (shared)"]
    browsers.use("A")
    a.button(key="hv_rot_stop").click().run()
    browsers.use("B")
    b.button(key="hv_rot_stop").click().run()
    # B's discard deletes B's fit only; B cannot discard A's
    b.button(key="hv_rot_discard").click().run()
    assert problems(b) == []
    assert sorted(f.owner for f in ws.live_fits(key, 16)) == [me_a, me_a]
    with pytest.raises(Exception, match="belongs to another session"):
        ws.delete_live_fit(key, 16, fits[0].fit_id if fits[0].owner == me_a else fits[1].fit_id, me_b)
    for f in ws.live_fits(key, 16):
        ws.delete_live_fit(key, 16, f.fit_id, f.owner)
    SESSION_OBJECTS.prune(lambda s: False)


def test_a_fit_cut_off_mid_run_shows_as_stopped_and_resumes(filled):
    from hashviz.session.jobs import SESSION_OBJECTS

    ws, key = _run(filled)
    at = open_app("pages/2_rotation.py", query={"run": key, "bits": "16"})
    me = at.query_params["me"]
    at.number_input(key="hv_rot_hq_steps").set_value(50_000)  # not ended by 9 ticks on any machine
    at.button(key="hv_rot_start").click().run()
    _ticks(at, 3)
    (fit,) = [f for f in ws.live_fits(key, 16, me) if f.owner == me]
    assert fit.status == "running" and fit.step > 0  # its last checkpoint was written while it ran
    SESSION_OBJECTS.prune(lambda s: False)  # the browser closed: nothing trains it any more
    again = open_app("pages/2_rotation.py", query={"run": key, "bits": "16", "me": me})
    status = {m.label: m.value for m in again.metric}["status"]
    assert status == f"stopped at step {fit.step}"
    assert not again.button(key="hv_rot_resume").disabled
    again.button(key="hv_rot_resume").click().run()
    _ticks(again, 6)
    steps = int({m.label: m.value for m in again.metric}["step"])
    assert steps > fit.step  # replayed, then went on
    again.button(key="hv_rot_stop").click().run()
    assert ws.live_fits(key, 16, me)[0].step == steps  # Stop saved where it stood
    again.button(key="hv_rot_discard").click().run()
    SESSION_OBJECTS.prune(lambda s: False)


def test_provenance_records_a_live_fit_as_what_it_is(filled):
    from hashviz.session import compare
    from hashviz.session.jobs import SESSION_OBJECTS

    ws, key = _run(filled)
    at = open_app("pages/2_rotation.py", query={"run": key, "bits": "16"})
    me = at.query_params["me"]
    at.number_input(key="hv_rot_hq_lr").set_value(0.02)
    at.number_input(key="hv_rot_hq_steps").set_value(40)
    at.button(key="hv_rot_start").click().run()
    for _ in range(200):  # a condition, not a count: each tick fits for a fraction of a second
        if {m.label: m.value for m in at.metric}["status"] == "done":
            break
        at.run()
    assert {m.label: m.value for m in at.metric}["status"] == "done"
    (fit,) = ws.live_fits(key, 16, me)
    saved = ws.load_live_fit(key, 16, fit.fit_id)
    from hashviz.quantize import make_quantizer
    from hashviz.session.runs import live_fitted

    f = live_fitted(saved, make_quantizer("sign", 16).set_rotation(saved["rotation"], saved["mean"]))
    prov = compare.provenance(ws.get_run(key).to_dict(), {"ties": "expected"}, {f.id: f})
    rec = prov["quantizers"][f"live:{fit.fit_id}"]
    assert rec["quantizer"] == "hq" and rec["class"] == "HouseholderQuantizer"
    assert rec["params"] == {"loss": "l2", "lr": 0.02, "batch_size": None, "steps": 40}
    assert rec["steps_run"] == 40 and rec["status"] == "done" and rec["source"].startswith("live fit")
    ws.delete_live_fit(key, 16, fit.fit_id, me)
    SESSION_OBJECTS.prune(lambda s: False)


def test_a_checkpoint_that_cannot_be_written_is_said_on_the_page(filled, tmp_path, monkeypatch):
    from hashviz.session.jobs import SESSION_OBJECTS

    home = tmp_path / "home"
    shutil.copytree(filled, home)
    monkeypatch.setenv("HASHVIZ_HOME", str(home))
    ws, key = _run(home)
    at = open_app("pages/2_rotation.py", query={"run": key, "bits": "16"})
    at.number_input(key="hv_rot_hq_steps").set_value(50_000)
    at.button(key="hv_rot_start").click().run()
    _ticks(at, 2)
    stage = home / "runs" / "live_rotations"
    shutil.rmtree(stage)
    stage.write_text("a file where the live fits' folder goes: checkpoints cannot be written")
    _ticks(at, 12)  # at least one more checkpoint attempt (about one a second of fitting)
    warnings = " ".join(w.value for w in at.warning)
    assert "This fit is not being saved" in warnings and "cannot write" in warnings, warnings
    at.button(key="hv_rot_stop").click().run()
    SESSION_OBJECTS.prune(lambda s: False)
