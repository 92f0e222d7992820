"""The projection worker: ``python -m hashviz.viz.worker`` reads JSON jobs from stdin, one per line, computes
each layout with :func:`hashviz.viz.project.project` (which writes it to the disk cache) and answers
``ok KEY`` or ``err KEY MESSAGE`` on stdout. It ends when stdin closes (its server is gone). It runs at a lower
CPU priority (nice 10), so UMAP never slows the server or the browser down."""

from __future__ import annotations

import json
import sys

import numpy as np


def handle(job: dict) -> None:
    from hashviz.viz import project as P

    if job.get("op") == "warm-up":
        P._warm_up_umap()
        return
    X = np.load(job["x"], allow_pickle=False)
    ref = None if job.get("reference") is None else np.load(job["reference"], allow_pickle=False)
    P.project(X, cache_dir=job["cache_dir"], reference=ref, **job["params"])


def main() -> int:
    import os

    try:  # background work: let the server (live charts) and the browser have the CPU first
        os.nice(10)
    except (AttributeError, OSError):
        pass
    for line in sys.stdin:
        if not line.strip():
            continue
        key = "?"
        try:
            job = json.loads(line)
            key = str(job.get("key", "?"))
            handle(job)
            print(f"ok {key}", flush=True)
        except Exception as e:  # report and keep serving
            msg = f"{type(e).__name__}: {e}".replace("\n", " ")[:500]
            print(f"err {key} {msg}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
