"""Batched backbone feature extraction, cached on disk with a checksum.

Cache files, in ``<cache_dir>`` (default ``<home>/cache/features``)::

    <dataset>-<backbone>-<key>.npy          float32 (n, d), rows in dataset order (np.save, no pickle)
    <dataset>-<backbone>-<key>.npy.json     sidecar: {"sha256", "size", "shape", "dtype", "version"}

``key`` hashes the dataset fingerprint, the split seed, the backbone name, its input size, the SHA-256 of its
weights file and ``FEATURES_VERSION``. Features are computed in memory and written once complete: the array first,
then its sidecar, each to a temporary file moved into place (``hashviz.store``'s atomic write). A read checks the
file against its sidecar (size, SHA-256, shape, dtype); a cache without a sidecar, or one that does not match it,
is recomputed with a log warning, never used. A stopped or crashed extraction caches nothing.

Crash leftovers are recognisable by name: temporary files are ``.<final name>.<pid>.<ns>.tmp`` (the store's
naming). :func:`feature_cache_leftovers` lists what a maintenance command may delete: temporary files whose
writing process is gone, sidecars without their array, and arrays without a sidecar (they would be recomputed).

Extraction runs batches through a :class:`torch.utils.data.DataLoader` whose items are whole batches (images
loaded and transformed in the worker), so worker processes decode and resize while the model runs; the model runs
in this process, on CUDA when available (pinned memory, non-blocking copies) else on the CPU. Batches are the
same whatever the number of workers, and so are the features (a test checks 0, 1 and 2 workers bit for bit).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hashviz.errors import HashvizError, InvalidInputError, StoppedError
from hashviz.fileio import sha256_file, write_atomic, write_bytes_atomic

log = logging.getLogger(__name__)

FEATURES_VERSION = 1
SIDECAR_SUFFIX = ".json"
LEFTOVER_AGE_S = 600.0  # an array without a sidecar younger than this may be a write in progress


def _backbone(backbone):
    from hashviz.features.backbones import Backbone, get_backbone

    return backbone if isinstance(backbone, Backbone) else get_backbone(backbone)


def feature_key(dataset, backbone) -> str:
    """Cache key: dataset fingerprint, split seed, backbone name, input size, weights SHA-256, format version."""
    bb = _backbone(backbone)
    payload = {"v": FEATURES_VERSION, "dataset": dataset.fingerprint, "seed": int(dataset.seed),
               "backbone": bb.name, "input_size": bb.input_size, "weights_sha256": bb.weights_sha256()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _default_dir() -> Path:
    from hashviz.paths import cache_dir as default_cache

    return default_cache() / "features"


def feature_cache_path(dataset, backbone, cache_dir=None) -> Path:
    """Where :func:`extract_features` keeps the features of ``dataset`` under ``backbone``."""
    bb = _backbone(backbone)
    root = Path(cache_dir).expanduser() if cache_dir is not None else _default_dir()
    return root / f"{dataset.name}-{bb.name}-{feature_key(dataset, bb)}.npy"


def sidecar_path(path) -> Path:
    """The checksum sidecar of a cached feature array: ``<file>.npy.json``."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


# ---- cache files ------------------------------------------------------------------------------------------
class _HashingWriter:
    """A write-only file wrapper that hashes and counts what goes through it (np.save writes in chunks)."""

    def __init__(self, f) -> None:
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        self.sha.update(view)
        self.size += len(view)
        return self.f.write(view)


