"""The projection worker: ``python -m hashviz.viz.worker`` reads JSON jobs from stdin, one per line, computes
each layout with :func:`hashviz.viz.project.project` (which writes it to the disk cache) and answers on stdout
(read by :class:`hashviz.viz.layout_jobs.ProjectionJobs`, which starts this process):

- ``start KEY`` when it begins a job (jobs run one at a time, in the order they came),
- ``progress KEY STAGE DONE TOTAL`` as the job advances (stages of :func:`hashviz.viz.project.umap_2d`:
  ``neighbours``, ``graph``, ``epochs``; at most every 0.2 s, and at every stage change),
- ``ok KEY`` or ``err KEY MESSAGE`` when it ends.

It ends when stdin closes (its server is gone). It runs at a slightly lower CPU priority (``nice`` 4 by default,
``HASHVIZ_WORKER_NICE``), so the server and the browser get the CPU first without starving the maps."""

from __future__ import annotations

import json
import sys
import time

import numpy as np

NICE = 4
PROGRESS_EVERY = 0.2  # seconds between progress lines of one stage


class Reporter:
    """``progress(stage, done, total)`` for one job, printed as ``progress KEY …`` lines (throttled)."""

    def __init__(self, key: str, out=None) -> None:
        self.key, self.out = key, out or sys.stdout
        self.stage, self.last = None, 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage == self.stage and done < total and now - self.last < PROGRESS_EVERY:
            return
        self.stage, self.last = stage, now
        print(f"progress {self.key} {stage} {int(done)} {int(total)}", file=self.out, flush=True)


def warm_up_umap() -> float:
    """Compile umap-learn's numba kernels (Hamming and Euclidean layouts of a few hundred random rows): the
    ``warm-up`` job that :func:`hashviz.viz.layout_jobs.warm_up` sends once per server. Returns the seconds taken."""
    from hashviz.viz.project import umap_2d

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    umap_2d(rng.random((300, 16)) > 0.5, metric="hamming", n_epochs=5)
    umap_2d(rng.standard_normal((300, 8)).astype(np.float32), metric="euclidean", n_epochs=5)
    return time.perf_counter() - t0


def handle(job: dict, progress=None) -> None:
    """Run one job: ``{"op": "warm-up"}`` or ``{"op": "project", "x": path, "reference": path or None,
    "cache_dir": folder, "params": {...}}`` (written by :func:`hashviz.viz.layout_jobs.request_layout`)."""
    from hashviz.viz.project import project

    if job.get("op") == "warm-up":
        warm_up_umap()
        return
    X = np.load(job["x"], allow_pickle=False)
    ref = None if job.get("reference") is None else np.load(job["reference"], allow_pickle=False)
    project(X, cache_dir=job["cache_dir"], reference=ref, progress=progress, **job["params"])


def main() -> int:
    import os

    try:  # background work: let the server (live charts) and the browser have the CPU first
        os.nice(int(os.environ.get("HASHVIZ_WORKER_NICE", NICE)))
    except (AttributeError, OSError, ValueError):
        pass
    for line in sys.stdin:
        if not line.strip():
            continue
        key = "?"
        try:
            job = json.loads(line)
            key = str(job.get("key", "?"))
            print(f"start {key}", flush=True)
            handle(job, Reporter(key))
            print(f"ok {key}", flush=True)
        except Exception as e:  # report and keep serving
            msg = f"{type(e).__name__}: {e}".replace("\n", " ")[:500]
            print(f"err {key} {msg}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
