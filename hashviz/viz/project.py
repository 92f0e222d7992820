"""2-D projections for the app's maps: PCA (instant) and UMAP (seeded), cached on disk by config key.

- :func:`pca_2d` — exact, deterministic (sign-fixed) PCA; shown at once while UMAP computes.
- :func:`umap_2d` — UMAP of continuous embeddings (``metric="euclidean"``/``"cosine"``) or of binary codes
  (``metric="hamming"``, ``unique=True`` so identical codes share one point, as they should).
- :func:`project` — cached front door: the result is saved under ``<home>/cache/projections/<key>.npy`` where the
  key (:func:`layout_key`) is a SHA-256 over the input array and every parameter, so the same request never
  computes twice. With ``reference=`` (a layout of the same points, e.g. the codes before a rotation) the UMAP
  starts from it (``init=`` the mean reference position of the points sharing each code) and is then turned onto
  it by orthogonal Procrustes (:func:`procrustes_align`), so two panels can be read side by side.

This module is the maths and the disk cache only, computed in the calling process. The app computes its UMAPs in
a background worker process instead: :mod:`hashviz.viz.layout_jobs` (the server's side: queue, status, warm-up)
and :mod:`hashviz.viz.worker` (the process, which calls :func:`project`).

umap-learn is imported lazily inside functions: ``import hashviz.viz.project`` stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Callable
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


def layout_input(X, metric: str = "euclidean") -> np.ndarray:
    """``X`` as :func:`project` lays it out: checked (2-D, at least 2 rows, finite), as bool bits when
    ``metric="hamming"``. Raises :class:`~hashviz.errors.InvalidInputError` otherwise."""
    X = _check(X)
    return X.astype(bool) if metric == "hamming" else X


def layout_key(X, *, method: str = "umap", metric: str = "euclidean", seed: int = 0, n_neighbors: int = 15,
               reference: np.ndarray | None = None) -> str:
    """The key :func:`project` caches this layout under (also the background worker's job key)."""
    return projection_key(layout_input(X, metric), method=method, metric=metric, seed=seed, n_neighbors=n_neighbors,
                          reference=reference)


def pca_2d(X) -> np.ndarray:
    """First two principal components (float32 (n, 2)); signs fixed so the largest loading is positive.

    Works for bool bits too (as 0/1). A 1-D input gets a zero second coordinate."""
    X = _check(X).astype(np.float64)
    Xc = X - X.mean(axis=0)
    # principal axes from the d × d scatter matrix (eigh), not an SVD of the n × d data: the same axes, ~20× faster
    # at 10,000 × 64, which matters on the maps' first view
    w, v = np.linalg.eigh(Xc.T @ Xc)
    comps = v[:, np.argsort(w)[::-1][:2]].T
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


def project(X, *, method: str = "umap", metric: str = "euclidean", seed: int = 0, n_neighbors: int = 15,
            cache_dir=None, reference: np.ndarray | None = None, use_cache: bool = True,
            progress: Progress | None = None) -> np.ndarray:
    """Cached 2-D layout of ``X`` (float32 (n, 2)).

    ``method``: ``"umap"`` or ``"pca"``. ``metric="hamming"`` means ``X`` holds bits. ``reference``: a layout of
    the same points to start from (UMAP ``init``) and align to (Procrustes), for before/after pairs.
    ``progress``: see :func:`umap_2d`."""
    if method not in ("umap", "pca"):
        raise InvalidInputError(f"unknown projection method {method!r}", "use 'umap' or 'pca'")
    X = layout_input(X, metric)
    key = layout_key(X, method=method, metric=metric, seed=seed, n_neighbors=n_neighbors, reference=reference)
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
