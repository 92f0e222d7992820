"""2-D projections for the app's maps: PCA (instant) and UMAP (seeded), cached on disk by config key.

- :func:`pca_2d` — exact, deterministic (sign-fixed) PCA; shown at once while UMAP computes.
- :func:`umap_2d` — UMAP of continuous embeddings (``metric="euclidean"``/``"cosine"``) or of binary codes
  (``metric="hamming"``, ``unique=True`` so identical codes share one point, as they should).
- :func:`aligned_code_layouts` — UMAP of the codes before and after a rotation with the second layout started
  from the first one (``init=`` the mean first-layout position of the points sharing each code) and then
  turned onto it by orthogonal Procrustes, so the two panels can be read side by side.
- :func:`project` — cached front door: the result is saved under ``<home>/cache/projections/<key>.npy`` where the
  key is a SHA-256 over the input array and every parameter, so the same request never computes twice.
- :class:`ProjectionJobs` — a process-wide background worker: ``request`` returns the cached layout or ``None``
  and starts the computation in a thread, so a page can draw PCA now and UMAP on a later rerun.
  :func:`warm_up` compiles umap-learn's numba kernels in the background (about 45 s once per process).

umap-learn is imported lazily inside functions: ``import hashviz.viz.project`` stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashviz.errors import InvalidInputError

log = logging.getLogger(__name__)

MAX_POINTS = 10_000  # above this, maps are drawn on a seeded subsample (with a note)
PROJECTION_VERSION = 2
# UMAP's layout optimisation costs about (points × epochs): 200 epochs up to 5,000 points, then fewer so a map of
# MAX_POINTS takes about as long as one of 10,000 · 100 (at least 100 epochs)
EPOCH_BUDGET, MIN_EPOCHS, MAX_EPOCHS = 1_000_000, 100, 200
SPECTRAL_MAX = 5_000  # spectral initialisation (an eigenproblem) up to this many points, PCA above
Progress = Callable[[str, int, int], object]  # (stage, done, total)


# ---- keys and the disk cache ----------------------------------------------------------------------------------
def projection_key(X: np.ndarray, **params) -> str:
    """SHA-256 over the array (dtype, shape, bytes) and the JSON of ``params`` — the disk-cache key."""
    a = np.ascontiguousarray(X)
    h = hashlib.sha256()
    h.update(f"v{PROJECTION_VERSION}|{a.dtype.str}|{a.shape}|".encode())
    h.update(a.view(np.uint8).reshape(-1) if a.size else b"")
    h.update(json.dumps(params, sort_keys=True, default=_json_default).encode())
    return h.hexdigest()[:32]


def _json_default(o):
    if isinstance(o, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(o).view(np.uint8).reshape(-1)).hexdigest()
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def default_cache_dir() -> Path:
    from hashviz.paths import cache_dir

    return cache_dir() / "projections"


def _cache_path(key: str, cache_dir) -> Path:
    return Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"{key}.npy"


def load_cached(key: str, cache_dir=None, n: int | None = None) -> np.ndarray | None:
    """The cached (n, 2) layout for ``key``, or ``None`` (missing, unreadable or the wrong shape)."""
    path = _cache_path(key, cache_dir)
    if not path.exists():
        return None
    try:
        from hashviz.npyio import HEADER_LOCK

        with HEADER_LOCK:
            Y = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable projection cache %s: %s", path, e)
        return None
    if Y.ndim != 2 or Y.shape[1] != 2 or (n is not None and len(Y) != n) or not np.isfinite(Y).all():
        log.warning("ignoring projection cache %s with shape %s", path, Y.shape)
        return None
    return Y


def save_cached(key: str, Y: np.ndarray, cache_dir=None) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves half a layout."""
    from hashviz.fileio import write_atomic

    path = _cache_path(key, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: np.save(f, np.asarray(Y, dtype=np.float32), allow_pickle=False))
    return path


# ---- the projections ------------------------------------------------------------------------------------------
def _check(X) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or len(X) < 2 or X.shape[1] < 1:
        raise InvalidInputError(f"a projection needs a 2-D array with at least 2 rows, got shape {X.shape}",
                                "pass embeddings (n, d) or bits (n, n_bits)")
    if X.dtype != bool and not np.isfinite(X).all():
        raise InvalidInputError("cannot project arrays with NaN or infinite values", "clean the embeddings first")
    return X


