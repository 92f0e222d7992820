"""The app's background layouts: the worker process's protocol (queued, running with stages, done), the
request that returns None then the cached layout, the progress text, and the worker's own entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hashviz.viz import layout_jobs as J
from hashviz.viz import project as P


def test_background_worker_returns_none_then_the_cached_result(tmp_path):
    import time

    X = np.random.default_rng(4).standard_normal((40, 3))
    first = J.request_layout(X, method="pca", cache_dir=tmp_path)
    assert first is None  # not cached yet: computing in the worker process
    deadline = time.time() + 60
    again = None
    while again is None and time.time() < deadline:
        time.sleep(0.2)
        again = J.request_layout(X, method="pca", cache_dir=tmp_path)
    assert again is not None and np.allclose(again, P.pca_2d(X))
    # the worker writes the layout, then answers "ok": the job leaves the pending ones right after
    key = P.layout_key(X, method="pca")
    while J.jobs().status(key) is not None and time.time() < deadline:
        time.sleep(0.05)
    assert J.jobs().status(key) is None and J.jobs().error(key) is None


def test_job_status_fraction_time_left_and_text():
    queued = J.JobStatus(label="codes before", state="queued", ahead=2)
    assert queued.fraction == 0 and "waiting for 2 layouts" in queued.describe()
    assert J.JobStatus(label="codes after", state="queued", ahead=0).describe() == "codes after: starting"
    early = J.JobStatus(label="codes before", state="running", stage="neighbours", done=0, total=1, elapsed=3.0)
    assert early.fraction == 0 and early.seconds_left is None and "nearest neighbours" in early.describe()
    mid = J.JobStatus(label="codes after", state="running", stage="epochs", done=25, total=100, elapsed=12.0,
                      stage_elapsed=5.0)
    assert mid.fraction == pytest.approx(0.1 + 0.1 + 0.8 * 0.25)
    assert mid.seconds_left == pytest.approx(15.0)  # 5 s for 25 epochs → 15 s for the other 75
    assert "epoch 25/100" in mid.describe() and "about 15 s left" in mid.describe()


def test_the_worker_entry_point_answers_each_job_and_keeps_serving_after_a_failure(tmp_path):
    """``python -m hashviz.viz.worker`` as ProjectionJobs starts it: a PCA job is answered start/ok and lands in the
    cache under its layout key; a job whose input is missing is answered err and the worker serves the next one."""
    X = np.random.default_rng(8).standard_normal((30, 4)).astype(np.float32)
    key = P.layout_key(X, method="pca")
    x_path = tmp_path / "x.npy"
    np.save(x_path, X)
    params = {"method": "pca", "metric": "euclidean", "seed": 0, "n_neighbors": 15}
    jobs = [{"key": "missing", "op": "project", "x": str(tmp_path / "nothing.npy"), "reference": None,
             "cache_dir": str(tmp_path), "params": params},
            {"key": key, "op": "project", "x": str(x_path), "reference": None, "cache_dir": str(tmp_path),
             "params": params}]
    out = subprocess.run([sys.executable, "-m", "hashviz.viz.worker"], capture_output=True, text=True, timeout=120,
                         input="".join(json.dumps(j) + "\n" for j in jobs), check=True)
    lines = out.stdout.splitlines()
    assert lines[0] == "start missing" and lines[1].startswith("err missing ") and "FileNotFoundError" in lines[1]
    assert lines[2:] == [f"start {key}", f"ok {key}"]
    assert np.allclose(P.load_cached(key, tmp_path, n=len(X)), P.pca_2d(X))


@pytest.mark.slow
def test_the_worker_reports_start_progress_and_the_end(tmp_path):
    """The worker's protocol as the server reads it: a queued job, then running with stages, then done."""
    import time

    jobs = J.ProjectionJobs()
    try:
        rng = np.random.default_rng(7)
        first = rng.random((600, 16)) > 0.5
        second = rng.random((600, 16)) > 0.5
        keys = []
        for X, label in ((first, "first"), (second, "second")):
            key = P.layout_key(X, method="umap", metric="hamming")
            x_path = tmp_path / f"{key}.x.npy"
            np.save(x_path, X)
            jobs.submit(key, {"op": "project", "x": str(x_path), "reference": None, "cache_dir": str(tmp_path),
                              "params": {"method": "umap", "metric": "hamming", "seed": 0, "n_neighbors": 15}},
                        label=label)
            keys.append(key)
        states, stages, deadline = set(), set(), time.time() + 240
        while any(jobs.status(key) is not None for key in keys) and time.time() < deadline:
            for key in keys:
                st = jobs.status(key)
                if st is not None:
                    states.add((st.label, st.state))
                    if st.stage:
                        stages.add(st.stage)
                        assert 0 <= st.fraction <= 1
            time.sleep(0.05)
        assert ("second", "queued") in states and ("first", "running") in states
        # the stages seen depend on how fast they pass (test_project.py checks, in process, every one is reported)
        assert stages and stages <= set(J.STAGE_WEIGHTS)
        for key, X in zip(keys, (first, second)):
            assert jobs.status(key) is None and jobs.error(key) is None
            assert P.load_cached(key, tmp_path, n=len(X)) is not None
    finally:
        jobs.shutdown()


@pytest.mark.slow
def test_the_warm_up_job_compiles_umap_in_the_worker():
    """The job :func:`warm_up` sends, run by the worker entry point: answered start/ok (umap-learn ran there)."""
    out = subprocess.run([sys.executable, "-m", "hashviz.viz.worker"], input=json.dumps({"key": "warm-up",
                         "op": "warm-up"}) + "\n", capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.splitlines() == ["start warm-up", "ok warm-up"]


def test_warm_up_runs_its_hook_once_per_process(monkeypatch):
    """``before`` runs once however often the app calls warm_up; with HASHVIZ_UMAP=0 no worker job is sent."""
    monkeypatch.setenv("HASHVIZ_UMAP", "0")
    monkeypatch.setenv("HASHVIZ_UMAP_WARMUP", "1")
    monkeypatch.setattr(J, "_WARM_STARTED", J.threading.Event())
    calls = []
    J.warm_up(background=False, before=lambda: calls.append(1))
    J.warm_up(background=False, before=lambda: calls.append(2))
    assert calls == [1]
    assert J.jobs().status("warm-up") is None
