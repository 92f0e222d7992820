"""What the app needs from prepared runs, UI-free: list them, load their embeddings and images, prepare new
ones (with progress and a stop flag), import a user's embeddings file, and keep live-rotation checkpoints.

A *run* is one (dataset, backbone, head) with embeddings for one or more bit lengths. Runs are found on disk,
so a reload or a second browser finds them again. This module is the one seam between the pages and the
pipeline (``hashviz.pipeline`` / ``hashviz.store``): pages never touch files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hashviz.embeddings import Embeddings
from hashviz.errors import InvalidInputError, StoppedError, StoreError

DEFAULT_BITS = (16, 32, 48, 64)
DEFAULT_RUN = {"dataset": "mnist5k", "backbone": "mnist_cnn", "head": "cel", "bits": DEFAULT_BITS}
SCHEMA = 1

Progress = Callable[[str, int, int], None]


def app_root() -> Path:
    from hashviz.paths import home

    return home() / "app"


def _runs_dir() -> Path:
    return app_root() / "runs"


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def run_key(config: Mapping) -> str:
    """Stable key of a run config (dataset, options, backbone, weights, head, options) — not the bit lengths."""
    cfg = {k: v for k, v in config.items() if k != "bits"}
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=_jsonable).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunInfo:
    """A prepared (or partly prepared) run as found on disk."""

    key: str
    dataset: str
    backbone: str
    head: str
    bits: tuple[int, ...]
    config: Mapping = field(default_factory=dict)
    created: float = 0.0
    summary: Mapping = field(default_factory=dict)  # {"16": {"sign": mAP, "itq": …, "hq": …}, …}

    @property
    def label(self) -> str:
        return f"{self.dataset} · {self.backbone} · {self.head}"

    @property
    def status(self) -> str:
        wanted = tuple(self.config.get("bits", self.bits))
        missing = [b for b in wanted if b not in self.bits]
        return "ready" if not missing else f"partial (missing {', '.join(map(str, missing))} bits)"

    def to_dict(self) -> dict:
        return asdict(self)


# ---- listing and loading --------------------------------------------------------------------------------------
def _run_dir(key: str) -> Path:
    if not key or not all(c in "0123456789abcdef" for c in key):
        raise InvalidInputError(f"not a run key: {key!r}", "pick a run from the list of prepared runs")
    return _runs_dir() / key


def _read_info(d: Path) -> RunInfo | None:
    try:
        meta = json.loads((d / "run.json").read_text())
    except (OSError, ValueError):
        return None
    if meta.get("schema") != SCHEMA:
        return None
    bits = tuple(sorted(int(p.stem.split("_")[1]) for p in d.glob("emb_*.npz")))
    if not bits:
        return None
    cfg = meta.get("config", {})
    return RunInfo(key=d.name, dataset=cfg.get("dataset", "?"), backbone=cfg.get("backbone") or "—",
                   head=cfg.get("head") or "—", bits=bits, config=cfg, created=float(meta.get("created", 0)),
                   summary=meta.get("summary", {}))


def list_runs() -> list[RunInfo]:
    """Prepared runs, newest first (a run counts once at least one bit length is on disk)."""
    root = _runs_dir()
    if not root.is_dir():
        return []
    runs = [r for r in (_read_info(d) for d in root.iterdir() if d.is_dir()) if r is not None]
    return sorted(runs, key=lambda r: -r.created)


def get_run(key: str | None) -> RunInfo | None:
    if not key:
        return None
    try:
        d = _run_dir(key)
    except InvalidInputError:
        return None
    return _read_info(d) if d.is_dir() else None


def load_embeddings(key: str, n_bits: int) -> Embeddings:
    path = _run_dir(key) / f"emb_{int(n_bits)}.npz"
    if not path.is_file():
        raise StoreError(f"run {key} has no {n_bits}-bit embeddings", "prepare that bit length on Data & model")
    return Embeddings.load(path)


def load_dataset(key: str):
    """The run's ImageDataset (images for thumbnails), or ``None`` for an embeddings file without images."""
    run = get_run(key)
    if run is None:
        raise StoreError(f"no prepared run {key}", "prepare one on Data & model")
    cfg = run.config
    if cfg.get("dataset") == "embeddings":
        return None
    from hashviz.data import get_dataset

    return get_dataset(cfg["dataset"], **dict(cfg.get("dataset_options") or {}))


