"""What the app needs from a hashviz home, UI-free — a thin layer over :mod:`hashviz.pipeline` and
:class:`hashviz.store.RunStore`: list prepared runs, load their embeddings, stored quantizers and images, prepare
new ones (progress and stop), import a user's embeddings file, and keep live-rotation checkpoints.

A *run* is one ``prepare`` result: (dataset, backbone, head) with embeddings for one or more bit lengths and the
sign / ITQ / HQ quantizers the pipeline fitted and scored. Everything lives in the store under the hashviz home
folder, so a reload or a second browser finds it again, and the CLI (``hashviz prepare``) and the app share
results. :class:`Workspace` takes the home it works on explicitly (the app's cached loaders pass theirs).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hashviz.embeddings import Embeddings, load_lengths
from hashviz.errors import InvalidInputError, StoreError
from hashviz.fileio import write_bytes_atomic
from hashviz.pipeline import DEFAULT_BACKBONE, DEFAULT_BITS, DEFAULT_DATASET, DEFAULT_HEAD
from hashviz.quantize.base import Quantizer
from hashviz.store import RunStore

DEFAULT_RUN = {"dataset": DEFAULT_DATASET, "backbone": DEFAULT_BACKBONE, "head": DEFAULT_HEAD}
ROTATION_STAGE = "live_rotations"

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunInfo:
    """A prepared run as found in the store (``key`` identifies it everywhere; ``label`` is for people)."""

    key: str
    dataset: str
    backbone: str
    head: str
    bit_lengths: tuple[int, ...]
    seed: int = 0
    config: Mapping = field(default_factory=dict)
    created: float = 0.0
    summary: Mapping = field(default_factory=dict)  # {"16": {"sign": mAP, "itq": …, "hq": …}, …}
    description: str = ""
    skipped: tuple[tuple[str, str], ...] = ()  # (path, reason) of dataset files that could not be used
    name: str = ""  # the run's unique, renamable name (hashviz.catalog)

    @property
    def label(self) -> str:
        """What people read: the catalog name (unique), else dataset · backbone · head."""
        return self.name or f"{self.dataset} · {self.backbone} · {self.head}"

    @property
    def status(self) -> str:
        return "ready"

    def to_dict(self) -> dict:
        return asdict(self)


def _info(res, name: str = "") -> RunInfo:
    return RunInfo(key=res.key, dataset=res.dataset, backbone=res.backbone or "(embeddings file)",
                   head=res.head or "—", bit_lengths=tuple(res.bit_lengths), seed=res.seed, config=dict(res.config),
                   created=res.created, summary={str(r.n_bits): dict(r.map) for r in res.runs},
                   description=res.summary, skipped=tuple(getattr(res, "skipped", ())), name=name)


@dataclass(frozen=True)
class FittedQuantizer:
    """A fitted quantizer as the pages use it: ``id`` keys it everywhere (a registry name such as ``"hq"``, or
    ``"live:<label>"`` for a rotation trained on the Rotation page), ``label`` is what people read, and
    ``provenance`` says what it is (exported with every table and file)."""

    id: str
    label: str
    quantizer: Quantizer
    provenance: Mapping = field(default_factory=dict)


def stored_fitted(name: str, quantizer) -> FittedQuantizer:
    """A quantizer ``prepare`` fitted (or the app fitted the same way): labelled from the registry."""
    from hashviz.quantize import quantizer_label

    return FittedQuantizer(id=name, label=quantizer_label(name), quantizer=quantizer,
                           provenance={**quantizer.to_dict(), "source": "prepare (fitted on the train split)"})


def live_fitted(saved: Mapping, quantizer, *, own: bool = True) -> FittedQuantizer:
    """A rotation trained live (a :meth:`Workspace.load_live_fit` record): recorded as the fit it was, with its
    quantizer, options (loss, learning rate, batch, steps), the steps it ran and its status."""
    from hashviz.quantize import QUANTIZERS

    params = dict(saved.get("params") or {})
    name = str(params.get("quantizer", "hq"))
    curve = saved.get("curve") or []
    cls = QUANTIZERS.get(name)
    label = f"live {saved['name']}" + ("" if own else " (shared)")
    return FittedQuantizer(
        id=f"live:{saved['fit_id']}", label=label, quantizer=quantizer,
        provenance={"quantizer": name, "class": cls.__name__ if cls is not None else name,
                    "source": "live fit on the Rotation page (train split)", "fit": saved["fit_id"],
                    "name": saved["name"], "params": dict(params.get("options") or {}),
                    "steps_run": int(curve[-1]["step"]) if curve else 0, "status": saved.get("status"),
                    "shared": bool(saved.get("shared")), "probe_queries": params.get("probe_queries"),
                    "map_every": params.get("map_every"), "seed": params.get("seed", 0)})


HEAD_COLUMNS = {"n_bits": "bits", "train_seconds": "training (s)", "final_loss": "final loss",
                "codebook_accuracy": "codebook accuracy (queries)", "centers_min_distance": "centres min distance"}


class Workspace:
    """One hashviz home as the app sees it. Every method reads or writes under ``home`` only (default: the
    current :func:`hashviz.paths.home`), so the app's caches keyed by home stay true to their key."""

    def __init__(self, home: str | os.PathLike | None = None) -> None:
        from hashviz.paths import home as default_home

        self.home = Path(home).expanduser() if home is not None else default_home()
        self.store = RunStore(self.home)

    def __repr__(self) -> str:
        return f"Workspace({str(self.home)!r})"

    @property
    def app_root(self) -> Path:
        return self.home / "app"

    # ---- listing and loading ----------------------------------------------------------------------------
    def names(self) -> dict[str, str]:
        """Run key → its unique name (:mod:`hashviz.catalog`)."""
        from hashviz.catalog import list_runs

        return {r.key: r.name for r in list_runs(self.store)}

    def list_runs(self) -> list[RunInfo]:
        """Prepared runs with their names, newest first."""
        from hashviz.pipeline import list_prepared

        names = self.names()
        return [_info(r, names.get(r.key, "")) for r in list_prepared(self.store)]

    def rename_run(self, key: str, name: str) -> str:
        """Give run ``key`` a new unique name (refused when another run has it); returns the name kept."""
        from hashviz.catalog import rename_run

        return rename_run(self.store, key, name)

    def delete_run(self, key: str):
        """Delete run ``key`` with the entries no other run uses (:func:`hashviz.catalog.delete_run`)."""
        from hashviz.catalog import delete_run

        return delete_run(self.store, key)

    def result(self, key: str):
        """The run's :class:`~hashviz.pipeline.PrepareResult`; StoreError when it is gone or damaged."""
        from hashviz.pipeline import load_prepared

        if not key or not str(key).isalnum():
            raise InvalidInputError(f"not a run key: {key!r}", "pick a run from the list of prepared runs")
        res = load_prepared(str(key), self.store)
        if res is None:
            raise StoreError(f"no prepared run {key} (or its files are damaged)",
                             "prepare it again on Data & model; stored stages are reused")
        return res

    def get_run(self, key: str | None) -> RunInfo | None:
        if not key:
            return None
        try:
            res = self.result(key)
        except (StoreError, InvalidInputError):
            return None
        return _info(res, self.names().get(res.key, ""))

    def load_embeddings(self, key: str, n_bits: int) -> Embeddings:
        # the store's own file (written by prepare): no upload limit
        return Embeddings.load(self.result(key).run(int(n_bits)).embeddings, max_bytes=None)

    def stored_quantizer_names(self, key: str, n_bits: int) -> tuple[str, ...]:
        """The quantizers ``prepare`` fitted for this run and bit length, in order (sign, ITQ, HQ, then the
        head's paired ones, e.g. random search for SDSH)."""
        return tuple(self.result(key).run(int(n_bits)).quantizers)

    def stored_quantizer(self, key: str, n_bits: int, name: str):
        """The quantizer ``name`` that ``prepare`` fitted and scored, or ``None`` if not stored."""
        from hashviz.pipeline import load_quantizer

        qkey = self.result(key).run(int(n_bits)).quantizers.get(name)
        return None if qkey is None else load_quantizer(qkey, self.store)

    def head_details(self, key: str) -> list[dict]:
        """One display row per bit length on the run's heads: training time, final loss and, for centre-based
        methods, the codebook accuracy on the query split and the centres' minimum distance
        (``hashviz.results``'s diagnostics); columns that are empty for every row (NaN: the method has no
        centres) are left out."""
        import math

        from hashviz.results import head_diagnostics

        res = self.result(key)
        rows = [asdict(d) for d in (head_diagnostics(str(res.head), run, self.store) for run in res.runs)
                if d is not None]
        shown = [k for k in HEAD_COLUMNS if any(not (isinstance(r[k], float) and math.isnan(r[k])) for r in rows)]
        return [{HEAD_COLUMNS[k]: r[k] for k in shown} for r in rows]

    def head_similarities(self, key: str, n_bits: int) -> tuple[np.ndarray, np.ndarray] | None:
        """SHC runs: (class similarity S from the classifier's confusions, centre similarity (1/K)·H Hᵀ) as
        stored with the head of ``n_bits``; ``None`` for heads that store no such arrays (every other method)."""
        head_key = self.result(key).run(int(n_bits)).head_key
        entry = self.store.get_key("heads", head_key) if head_key else None
        if entry is None:
            return None
        arrays = entry.arrays
        if "class_similarity" not in arrays or "center_similarity" not in arrays:
            return None
        return (np.asarray(arrays["class_similarity"], dtype=float),
                np.asarray(arrays["center_similarity"], dtype=float))

    def load_dataset(self, key: str):
        """The run's ImageDataset (for thumbnails), or ``None`` for an embeddings file."""
        res = self.result(key)
        if res.dataset == "embeddings":
            return None
        from hashviz.data import get_dataset

        return get_dataset(res.dataset, seed=res.seed, **dict(res.config.get("dataset_options") or {}))

    def class_similarity(self, key: str):
        """The run's (c, c) class similarity from its dataset's label hierarchy, or None."""
        from hashviz.data.hierarchy import dataset_similarity

        return dataset_similarity(self.load_dataset(key))

    def thumbnails(self, key: str, emb: Embeddings, rows: Sequence[int], size: int = 56,
                   dataset=None) -> np.ndarray:
        """uint8 (k, size, size, 3) images of embedding rows (grey placeholders when the run has no images).

        Small square thumbnails (MNIST's 28 px) come back at their own size, grey staying grey: the page enlarges
        them (``image-rendering: pixelated``), so each PNG is a few hundred bytes instead of ~1.3 KB and a grid of
        80 images reaches the browser several times faster."""
        from hashviz.data.thumbnails import PLACEHOLDER_GREY, resize_images

        rows = np.asarray(rows, dtype=np.int64)
        if emb.thumbnails is not None:
            t = emb.thumbnails[rows]
            if t.shape[1] == t.shape[2] <= size:
                return np.ascontiguousarray(t)
            return resize_images(t, size)
        ds = dataset if dataset is not None else self.load_dataset(key)
        if ds is None or not ds.has_images:
            return np.full((len(rows), size, size, 3), PLACEHOLDER_GREY, dtype=np.uint8)
        from hashviz.data.thumbnails import thumbnails as thumbs

        return thumbs(ds, emb.ids[rows], size)

    # ---- preparing --------------------------------------------------------------------------------------
    def prepare(self, dataset: str = DEFAULT_DATASET, backbone: str = DEFAULT_BACKBONE, head: str = DEFAULT_HEAD,
                bit_lengths: Sequence[int] = DEFAULT_BITS, *, dataset_options: Mapping | None = None,
                backbone_weights: str | None = None, head_options: Mapping | None = None,
                progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
                source_name: str | None = None, max_npz_bytes: int | None = None) -> RunInfo:
        """:func:`hashviz.pipeline.prepare` (the CLI's ``prepare``) → the new run. Empty options are dropped;
        ``source_name`` names an uploaded file's run after the file; ``max_npz_bytes``: the size limit for an
        embeddings file (default :data:`hashviz.embeddings.MAX_NPZ_BYTES`; a file opened by path from a data
        root gets :func:`hashviz.paths.max_open_bytes`)."""
        from contextlib import nullcontext

        from hashviz.embeddings import npz_size_limit
        from hashviz.pipeline import prepare as pipeline_prepare

        dopts = {k: v for k, v in dict(dataset_options or {}).items() if v not in (None, "")}
        with nullcontext() if max_npz_bytes is None else npz_size_limit(int(max_npz_bytes)):
            res = pipeline_prepare(dataset, backbone, head, tuple(int(b) for b in bit_lengths), store=self.store,
                                   dataset_options=dopts, head_options=dict(head_options or {}),
                                   weights=backbone_weights, progress=progress, should_stop=should_stop,
                                   source_name=source_name)
        return self.get_run(res.key) or _info(res)

    def data_roots(self) -> tuple[Path, ...]:
        """The folders the app may open paths from (:func:`hashviz.paths.data_roots` of this home)."""
        from hashviz.paths import data_roots

        return data_roots(self.home)

    def confine(self, path) -> Path:
        """A path typed into the app, resolved inside the data roots (:func:`hashviz.paths.confine`); anything
        else raises one message that does not say whether the path exists."""
        from hashviz.paths import confine

        return confine(path, self.data_roots())

    def open_embeddings_path(self, path, max_bytes: int | None = None) -> Path:
        """An embeddings file on the server, typed into the app (too big to upload): confined to the data roots,
        then checked from its headers (layout, size within ``max_bytes``, default
        :func:`hashviz.paths.max_open_bytes`) without reading the arrays; returns the resolved path to prepare
        with ``max_npz_bytes=max_bytes``."""
        from hashviz.embeddings import inspect_layout
        from hashviz.paths import max_open_bytes

        p = self.confine(path)
        if not p.is_file():
            raise InvalidInputError(f"no embeddings file at {p}" + (" (it is a folder)" if p.is_dir() else ""),
                                    "give the path of an .npz file inside a data folder")
        inspect_layout(p, max_bytes=max_open_bytes() if max_bytes is None else max_bytes, label=p.name)
        return p

    def _save_upload(self, data: bytes, suffix: str) -> Path:
        digest = hashlib.sha256(data).hexdigest()[:16]
        path = self.app_root / "uploads" / f"{digest}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file():
            write_bytes_atomic(path, data)
        return path

    def save_upload(self, data: bytes, name: str, max_bytes: int | None = None) -> Path:
        """A user's embeddings ``.npz`` (the bytes of an upload): checked (a message naming what is wrong) and
        saved under the home's uploads folder by content hash; returns the path to prepare."""
        if max_bytes is not None and len(data) > max_bytes:
            raise InvalidInputError(f"{name} is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB upload "
                                    "limit", "open it by path instead (put it in a data folder: the field under the "
                                    "uploader), or use the CLI for big files (hashviz prepare --dataset embeddings "
                                    "--path FILE), or raise server.maxUploadSize in .streamlit/config.toml")
        load_lengths(io.BytesIO(data), name=name)  # the layout check, with a message naming what is wrong
        return self._save_upload(data, ".npz")

    def import_embeddings(self, data: bytes, name: str, max_bytes: int | None = None,
                          progress: Progress | None = None) -> RunInfo:
        """:meth:`save_upload` then prepared as a run of its own, named after the file (sign / ITQ / HQ fitted
        and scored), so every page works on it."""
        path = self.save_upload(data, name, max_bytes)
        return self.prepare("embeddings", dataset_options={"path": str(path)}, progress=progress, source_name=name)

    def save_weights_upload(self, data: bytes, name: str, backbone: str) -> str:
        """Save an uploaded state_dict and check it loads into ``backbone`` (``torch.load(weights_only=True)``:
        no pickle code runs); returns its path. A wrong file raises with the mismatched keys."""
        from hashviz.features.backbones import get_backbone

        path = self._save_upload(data, Path(name).suffix or ".pt")
        try:
            get_backbone(backbone, path, label=name).load_model()
        except Exception:
            path.unlink(missing_ok=True)
            raise
        return str(path)

    # ---- live fits (store stage "live_rotations") -------------------------------------------------------
    # One entry per fit: config {"prepared": run key, "n_bits", "fit": fit id}; extra {"name", "owner", "shared",
    # "params", "status", "curve", "created"}; arrays rotation and mean. A new Start is a new fit id, so nothing is
    # ever overwritten; a fit belongs to the browser workspace (``owner`` token) that started it, and others see it
    # only when it is shared.
    @staticmethod
    def _fit_config(key: str, n_bits: int, fit_id: str) -> dict:
        return {"prepared": str(key), "n_bits": int(n_bits), "fit": str(fit_id)}

    def save_live_fit(self, key: str, n_bits: int, fit_id: str, *, name: str, owner: str, rotation: np.ndarray,
                      curve: list[dict], params: Mapping, status: str, mean: np.ndarray | None = None,
                      shared: bool = False, created: float | None = None) -> None:
        """Checkpoint a live fit: rotation and mean as arrays, curve and parameters as JSON; a finished (or
        stopped) fit becomes a complete entry, one still running a ``running`` checkpoint (StoreError when the
        home cannot be written)."""
        import time

        arrays = {"rotation": np.asarray(rotation, dtype=np.float64),
                  "mean": np.zeros(n_bits) if mean is None else np.asarray(mean, dtype=np.float64)}
        extra = {"name": name, "owner": owner, "shared": bool(shared), "params": dict(params), "status": status,
                 "curve": list(curve), "created": time.time() if created is None else float(created)}
        state = "running" if status == "running" else "complete"
        self.store.checkpoint(ROTATION_STAGE, self._fit_config(key, n_bits, fit_id), arrays, extra=extra,
                              status=state)

    def live_fits(self, key: str, n_bits: int, owner: str | None = None) -> list[LiveFit]:
        """The live fits of this run and bit length that ``owner`` may see (its own and shared ones; every fit
        when ``owner`` is None), oldest first."""
        out = []
        # another session may be replacing a checkpoint right now: retry, then skip, never set aside
        for e in self.store.list(ROTATION_STAGE, running=True, retries=2):
            c, x = e.config, e.extra
            if c.get("prepared") != key or int(c.get("n_bits", -1)) != int(n_bits) or "fit" not in c:
                continue
            fit = LiveFit(fit_id=str(c["fit"]), name=str(x.get("name", "")), owner=str(x.get("owner", "")),
                          shared=bool(x.get("shared")), status=str(x.get("status", "")),
                          step=int(x["curve"][-1]["step"]) if x.get("curve") else 0,
                          params=dict(x.get("params") or {}), created=float(x.get("created", 0.0)),
                          saved=float(e.status.get("written", 0.0)))
            if owner is None or fit.owner == owner or fit.shared:
                out.append(fit)
        return sorted(out, key=lambda f: (f.created, f.fit_id))

    def load_live_fit(self, key: str, n_bits: int, fit_id: str) -> dict:
        """{"rotation", "mean", "curve", "params", "status", "name", "owner", "shared", "created", "saved",
        "fit_id"} of a saved live fit."""
        entry = self.store.get_key(ROTATION_STAGE, self.store.key(self._fit_config(key, n_bits, fit_id)),
                                   running=True, retries=2)
        if entry is None:
            raise StoreError(f"no saved live fit {fit_id} for {n_bits} bits", "train one on Rotation (live)")
        R = entry.arrays["rotation"]
        if R.shape != (n_bits, n_bits):
            raise StoreError(f"the saved rotation of fit {fit_id} is {R.shape} for {n_bits} bits", "train it again")
        return {**entry.extra, "rotation": R, "mean": entry.arrays.get("mean"), "fit_id": str(fit_id),
                "saved": float(entry.status.get("written", 0))}

    def _own(self, key: str, n_bits: int, fit_id: str, owner: str) -> dict:
        saved = self.load_live_fit(key, n_bits, fit_id)
        if saved.get("owner") != owner:
            raise InvalidInputError(f"the live fit {saved.get('name', fit_id)!r} belongs to another session",
                                    "only the session that trained a fit can change or discard it")
        return saved

    def share_live_fit(self, key: str, n_bits: int, fit_id: str, owner: str, shared: bool = True) -> None:
        """Let every session viewing this run see the fit (``shared=False``: only its owner again)."""
        saved = self._own(key, n_bits, fit_id, owner)
        self.save_live_fit(key, n_bits, fit_id, name=saved["name"], owner=owner, rotation=saved["rotation"],
                           curve=saved["curve"], params=saved["params"], status=saved["status"],
                           mean=saved["mean"], shared=shared, created=saved.get("created"))

    def delete_live_fit(self, key: str, n_bits: int, fit_id: str, owner: str) -> None:
        """Discard one of ``owner``'s fits (another session's fit is refused)."""
        self._own(key, n_bits, fit_id, owner)
        self.store.delete(ROTATION_STAGE, self._fit_config(key, n_bits, fit_id))


@dataclass(frozen=True)
class LiveFit:
    """A saved live fit as listed (without its arrays)."""

    fit_id: str
    name: str
    owner: str
    shared: bool
    status: str  # "running" (its last checkpoint was written while it ran), "stopped" or "done"
    step: int
    params: Mapping
    created: float
    saved: float

    @property
    def id(self) -> str:
        """Its quantizer id on the pages."""
        return f"live:{self.fit_id}"
