"""Batched backbone feature extraction, cached on disk.

The cache file is ``<cache_dir>/<backbone>-<key>.npy`` with ``key`` a hash of the dataset fingerprint, the split
seed, the backbone name, its input size and the SHA-256 of its weights file, and ``FEATURES_VERSION``. Features
are computed in memory and written once complete (temp file + ``os.replace``), so a stopped or crashed extraction
never leaves a half-written cache; a cache file that does not load as float32 (n, d) is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hashviz.errors import InvalidInputError, StoppedError

FEATURES_VERSION = 1


def _backbone(backbone):
    from hashviz.features.backbones import Backbone, get_backbone

    return backbone if isinstance(backbone, Backbone) else get_backbone(backbone)


def feature_key(dataset, backbone) -> str:
    """Cache key: dataset fingerprint, split seed, backbone name, input size, weights SHA-256, format version."""
    bb = _backbone(backbone)
    payload = {"v": FEATURES_VERSION, "dataset": dataset.fingerprint, "seed": int(dataset.seed),
               "backbone": bb.name, "input_size": bb.input_size, "weights_sha256": bb.weights_sha256()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def feature_cache_path(dataset, backbone, cache_dir=None) -> Path:
    """Where :func:`extract_features` keeps the features of ``dataset`` under ``backbone``."""
    from hashviz.paths import cache_dir as default_cache

    bb = _backbone(backbone)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache() / "features"
    return root / f"{dataset.name}-{bb.name}-{feature_key(dataset, bb)}.npy"


def _read_cache(path: Path, n: int, d: int) -> np.ndarray | None:
    try:
        from hashviz.npyio import HEADER_LOCK

        with HEADER_LOCK:
            arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.shape != (n, d) or not np.isfinite(arr).all():
        return None
    return arr


def _write_atomic(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def extract_features(dataset, backbone="mnist_cnn", *, batch_size: int = 256,
                     progress: Callable[[int, int], None] | None = None, cache_dir=None,
                     should_stop: Callable[[], bool] | None = None, use_cache: bool = True,
                     device: str | None = None) -> np.ndarray:
    """Backbone features of every image of ``dataset``: float32 (n, output_dim), rows in dataset order.

    ``backbone``: a name or a :class:`~hashviz.features.backbones.Backbone` (with its weights). ``progress(done,
    total)`` after each batch (and once with (n, n) on a cache hit). ``should_stop()`` is polled before each
    batch; when it returns True a :class:`~hashviz.errors.StoppedError` is raised and nothing is cached.
    ``device``: a torch device (default: CUDA when available, else CPU); it is not part of the cache key."""
    import torch

    if getattr(dataset, "embeddings", None) is not None or not dataset.has_images:
        raise InvalidInputError(f"dataset {dataset.name} has no images to run a backbone on",
                                "an embeddings file already holds the embeddings: use dataset.embeddings directly")
    if int(batch_size) < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}", "the default is 256")
    bb = _backbone(backbone)
    n, d = dataset.n, bb.output_dim
    path = feature_cache_path(dataset, bb, cache_dir) if use_cache else None
    if path is not None and path.is_file():
        cached = _read_cache(path, n, d)
        if cached is not None:
            if progress is not None:
                progress(n, n)
            return cached
    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    model = bb.load_model().to(dev)
    out = np.empty((n, d), dtype=np.float32)
    done = 0
    with torch.inference_mode():
        for start in range(0, n, int(batch_size)):
            if should_stop is not None and should_stop():
                raise StoppedError(f"feature extraction stopped after {done} of {n} images; nothing was cached",
                                   "start it again to compute the features from the beginning")
            idx = np.arange(start, min(start + int(batch_size), n))
            feats = model(bb.transform(dataset.load_images(idx)).to(dev))
            if feats.ndim != 2 or feats.shape[1] != d:
                raise InvalidInputError(f"{bb.name} produced features of shape {tuple(feats.shape)}, "
                                        f"expected (.., {d})",
                                        "the weights do not match the backbone")
            out[idx] = feats.float().cpu().numpy()
            done = int(idx[-1]) + 1
            if progress is not None:
                progress(done, n)
    if path is not None:
        _write_atomic(path, out)
    return out