def thumbnails(key: str, emb: Embeddings, rows: Sequence[int], size: int = 56) -> np.ndarray:
    """uint8 (k, size, size, 3) images of embedding rows (grey placeholders when the run has no images)."""
    from hashviz.data.thumbnails import PLACEHOLDER_GREY, resize_images

    rows = np.asarray(rows, dtype=np.int64)
    if emb.thumbnails is not None:
        return resize_images(emb.thumbnails[rows], size)
    stored = _run_dir(key) / "images.npy"
    if stored.is_file():
        try:
            images = np.load(stored, mmap_mode="r", allow_pickle=False)
            if len(images) == emb.n:
                return resize_images(np.asarray(images[emb.ids[rows]]), size)
        except (OSError, ValueError):
            pass
    ds = load_dataset(key)
    if ds is None or not ds.has_images:
        return np.full((len(rows), size, size, 3), PLACEHOLDER_GREY, dtype=np.uint8)
    from hashviz.data.thumbnails import thumbnails as thumbs

    return thumbs(ds, emb.ids[rows], size)


# ---- preparing ------------------------------------------------------------------------------------------------
def _mark(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


def _write_run(key: str, config: Mapping, summary: Mapping | None = None) -> Path:
    d = _runs_dir() / key
    old = {}
    if (d / "run.json").is_file():
        try:
            old = json.loads((d / "run.json").read_text())
        except ValueError:
            old = {}
    summ = dict(old.get("summary", {}))
    summ.update(summary or {})
    _write_json(d / "run.json", {"schema": SCHEMA, "config": dict(config), "created": old.get("created", time.time()),
                                 "summary": summ})
    return d


def prepare(dataset: str = "mnist5k", backbone: str = "mnist_cnn", head: str = "cel",
            bits: Sequence[int] = DEFAULT_BITS, *, dataset_options: Mapping | None = None,
            backbone_weights: str | None = None, head_options: Mapping | None = None, epochs: int | None = None,
            progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> RunInfo:
    """Dataset → backbone features → one head per bit length → embeddings, each bit length saved as soon as it is
    ready (a stop keeps finished bit lengths). ``progress(stage, done, total)``; ``should_stop()`` polled often."""
    from hashviz.data import get_dataset

    bits = tuple(sorted({int(b) for b in bits}))
    if not bits or min(bits) < 2 or max(bits) > 1024:
        raise InvalidInputError(f"bit lengths must be between 2 and 1024, got {bits}", "e.g. 16, 32, 48, 64")
    dataset_options = {k: v for k, v in dict(dataset_options or {}).items() if v not in (None, "")}
    config = {"dataset": dataset, "dataset_options": dataset_options, "backbone": backbone,
              "backbone_weights": backbone_weights, "head": head, "head_options": dict(head_options or {}),
              "epochs": epochs, "bits": list(bits)}
    if dataset == "embeddings":
        config.update(backbone=None, backbone_weights=None, head=None)
    key = run_key(config)
    stop = should_stop or (lambda: False)
    _mark(progress, "dataset", 0, 1)
    ds = get_dataset(dataset, **dataset_options)
    _mark(progress, "dataset", 1, 1)
    if ds.embeddings is not None:
        return _save_embeddings_run(key, config, ds.embeddings)
    from hashviz.features.backbones import get_backbone
    from hashviz.features.extract import extract_features

    _save_images(key, ds)
    from hashviz.heads.train import fit_head_steps

    bb = get_backbone(backbone, backbone_weights)
    feats = extract_features(ds, bb, progress=lambda d, t: _mark(progress, "features", d, t), should_stop=stop)
    train = ds.indices("train")
    opts = {} if epochs is None else {"epochs": int(epochs)}
    d = _write_run(key, config)
    for b in bits:
        if (d / f"emb_{b}.npz").is_file():
            _mark(progress, f"head {b} bits", 1, 1)
            continue
        run = fit_head_steps(feats[train], ds.labels[train], method=head, n_bits=b, n_classes=ds.n_classes,
                             options=dict(head_options or {}), **opts)
        for st in run:
            _mark(progress, f"head {b} bits", int(st.step), int(st.total_steps))
            if stop():
                raise StoppedError(f"stopped while training the {b}-bit head; finished bit lengths are kept",
                                   "press Prepare again to continue with the missing bit lengths")
        z = run.result().embed(feats)
        emb = Embeddings(z=z, labels=ds.labels, split=ds.split, ids=np.arange(ds.n), class_names=ds.class_names,
                         meta={"run": key, "n_bits": b, **{k: v for k, v in config.items() if k != "bits"}})
        emb.save(d / f"emb_{b}.npz")
        _write_run(key, config, {str(b): _quick_summary(emb)})
    return get_run(key)


def _save_images(key: str, ds, max_images: int = 200_000) -> None:
    """All images once, at most 64 px, so pages draw thumbnails without reloading the dataset."""
    from hashviz.data.thumbnails import resize_images

    path = _runs_dir() / key / "images.npy"
    if path.is_file() or not ds.has_images or ds.n > max_images:
        return
    shape = ds.image_shape
    size = min(64, max(shape[:2]))
    out = np.empty((ds.n, size, size, 3), dtype=np.uint8)
    for start in range(0, ds.n, 2048):
        idx = np.arange(start, min(start + 2048, ds.n))
        imgs = ds.load_images(idx)
        out[idx] = resize_images(imgs, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".images.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, out, allow_pickle=False)
    os.replace(tmp, path)


def _quick_summary(emb: Embeddings) -> dict:
    from hashviz.evaluate import evaluate

    return {name: round(evaluate(emb, name).map, 4) for name in ("sign", "itq")}


def _save_embeddings_run(key: str, config: Mapping, emb: Embeddings) -> RunInfo:
    d = _write_run(key, {**config, "bits": [emb.dim]})
    emb.save(d / f"emb_{emb.dim}.npz")
    return get_run(key)


def import_embeddings(data: bytes, name: str, max_bytes: int | None = None) -> RunInfo:
    """A user's embeddings ``.npz`` (bytes of an upload) → validated, saved as a run of its own."""
    import io

    if max_bytes is not None and len(data) > max_bytes:
        raise InvalidInputError(f"{name} is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit",
                                "use the CLI for big files: python -m hashviz evaluate FILE.npz")
    emb = Embeddings.load(io.BytesIO(data), name=name)
    digest = hashlib.sha256(data).hexdigest()[:16]
    config = {"dataset": "embeddings", "dataset_options": {"file": name, "sha256": digest}, "backbone": None,
              "head": None, "bits": [emb.dim]}
    return _save_embeddings_run(run_key(config), config, emb)


def delete_run(key: str) -> None:
    shutil.rmtree(_run_dir(key), ignore_errors=True)


# ---- rotation checkpoints -------------------------------------------------------------------------------------
def _rot_dir(key: str, n_bits: int) -> Path:
    return _run_dir(key) / "rotations" / str(int(n_bits))


def _safe_label(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:80]


def save_rotation(key: str, n_bits: int, label: str, *, rotation: np.ndarray, curve: list[dict],
                  params: Mapping, status: str, mean: np.ndarray | None = None) -> Path:
    """Checkpoint a (possibly unfinished) rotation fit: rotation + mean (.npz) and curve + params (.json)."""
    d = _rot_dir(key, n_bits) / _safe_label(label)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".rotation.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, rotation=np.asarray(rotation, dtype=np.float64),
                 mean=np.zeros(n_bits) if mean is None else np.asarray(mean, dtype=np.float64))
    os.replace(tmp, d / "rotation.npz")
    _write_json(d / "fit.json", {"label": label, "params": dict(params), "status": status, "curve": curve,
                                 "saved": time.time()})
    return d


def list_rotations(key: str, n_bits: int) -> list[str]:
    d = _rot_dir(key, n_bits)
    if not d.is_dir():
        return []
    out = []
    for p in sorted(d.iterdir()):
        if (p / "rotation.npz").is_file() and (p / "fit.json").is_file():
            try:
                out.append(json.loads((p / "fit.json").read_text())["label"])
            except (ValueError, KeyError):
                continue
    return out


def load_rotation(key: str, n_bits: int, label: str) -> dict:
    """{"rotation", "mean", "curve", "params", "status", "label"}; a corrupt checkpoint raises StoreError."""
    d = _rot_dir(key, n_bits) / _safe_label(label)
    try:
        meta = json.loads((d / "fit.json").read_text())
        with np.load(d / "rotation.npz", allow_pickle=False) as f:
            R, mean = f["rotation"], f["mean"]
    except (OSError, ValueError, KeyError) as e:
        raise StoreError(f"the checkpoint {label!r} ({n_bits} bits) is unreadable: {e}",
                         "start the rotation again; the broken checkpoint will be overwritten") from None
    if R.shape != (n_bits, n_bits):
        raise StoreError(f"the checkpoint {label!r} has a {R.shape} rotation for {n_bits} bits", "start again")
    return {**meta, "rotation": R, "mean": mean}


def delete_rotation(key: str, n_bits: int, label: str) -> None:
    shutil.rmtree(_rot_dir(key, n_bits) / _safe_label(label), ignore_errors=True)


# ---- uploads --------------------------------------------------------------------------------------------------
def save_weights_upload(data: bytes, name: str, backbone: str) -> str:
    """Save an uploaded state_dict under the app folder and check it loads into ``backbone`` (no pickle code
    runs: ``torch.load(weights_only=True)``); returns the saved path. A wrong file raises with the mismatch."""
    from hashviz.features.backbones import get_backbone

    digest = hashlib.sha256(data).hexdigest()[:16]
    path = app_root() / "uploads" / f"{digest}_{_safe_label(Path(name).name)}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    try:
        get_backbone(backbone, path).load_model()
    except Exception:
        path.unlink(missing_ok=True)
        raise
    return str(path)