def _write_cache(path: Path, arr: np.ndarray) -> None:
    """The array, then its sidecar (size, SHA-256 of the bytes written, shape, dtype), each atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    box = {}

    def write(f) -> None:
        w = _HashingWriter(f)
        np.save(w, arr, allow_pickle=False)
        box["sha256"], box["size"] = w.sha.hexdigest(), w.size

    write_atomic(path, write)
    meta = {"sha256": box["sha256"], "size": box["size"], "shape": list(arr.shape), "dtype": arr.dtype.str,
            "version": FEATURES_VERSION}
    write_bytes_atomic(sidecar_path(path), (json.dumps(meta, sort_keys=True) + "\n").encode("ascii"))


def _read_cache(path: Path, n: int, d: int) -> np.ndarray | None:
    """The cached array if it matches its sidecar and the expected (n, d) float32; else ``None`` (logged)."""
    def reject(reason: str) -> None:
        log.warning("feature cache %s %s; recomputing the features", path.name, reason)

    if not path.is_file():
        return None
    side = sidecar_path(path)
    try:
        meta = json.loads(side.read_text(encoding="ascii"))
        sha, size, shape, dtype = meta["sha256"], int(meta["size"]), tuple(meta["shape"]), str(meta["dtype"])
    except FileNotFoundError:
        return reject("has no checksum sidecar (written by an older hashviz or interrupted)")
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return reject("has an unreadable checksum sidecar")
    if shape != (n, d) or np.dtype(dtype) != np.float32:
        return reject(f"holds {dtype} {shape}, expected float32 {(n, d)}")
    try:
        if path.stat().st_size != size:
            return reject("does not have the size its sidecar records (replaced or truncated)")
        if sha256_file(path) != sha:
            return reject("does not match its SHA-256 checksum (replaced or corrupt)")
        from hashviz.npyio import HEADER_LOCK

        with HEADER_LOCK:
            arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return reject("could not be read")
    if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.shape != (n, d) or not np.isfinite(arr).all():
        return reject("does not hold finite float32 features of the expected shape")
    return arr


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:
        return True  # exists (another user's) or cannot tell: keep its file
    return True


def _tmp_writer_pid(name: str) -> int | None:
    """The writer's pid in a temporary name ``.<final>.<pid>.<ns>.tmp`` (or the older ``.<final>.<pid>.tmp``)."""
    parts = name[1:-len(".tmp")].split(".")
    if len(parts) >= 3 and parts[-1].isdigit() and parts[-2].isdigit():
        return int(parts[-2])
    if len(parts) >= 2 and parts[-1].isdigit():
        return int(parts[-1])
    return None


