"""Layouts computed in the background, for the app: the server's side of the projection worker process.

- :func:`request_layout` — the cached layout (:func:`hashviz.viz.project.project`'s disk cache), or ``None``
  while it is computed in the background; a page draws PCA now and the UMAP on a later rerun.
- :class:`ProjectionJobs` (one per process, :func:`jobs`) — sends jobs to one long-lived worker process
  (:mod:`hashviz.viz.worker`) and reads its answers, so :meth:`ProjectionJobs.status` says where each job stands
  (:class:`JobStatus`: queued, or running with its stage, epoch and time left).
- :func:`warm_up` — once per server: starts the worker and has it compile umap-learn's numba kernels
  (:func:`hashviz.viz.worker.warm_up_umap`), so the first map does not pay for it.
- :func:`umap_enabled` — ``HASHVIZ_UMAP=0`` keeps the maps on PCA with nothing in the background.

The maths and the disk cache are :mod:`hashviz.viz.project`; nothing here imports umap-learn.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashviz.errors import InvalidInputError
from hashviz.viz.project import default_cache_dir, layout_input, layout_key, load_cached

log = logging.getLogger(__name__)

STAGE_WEIGHTS = {"neighbours": 0.1, "graph": 0.1, "epochs": 0.8}  # share of a UMAP's time, for the progress bar


@dataclass(frozen=True)
class JobStatus:
    """Where one background layout stands. ``state``: ``"queued"`` (``ahead`` jobs before it, the worker runs
    one at a time) or ``"running"`` (``stage`` with ``done`` of ``total``, as reported by the worker)."""

    label: str
    state: str
    ahead: int = 0
    stage: str | None = None
    done: int = 0
    total: int = 0
    elapsed: float = 0.0        # seconds since the worker started it
    stage_elapsed: float = 0.0  # seconds since the current stage began

    @property
    def fraction(self) -> float:
        """Share of the work done (stage weights :data:`STAGE_WEIGHTS`; 0 while queued)."""
        if self.state != "running" or self.stage is None:
            return 0.0
        names = list(STAGE_WEIGHTS)
        before = sum(STAGE_WEIGHTS[s] for s in names[:names.index(self.stage)]) if self.stage in names else 0.0
        part = self.done / self.total if self.total else 0.0
        return float(min(1.0, before + STAGE_WEIGHTS.get(self.stage, 0.0) * part))

    @property
    def seconds_left(self) -> float | None:
        """Time left, extrapolated from the epochs done so far (None before the first epoch)."""
        if self.stage != "epochs" or self.done <= 0 or not self.total:
            return None
        return self.stage_elapsed / self.done * (self.total - self.done)

    def describe(self) -> str:
        if self.state == "queued":
            if self.ahead == 0:  # next in line: sent, the worker has not reported its start yet
                return f"{self.label}: starting"
            return f"{self.label}: waiting for {self.ahead} layout{'s' if self.ahead != 1 else ''} before it"
        if self.stage == "epochs":
            left = self.seconds_left
            return (f"{self.label}: optimising the layout, epoch {self.done}/{self.total}"
                    + (f", about {left:.0f} s left" if left is not None else ""))
        what = {"neighbours": "finding the nearest neighbours", "graph": "building the neighbour graph and the "
                "starting layout"}.get(self.stage or "", "starting")
        return f"{self.label}: {what} ({self.elapsed:.0f} s so far)"


class ProjectionJobs:
    """Layouts computed by one long-lived worker *process* (``python -m hashviz.viz.worker``); results land in
    the disk cache. A separate process, not a thread: umap-learn's numba compilation and layout loops hold the
    GIL for long stretches, which would freeze the server's other sessions (and the live training charts). A
    plain subprocess, not multiprocessing: spawning from inside a Streamlit server would re-import the app.

    Jobs are sent as JSON lines on the worker's stdin (input arrays in ``.npy`` files next to the cache); the
    worker answers ``start``, ``progress`` and ``ok``/``err`` lines (:mod:`hashviz.viz.worker`), read here by a
    thread, so :meth:`status` tells where each job stands. Shared by every browser session of the server: it holds
    only immutable results keyed by content."""

    def __init__(self) -> None:
        self._proc = None
        self._pending: dict[str, float] = {}  # key → time submitted, in submission (= worker) order
        self._labels: dict[str, str] = {}
        self._started: dict[str, float] = {}
        self._progress: dict[str, tuple[str, int, int, float]] = {}  # key → (stage, done, total, stage began)
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()

    def _ensure(self):
        if self._proc is None or self._proc.poll() is not None:
            import atexit
            import subprocess
            import sys

            self._proc = subprocess.Popen([sys.executable, "-m", "hashviz.viz.worker"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True, bufsize=1)
            self._pending.clear()
            threading.Thread(target=self._read, args=(self._proc,), name="hashviz-projection-reader",
                             daemon=True).start()
            atexit.register(self.shutdown)
        return self._proc

    def _read(self, proc) -> None:
        for line in proc.stdout:
            parts = line.rstrip("\n").split(" ")
            if len(parts) < 2:
                continue
            kind, key = parts[0], parts[1]
            now = time.monotonic()
            with self._lock:
                if kind == "start":
                    self._started[key] = now
                elif kind == "progress" and len(parts) == 5:
                    stage = parts[2]
                    old = self._progress.get(key)
                    began = old[3] if old is not None and old[0] == stage else now
                    try:
                        self._progress[key] = (stage, int(parts[3]), int(parts[4]), began)
                    except ValueError:
                        pass
                elif kind in ("ok", "err"):
                    self._finish(key)
                    if kind == "err":
                        self._errors[key] = " ".join(parts[2:]) or "failed"
        with self._lock:  # the worker ended: nothing is pending any more
            for key in list(self._pending):
                self._finish(key)

    def _finish(self, key: str) -> None:
        self._pending.pop(key, None)
        self._started.pop(key, None)
        self._progress.pop(key, None)
        self._labels.pop(key, None)

    def shutdown(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.close()
                proc.wait(5)
            except Exception:
                proc.kill()

    def submit(self, key: str, job: dict, label: str = "layout") -> None:
        """Send ``job`` unless ``key`` is already pending; a job that failed before is tried again."""
        with self._lock:
            if key in self._pending:
                return
            self._errors.pop(key, None)
            proc = self._ensure()
            self._pending[key] = time.time()
            self._labels[key] = label
            try:
                proc.stdin.write(json.dumps({"key": key, **job}) + "\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError) as e:
                self._finish(key)
                self._errors[key] = f"the projection worker is gone ({e})"

    def error(self, key: str) -> str | None:
        with self._lock:
            return self._errors.get(key)

    def status(self, key: str) -> JobStatus | None:
        """Where job ``key`` stands, or None when it is not pending (finished, failed or never sent)."""
        now = time.monotonic()
        with self._lock:
            if key not in self._pending:
                return None
            label = self._labels.get(key, "layout")
            if key not in self._started:
                ahead = list(self._pending).index(key)
                return JobStatus(label=label, state="queued", ahead=ahead)
            t0 = self._started[key]
            stage, done, total, began = self._progress.get(key, (None, 0, 0, t0))
            return JobStatus(label=label, state="running", stage=stage, done=done, total=total,
                             elapsed=now - t0, stage_elapsed=now - began)


_JOBS: ProjectionJobs | None = None
_JOBS_LOCK = threading.Lock()
_WARM_STARTED = threading.Event()


def jobs() -> ProjectionJobs:
    global _JOBS
    with _JOBS_LOCK:
        if _JOBS is None:
            _JOBS = ProjectionJobs()
        return _JOBS


def warm_up(background: bool = True, before: Callable[[], object] | None = None) -> None:
    """Once per server: start the projection worker and compile UMAP there; ``before`` runs in a daemon thread
    of this process (e.g. the app's warm-up of torch and the metrics). ``HASHVIZ_UMAP_WARMUP=0`` skips it."""
    if _WARM_STARTED.is_set() or os.environ.get("HASHVIZ_UMAP_WARMUP", "1") == "0":
        return
    _WARM_STARTED.set()
    if umap_enabled():
        jobs().submit("warm-up", {"op": "warm-up"}, label="compiling UMAP (once per server)")
    if before is not None:
        def run():
            try:
                before()
            except Exception:
                log.exception("warm-up failed")
        if background:
            threading.Thread(target=run, name="hashviz-warm-up", daemon=True).start()
        else:
            run()


def umap_enabled() -> bool:
    """False when ``HASHVIZ_UMAP=0``: maps stay on PCA and nothing runs in the background."""
    return os.environ.get("HASHVIZ_UMAP", "1") != "0"


def request_layout(X, *, method: str = "umap", metric: str = "euclidean", seed: int = 0, n_neighbors: int = 15,
                   cache_dir=None, reference: np.ndarray | None = None, label: str = "layout") -> np.ndarray | None:
    """The cached layout, or ``None`` while it is computed in the background (call again later;
    ``jobs().status(layout_key(…))`` says where it stands, under ``label``).

    ``HASHVIZ_UMAP=0`` in the environment turns background UMAP off (PCA only; used by the app tests)."""
    X = layout_input(X, metric)
    if method == "umap" and not umap_enabled():
        return None
    key = layout_key(X, method=method, metric=metric, seed=seed, n_neighbors=n_neighbors, reference=reference)
    cached = load_cached(key, cache_dir, n=len(X))
    if cached is not None:
        return cached

    folder = Path(cache_dir if cache_dir is not None else default_cache_dir())
    err = jobs().error(key)
    if err is not None:
        raise InvalidInputError(f"the {method.upper()} layout failed: {err}", "the PCA view stays available")
    inputs = folder / ".inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    x_path = inputs / f"{key}.x.npy"
    if not x_path.exists():
        _save_input(x_path, X)
    ref_path = None
    if reference is not None:
        ref_path = inputs / f"{key}.ref.npy"
        _save_input(ref_path, np.asarray(reference, dtype=np.float32))
    jobs().submit(key, {"op": "project", "x": str(x_path), "reference": None if ref_path is None else str(ref_path),
                        "cache_dir": str(folder), "params": {"method": method, "metric": metric, "seed": seed,
                                                              "n_neighbors": n_neighbors}}, label=label)
    return None


def _save_input(path: Path, a: np.ndarray) -> None:
    """A job's input array, written atomically for the worker to read."""
    from hashviz.fileio import write_atomic

    write_atomic(path, lambda f: np.save(f, a, allow_pickle=False))