def pca_2d(X) -> np.ndarray:
    """First two principal components (float32 (n, 2)); signs fixed so the largest loading is positive.

    Works for bool bits too (as 0/1). A 1-D input gets a zero second coordinate."""
    X = _check(X).astype(np.float64)
    Xc = X - X.mean(axis=0)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    comps = vt[:2]
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
    signs[signs == 0] = 1
    Y = Xc @ (comps * signs[:, None]).T
    if Y.shape[1] < 2:
        Y = np.hstack([Y, np.zeros((len(Y), 2 - Y.shape[1]))])
    return Y.astype(np.float32)


def default_epochs(n: int) -> int:
    """Epochs of UMAP's layout optimisation for ``n`` points (see :data:`EPOCH_BUDGET`)."""
    return int(np.clip(EPOCH_BUDGET // max(int(n), 1), MIN_EPOCHS, MAX_EPOCHS))


def hamming_knn(bits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of ``bits`` in Hamming distance, each row itself first: (indices int64 (n, k),
    distances as fractions of the bits float32 (n, k), the metric umap's ``"hamming"`` uses). Counted on packed
    codes with the popcount kernels of :mod:`hashviz.retrieval.search` (ties by row index)."""
    from hashviz.codes import pack_bits
    from hashviz.retrieval.search import top_k

    bits = np.asarray(bits, dtype=bool)
    codes = pack_bits(bits)
    idx, dist = top_k(codes, codes, int(k))
    idx, dist = np.asarray(idx, dtype=np.int64), np.asarray(dist, dtype=np.float32)
    # rows are distinct (callers collapse duplicates), so a row's only distance-0 match is itself; put it first
    rows = np.arange(len(bits))
    own = idx == rows[:, None]
    missing = ~own.any(axis=1)
    if missing.any():  # k smaller than a tie group that sorted the row itself out: make room for it
        idx[missing, -1], dist[missing, -1] = rows[missing], 0
        own = idx == rows[:, None]
    order = np.argsort(~own, axis=1, kind="stable")
    return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1) / bits.shape[1]


class _EpochReporter:
    """Stands in for the ``tqdm`` that umap's layout loop iterates over: reports each epoch to ``progress``."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __call__(self, iterable, **_kw):
        items = list(iterable)
        for i, item in enumerate(items):
            yield item
            self.progress("epochs", i + 1, len(items))


class _epoch_progress:
    """Context manager: while active, umap's layout epochs are reported to ``progress`` (umap iterates over
    ``umap.layouts.tqdm(range(n_epochs))``). If umap ever stops doing so, progress stays stage-level."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress, self.saved = progress, None

    def __enter__(self):
        import umap.layouts as L

        if self.progress is not None and hasattr(L, "tqdm"):
            self.saved = L.tqdm
            L.tqdm = _EpochReporter(self.progress)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            import umap.layouts as L

            L.tqdm = self.saved
        return False


def umap_2d(X, *, metric: str = "euclidean", seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1,
            init=None, n_epochs: int | None = None, progress: Progress | None = None) -> np.ndarray:
    """Seeded UMAP to 2-D. ``metric="hamming"`` treats ``X`` as bits and collapses identical rows first (what
    umap's ``unique=True`` does: identical codes get one point); ``init`` is then one row per *unique* row in
    ``np.unique(X, axis=0)`` order. ``n_epochs`` defaults to :func:`default_epochs` of the points laid out.

    The k nearest neighbours are exact and handed to UMAP (``precomputed_knn``), which avoids compiling
    pynndescent (about 45 s in every fresh process): for codes from packed popcounts (:func:`hamming_knn`, about
    a second for 10,000 64-bit codes), for embeddings from scikit-learn. Above :data:`SPECTRAL_MAX` points the
    start is the PCA of the data instead of UMAP's spectral layout (an eigenproblem that took seconds there).
    ``progress(stage, done, total)`` is called as the stages advance: ``"neighbours"``, ``"graph"`` (fuzzy
    graph and initial layout) and ``"epochs"`` once per epoch of the layout optimisation."""
    import umap  # lazy: ~4 s import, numba compilation on first use

    report = progress or (lambda *a: None)
    X = _check(X)
    hamming = metric == "hamming"
    inverse = None
    if hamming:
        X, inverse = np.unique(X.astype(bool), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
    n = len(X)
    if n < 4:  # UMAP needs a neighbourhood; fall back to PCA of the few distinct points
        Y = pca_2d(X) if n >= 2 else np.zeros((n, 2), np.float32)
        return Y if inverse is None else Y[inverse]
    k = int(min(n_neighbors, n - 1))
    report("neighbours", 0, 1)
    data = X.astype(np.float32) if not hamming else X
    if hamming:
        knn_i, knn_d = hamming_knn(X, k)
    else:
        from sklearn.neighbors import NearestNeighbors

        knn_d, knn_i = NearestNeighbors(n_neighbors=k, metric=metric).fit(data).kneighbors(data)
    report("neighbours", 1, 1)
    if init is None:
        init = "spectral" if n <= SPECTRAL_MAX else pca_2d(X)
    epochs = default_epochs(n) if n_epochs is None else int(n_epochs)
    model = umap.UMAP(n_components=2, n_neighbors=k, min_dist=min_dist, metric=metric, random_state=seed,
                      init=init if isinstance(init, str) else np.asarray(init, dtype=np.float32),
                      n_epochs=epochs, n_jobs=1, precomputed_knn=(knn_i, knn_d.astype(np.float32), None))
    report("graph", 0, 1)
    with warnings.catch_warnings(), _epoch_progress(progress):
        warnings.simplefilter("ignore")
        Y = model.fit_transform(data)
    Y = np.asarray(Y, dtype=np.float32)
    if not np.isfinite(Y).all():  # disconnected components can leave NaNs in rare cases
        Y = np.nan_to_num(Y)
    return Y if inverse is None else Y[inverse]


def procrustes_align(Y: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Move ``Y`` onto ``reference`` by translation, uniform scale and an orthogonal map (reflection allowed),
    minimising the squared distance between corresponding rows. Returns float32 (n, 2)."""
    Y = np.asarray(Y, dtype=np.float64)
    R = np.asarray(reference, dtype=np.float64)
    if Y.shape != R.shape:
        raise InvalidInputError(f"cannot align layouts of shapes {Y.shape} and {R.shape}", "same points in both")
    my, mr = Y.mean(axis=0), R.mean(axis=0)
    Yc, Rc = Y - my, R - mr
    u, s, vt = np.linalg.svd(Yc.T @ Rc)
    Q = u @ vt
    norm = (Yc ** 2).sum()
    scale = s.sum() / norm if norm > 0 else 1.0
    return (scale * Yc @ Q + mr).astype(np.float32)


def _unique_init(bits: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Mean reference position of the points sharing each unique row of ``bits`` (np.unique order)."""
    _, inverse = np.unique(bits, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    n_u = int(inverse.max()) + 1
    sums = np.zeros((n_u, 2))
    np.add.at(sums, inverse, reference)
    counts = np.bincount(inverse, minlength=n_u)[:, None]
    init = sums / counts
    # UMAP dislikes exactly coincident starting points: jitter deterministically by a tiny amount
    spread = float(np.ptp(init, axis=0).max()) or 1.0
    jitter = np.random.default_rng(0).standard_normal(init.shape) * 1e-4 * spread
    return (init + jitter).astype(np.float32)


def aligned_code_layouts(bits_before, bits_after, *, seed: int = 0, n_neighbors: int = 15,
                         cache_dir=None, method: str = "umap") -> tuple[np.ndarray, np.ndarray]:
    """Layouts of the codes before and after a rotation, the second started from and aligned to the first.

    ``method="umap"``: Hamming UMAP (``unique=True``); ``"pca"``: PCA of the bits. Both cached on disk."""
    before = project(bits_before, method=method, metric="hamming", seed=seed, n_neighbors=n_neighbors,
                     cache_dir=cache_dir)
    after = project(bits_after, method=method, metric="hamming", seed=seed, n_neighbors=n_neighbors,
                    cache_dir=cache_dir, reference=before)
    return before, after


def project(X, *, method: str = "umap", metric: str = "euclidean", seed: int = 0, n_neighbors: int = 15,
            cache_dir=None, reference: np.ndarray | None = None, use_cache: bool = True,
            progress: Progress | None = None) -> np.ndarray:
    """Cached 2-D layout of ``X`` (float32 (n, 2)).

    ``method``: ``"umap"`` or ``"pca"``. ``metric="hamming"`` means ``X`` holds bits. ``reference``: a layout of
    the same points to start from (UMAP ``init``) and align to (Procrustes), for before/after pairs.
    ``progress``: see :func:`umap_2d`."""
    if method not in ("umap", "pca"):
        raise InvalidInputError(f"unknown projection method {method!r}", "use 'umap' or 'pca'")
    X = _check(X)
    if metric == "hamming":
        X = X.astype(bool)
    key = projection_key(X, method=method, metric=metric, seed=seed, n_neighbors=n_neighbors,
                         reference=reference)
    if use_cache:
        cached = load_cached(key, cache_dir, n=len(X))
        if cached is not None:
            return cached
    if method == "pca":
        Y = pca_2d(X)
    else:
        init = None
        if reference is not None and metric == "hamming":
            init = _unique_init(X, reference)
        elif reference is not None:
            init = np.asarray(reference, dtype=np.float32)
        Y = umap_2d(X, metric=metric, seed=seed, n_neighbors=n_neighbors, init=init, progress=progress)
    if reference is not None:
        Y = procrustes_align(Y, reference)
    if use_cache:
        save_cached(key, Y, cache_dir)
    return Y


def subsample(n: int, max_points: int = MAX_POINTS, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded subsample of ``range(n)`` of at most ``max_points`` (all when n is small)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


# ---- background work ------------------------------------------------------------------------------------------
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

    def running(self) -> int:
        with self._lock:
            return sum(1 for k in self._pending if k != "warm-up")

    def pending(self) -> list[str]:
        """Keys of the jobs not finished yet, in the order the worker takes them."""
        with self._lock:
            return list(self._pending)

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


def _warm_up_umap() -> float:
    """Compile umap-learn's kernels (runs in the worker process)."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    umap_2d(rng.random((300, 16)) > 0.5, metric="hamming", n_epochs=5)
    umap_2d(rng.standard_normal((300, 8)).astype(np.float32), metric="euclidean", n_epochs=5)
    return time.perf_counter() - t0


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


def layout_key(X, *, method: str = "umap", metric: str = "euclidean", seed: int = 0, n_neighbors: int = 15,
               reference: np.ndarray | None = None) -> str:
    """The key :func:`project` and :func:`request_layout` cache this layout under (and the worker's job key)."""
    X = _check(X)
    if metric == "hamming":
        X = X.astype(bool)
    return projection_key(X, method=method, metric=metric, seed=seed, n_neighbors=n_neighbors, reference=reference)


def request_layout(X, *, method: str = "umap", metric: str = "euclidean", seed: int = 0, n_neighbors: int = 15,
                   cache_dir=None, reference: np.ndarray | None = None, label: str = "layout") -> np.ndarray | None:
    """The cached layout, or ``None`` while it is computed in the background (call again later;
    ``jobs().status(layout_key(…))`` says where it stands, under ``label``).

    ``HASHVIZ_UMAP=0`` in the environment turns background UMAP off (PCA only; used by the app tests)."""
    X = _check(X)
    if method == "umap" and not umap_enabled():
        return None
    if metric == "hamming":
        X = X.astype(bool)
    key = projection_key(X, method=method, metric=metric, seed=seed, n_neighbors=n_neighbors, reference=reference)
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
        save_cached_array(x_path, X)
    ref_path = None
    if reference is not None:
        ref_path = inputs / f"{key}.ref.npy"
        save_cached_array(ref_path, np.asarray(reference, dtype=np.float32))
    jobs().submit(key, {"op": "project", "x": str(x_path), "reference": None if ref_path is None else str(ref_path),
                        "cache_dir": str(folder), "params": {"method": method, "metric": metric, "seed": seed,
                                                              "n_neighbors": n_neighbors}}, label=label)
    return None


def save_cached_array(path: Path, a: np.ndarray) -> None:
    from hashviz.fileio import write_atomic

    write_atomic(path, lambda f: np.save(f, a, allow_pickle=False))
