"""The Penalty vs rotation page and its session logic: stored sweeps of the current dataset are shown (figure,
the sentence computed from the cells, the cells and their times), a new sweep runs in the background and is
stored, bad input is refused before anything starts."""

from __future__ import annotations

import math

import pytest

from hashviz.errors import InvalidInputError
from hashviz.session import penalty as P
from tests.app.conftest import open_app, problems

# AppTests of a whole feature: in `make test`, not in the quick `make test-fast`
pytestmark = pytest.mark.slow

LAMBDAS = (0.0, 1.0)
FAST = {"epochs": 1}


@pytest.fixture(scope="module")
def sweep_home(tmp_path_factory):
    """A home holding one small sweep (digits, dpsh, λ 0 and 1, 16 bits, 1 epoch) — its λ runs are the runs."""
    from hashviz.penalty import penalty_sweep

    home = tmp_path_factory.mktemp("sweep_home")
    sw = penalty_sweep("dpsh", LAMBDAS, (16,), dataset="digits", head_options=FAST, store=home)
    return home, sw


@pytest.fixture
def swept(sweep_home, monkeypatch, app_env):
    monkeypatch.setenv("HASHVIZ_HOME", str(sweep_home[0]))
    return sweep_home


def _texts(at) -> str:
    return " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)


def test_the_page_shows_the_stored_sweep_and_its_sentence_from_the_numbers(swept):
    home, sw = swept
    at = open_app("pages/7_penalty.py")
    assert problems(at) == []
    assert at.selectbox(key="hv_penalty_sweep").value == sw.key and at.query_params["sweep"] == sw.key
    hq, sign1 = sw.cell(0.0, 16, "hq").map, sw.cell(1.0, 16, "sign").map
    sentence = next(m.value for m in at.markdown if m.value.startswith("The HQ paper claims"))
    assert f"{hq:.4f} mAP@all (hashviz)" in sentence and f"{sign1:.4f}" in sentence
    assert ("does not agree" in sentence) == (hq < sign1) and f"{hq - sign1:+.4f}" in sentence
    cells = at.dataframe[0].value
    assert list(cells["lambda_q"]) == list(LAMBDAS)
    assert list(cells["HQ mAP@all (hashviz)"]) == [sw.cell(lam, 16, "hq").map for lam in LAMBDAS]
    assert list(cells["sign QE"]) == [sw.cell(lam, 16, "sign").quantization_error for lam in LAMBDAS]
    assert all(s > 0 for s in cells["head training (s)"])
    text = _texts(at)
    assert "Each cell: a head trains in about" in text and "so this sweep needs about" in text
    fig = at.get("plotly_chart")[0].proto.spec
    assert "lambda_q = 0 + HQ" in fig and "mAP@all (hashviz)" in fig


def test_a_sweep_started_on_the_page_runs_in_the_background_and_is_shown(swept):
    from hashviz.penalty import stored_sweeps
    from hashviz.session.jobs import SWEEP_JOBS

    home, sw = swept
    at = open_app("pages/7_penalty.py")
    at.text_input(key="hv_sweep_lambdas").set_value("0, 3").run()
    at.multiselect(key="hv_sweep_bits").set_value([16]).run()
    at.number_input(key="hv_sweep_epochs").set_value(1).run()
    at.button(key="hv_sweep_start").click().run()
    assert problems(at) == []
    job = SWEEP_JOBS.get(at.session_state["hv_sweep_job"]).join(300)
    assert job.status == "done" and job.lambdas_done == 2
    assert any(stage.startswith("λ = 3 · heads") for stage in job.stages)   # only λ = 3 was trained
    assert not any(stage.startswith("λ = 0 · heads") for stage in job.stages)
    at.run()
    at.run()  # the progress fragment's rerun once the job has ended
    assert problems(at) == []
    new = job.result
    assert at.selectbox(key="hv_penalty_sweep").value == new.key != sw.key
    assert {s.key for s in stored_sweeps(home)} == {sw.key, new.key}
    assert list(at.dataframe[0].value["lambda_q"]) == [0.0, 3.0]
    # λ = 0 was read back from the store: the same head, the same cell
    assert new.cell(0.0, 16, "hq").map == sw.cell(0.0, 16, "hq").map


def test_bad_sweep_input_is_refused_before_anything_starts(swept):
    home, _ = swept
    at = open_app("pages/7_penalty.py")
    at.text_input(key="hv_sweep_lambdas").set_value("0, -1").run()
    assert "λ must be finite and ≥ 0" in " ".join(e.value for e in at.error)
    assert at.button(key="hv_sweep_start").disabled
    for text, message in (("0, x", "not one"), ("", "no λ values"), (" ".join(map(str, range(13))), "at most 12")):
        with pytest.raises(InvalidInputError, match=message):
            P.parse_lambdas(text)
    assert P.parse_lambdas("0, 0.01; 1 1") == (0.0, 0.01, 1.0)