def feature_cache_leftovers(cache_dir=None, *, min_age_s: float = LEFTOVER_AGE_S) -> list[Path]:
    """Files in the feature cache that are safe to delete, sorted:

    - temporary files ``.<name>.<pid>.<ns>.tmp`` whose writing process is no longer running (or whose name has no
      pid);
    - sidecars ``<name>.npy.json`` whose array is gone;
    - arrays ``<name>.npy`` without a sidecar, older than ``min_age_s`` (an extraction writes the sidecar right after
      the array; such an array is never used, only recomputed and overwritten).

    Nothing in use is listed: a valid array with its sidecar, or a temporary file of a running extraction."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else _default_dir()
    if not root.is_dir():
        return []
    now = time.time()
    out = []
    for p in root.iterdir():
        if not p.is_file():
            continue
        name = p.name
        if name.startswith(".") and name.endswith(".tmp"):
            pid = _tmp_writer_pid(name)
            if pid is None or not _pid_alive(pid):
                out.append(p)
        elif name.endswith(".npy" + SIDECAR_SUFFIX):
            if not p.with_name(name[:-len(SIDECAR_SUFFIX)]).exists():
                out.append(p)
        elif name.endswith(".npy") and not sidecar_path(p).exists():
            try:
                old = now - p.stat().st_mtime >= float(min_age_s)
            except OSError:
                continue
            if old:
                out.append(p)
    return sorted(out)


# ---- extraction --------------------------------------------------------------------------------------------
def default_num_workers(dataset) -> int:
    """DataLoader workers when none are given: 0 for images held in memory (MNIST, digits, CIFAR — loading is an
    index, and the transform is cheap next to the model, so worker processes would only compete with the model for
    the cores; see docs/benchmarks.md), else ``min(4, cpu_count - 1)`` so files are decoded while the model runs."""
    if getattr(dataset, "images", None) is not None:
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def default_batch_size(backbone) -> int:
    """256 for small inputs (the bundled 28×28 CNN); 64 for 224-pixel ImageNet models: as fast on the CPU and a
    quarter of the memory (one resnet18 forward pass grows the peak memory by 0.46 GB at batch 64, 1.74 GB at 256)."""
    return 256 if _backbone(backbone).input_size <= 64 else 64


class _Failed:
    """A HashvizError raised while preparing a batch, carried to the main process intact (the DataLoader would
    re-raise it as a new exception whose message is the worker's traceback)."""

    def __init__(self, error: HashvizError) -> None:
        self.error = error


class _Batches:
    """Map-style dataset whose item ``i`` is batch ``i``: images ``[i·b, (i+1)·b)`` loaded and transformed."""

    def __init__(self, dataset, transform: Callable, n: int, batch_size: int) -> None:
        self.dataset, self.transform, self.n, self.batch_size = dataset, transform, n, batch_size

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __getitem__(self, i: int):
        start = int(i) * self.batch_size
        idx = np.arange(start, min(start + self.batch_size, self.n))
        try:
            return self.transform(self.dataset.load_images(idx))
        except HashvizError as e:
            return _Failed(e)


def _stopped(done: int, n: int) -> StoppedError:
    return StoppedError(f"feature extraction stopped after {done} of {n} images; nothing was cached",
                        "start it again to compute the features from the beginning")


def extract_features(dataset, backbone="mnist_cnn", *, batch_size: int | None = None,
                     progress: Callable[[int, int], None] | None = None, cache_dir=None,
                     should_stop: Callable[[], bool] | None = None, use_cache: bool = True,
                     device: str | None = None, num_workers: int | None = None) -> np.ndarray:
    """Backbone features of every image of ``dataset``: float32 (n, output_dim), rows in dataset order.

    ``backbone``: a name or a :class:`~hashviz.features.backbones.Backbone` (with its weights). ``batch_size``:
    default :func:`default_batch_size`. ``num_workers``: DataLoader worker processes that load and transform
    batches (default :func:`default_num_workers`); the features do not depend on it. ``progress(done, total)``
    after each batch (and once with (n, n) on a cache hit); :class:`hashviz.progress.StageClock` turns these into
    a rate and time left. ``should_stop()`` is polled before each batch; when it returns True the workers are shut
    down, a :class:`~hashviz.errors.StoppedError` is raised and nothing is cached. ``device``: a torch device
    (default: CUDA when available, else CPU); it is not part of the cache key."""
    import torch
    from torch.utils.data import DataLoader

    if getattr(dataset, "embeddings", None) is not None or not dataset.has_images:
        raise InvalidInputError(f"dataset {dataset.name} has no images to run a backbone on",
                                "an embeddings file already holds the embeddings: use dataset.embeddings directly")
    bb = _backbone(backbone)
    batch_size = default_batch_size(bb) if batch_size is None else batch_size
    if int(batch_size) < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}", "leave it unset for the default")
    workers = default_num_workers(dataset) if num_workers is None else int(num_workers)
    if workers < 0:
        raise InvalidInputError(f"num_workers must be >= 0, got {num_workers}",
                                "0 loads batches in this process; leave it unset for the default")
    n, d = dataset.n, bb.output_dim
    path = feature_cache_path(dataset, bb, cache_dir) if use_cache else None
    if path is not None:
        cached = _read_cache(path, n, d)
        if cached is not None:
            if progress is not None:
                progress(n, n)
            return cached
    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = dev.type == "cuda"
    model = bb.load_model().to(dev)
    source = _Batches(dataset, bb.transform, n, int(batch_size))
    loader = DataLoader(source, batch_size=None, shuffle=False, num_workers=workers, pin_memory=cuda,
                        prefetch_factor=2 if workers else None)
    out = np.empty((n, d), dtype=np.float32)
    done = 0
    batches = None
    try:
        with torch.inference_mode():
            for b in range(len(source)):
                if should_stop is not None and should_stop():
                    raise _stopped(done, n)
                if batches is None:
                    batches = iter(loader)  # workers start here, after the first stop check
                x = next(batches)
                if isinstance(x, _Failed):
                    raise x.error
                feats = model(x.to(dev, non_blocking=cuda))
                if feats.ndim != 2 or feats.shape[1] != d:
                    raise InvalidInputError(f"{bb.name} produced features of shape {tuple(feats.shape)}, "
                                            f"expected (.., {d})", "the weights do not match the backbone")
                start = b * source.batch_size
                out[start:start + len(feats)] = feats.float().cpu().numpy()
                done = start + len(feats)
                if progress is not None:
                    progress(done, n)
    finally:
        if batches is not None and hasattr(batches, "_shutdown_workers"):
            batches._shutdown_workers()  # join the workers now (also on stop or error), not at garbage collection
        del batches
    if path is not None:
        _write_cache(path, out)
    return out