def test_sweep_params_follow_the_run_and_refuse_what_cannot_be_swept(swept):
    from hashviz.session.runs import Workspace

    home, sw = swept
    run = Workspace(home).get_run(sw.run_keys[0])
    params = P.sweep_params(run, "csq", (0, 1), (32, 16), protocol="deephash", epochs=3)
    assert params == {"head": "csq", "lambdas": [0.0, 1.0], "bit_lengths": [32, 16], "dataset": "digits",
                      "backbone": "mnist_cnn", "dataset_options": {}, "seed": 0, "protocol": "deephash",
                      "head_options": {"epochs": 3}}
    with pytest.raises(InvalidInputError, match="no quantization weight"):
        P.sweep_params(run, "cel", (0, 1), (16,))
    with pytest.raises(InvalidInputError, match="8..128"):
        P.sweep_params(run, "dpsh", (0, 1), (4,))
    from dataclasses import replace

    with pytest.raises(InvalidInputError, match="embeddings file"):
        P.sweep_params(replace(run, dataset="embeddings"), "dpsh", (0, 1), (16,))


def test_cell_rows_times_and_provenance_are_the_sweeps_numbers(swept):
    _, sw = swept
    rows = P.cell_rows(sw, 16)
    for row, lam in zip(rows, LAMBDAS):
        for q, label in (("sign", "sign"), ("itq", "ITQ"), ("hq", "HQ")):
            c = sw.cell(lam, 16, q)
            assert row[f"{label} mAP@all (hashviz)"] == c.map and row[f"{label} fit + scoring (s)"] == c.cell_seconds
    times = P.cell_times([sw])
    heads = [sw.cell(lam, 16, "sign").head_train_seconds for lam in LAMBDAS]
    assert times.n_heads == 2 and times.head_seconds == pytest.approx(sum(heads) / 2)
    assert times.n_cells == 6 and times.quantizer_seconds == pytest.approx(
        sum(c.cell_seconds for c in sw.cells) / 6)
    assert times.estimate(3, 2, 3) == pytest.approx(6 * (times.head_seconds + 3 * times.quantizer_seconds))
    assert P.cell_times([sw], head="csq") is None and P.cell_times([sw], epochs=5) is None
    prov = P.provenance(sw)
    assert prov["runs"] == {"0": sw.run_keys[0], "1": sw.run_keys[1]} and prov["protocol"] == "hashviz"
    assert prov["map_label"] == "mAP@all (hashviz)" and prov["head_options"] == FAST
    assert prov["bit_lengths"] == [16] and "bits" not in prov


def test_time_left_is_extrapolated_from_the_finished_lambdas():
    from hashviz.session.jobs import SweepJob

    job = SweepJob({"lambdas": [0, 1, 2, 3]})        # not started: the estimate is pure arithmetic
    job.started = 100.0
    assert job.remaining_seconds(now=101.0) is None   # nothing finished yet
    job._sweep_progress(0.0, "heads", 1, 10)
    job.lambda_started[0.0] = 100.0
    job._sweep_progress(1.0, "heads", 1, 10)
    job.lambda_started[1.0] = 130.0                   # λ = 0 took 30 s
    assert job.lambdas_done == 1 and job.current == 1.0
    assert job.remaining_seconds(now=140.0) == pytest.approx(30 * 3 - 10)
    assert job.remaining_seconds(now=300.0) == 0.0
    assert math.isclose(job.remaining_seconds(now=130.0), 90.0)



def test_a_stopped_sweep_job_says_so_and_stores_nothing(swept):
    from hashviz.errors import StoppedError
    from hashviz.penalty import stored_sweeps
    from hashviz.session.jobs import SweepJob
    from hashviz.session.runs import Workspace

    home, sw = swept
    run = Workspace(home).get_run(sw.run_keys[0])
    job = SweepJob(P.sweep_params(run, "dpsh", (0, 7), (16,), epochs=1), home=str(home))
    job.stop()                                       # Stop pressed before the first batch
    job.start().join(300)
    assert job.status == "stopped" and isinstance(job.error, StoppedError) and job.result is None
    assert all(7.0 not in s.lambdas for s in stored_sweeps(home))


def test_an_embeddings_run_is_told_why_it_cannot_be_swept(fresh, tmp_path):
    import numpy as np

    from hashviz.session.runs import Workspace

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    np.savez(tmp_path / "e.npz", z=(rng.standard_normal((3, 16))[labels] + rng.standard_normal((120, 16))),
             labels=labels)
    Workspace(fresh).prepare("embeddings", dataset_options={"path": str(tmp_path / "e.npz")})
    at = open_app("pages/7_penalty.py")
    assert problems(at) == []
    assert any("This run is an embeddings file" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "hv_sweep_start"]
