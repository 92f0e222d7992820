"""``prepare``: dataset → backbone features → one hashing head per bit length → embeddings → quantizers + mAP.

Every stage result lives in a :class:`~hashviz.store.RunStore` under its config key (see ``hashviz.config``), so a
second call with the same choices only reads files back. See docs/pipeline.md for the store layout and keys.

Progress: ``progress(stage, done, total)`` is called with ``stage`` one of

- ``"dataset"``    0/1 before loading, 1/1 after;
- ``"features"``   images done / images (one call with (n, n) on a cache hit);
- ``"heads"``      optimiser steps done / steps of all heads still to train (cached heads are skipped);
- ``"quantizers"`` quantizer fits done / fits still to do (each fit also scores mAP);

``should_stop()`` is polled between batches and steps; when it returns True a
:class:`~hashviz.errors.StoppedError` is raised and nothing half-done is stored (finished stages stay cached).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashviz import defaults
from hashviz.config import EmbeddingsConfig, FeatureConfig, HeadConfig, PrepareConfig, QuantizerConfig
from hashviz.errors import InvalidInputError, StoppedError, StoreError
from hashviz.store import Entry, RunStore
from hashviz.validate import check_choice, is_int

log = logging.getLogger(__name__)

DEFAULT_DATASET = defaults.DATASET
DEFAULT_BACKBONE = defaults.BACKBONE
DEFAULT_HEAD = defaults.HEAD
DEFAULT_BITS: tuple[int, ...] = defaults.BIT_LENGTHS
DEFAULT_QUANTIZERS: tuple[str, ...] = defaults.QUANTIZERS
MAX_BITS = 1024
TOP_K = defaults.TOP_K
THUMBNAIL_BUDGET_BYTES = 16 * 1024 * 1024  # images stored in each embeddings file when they fit in this
HEAD_TRAIN_KEYS = ("epochs", "batch_size", "lr", "weight_decay", "hidden", "dropout")

ProgressFn = Callable[[str, int, int], Any]


@dataclass(frozen=True)
class PreparedRun:
    """The results for one bit length: the embeddings file and each quantizer's store key and scores."""

    n_bits: int
    embeddings: Path
    embeddings_key: str
    head_key: str | None
    quantizers: dict[str, str] = field(default_factory=dict)  # quantizer name → key in stage "quantizers"
    map: dict[str, float] = field(default_factory=dict)  # quantizer name → mAP@all (ties expected)
    evaluations: dict[str, dict] = field(default_factory=dict)  # quantizer name → Evaluation.to_dict()
    embeddings_sha256: str = ""  # content hash of the embeddings file the quantizers were fitted on and scored

    def to_dict(self) -> dict:
        return {"n_bits": self.n_bits, "embeddings": str(self.embeddings), "map": dict(self.map),
                "embeddings_key": self.embeddings_key, "head_key": self.head_key,
                "quantizers": dict(self.quantizers), "evaluations": dict(self.evaluations),
                "embeddings_sha256": self.embeddings_sha256}


@dataclass(frozen=True)
class PrepareResult:
    """What ``prepare`` produced: one :class:`PreparedRun` per bit length, and where it all is."""

    key: str
    root: Path
    dataset: str
    backbone: str | None
    head: str | None
    seed: int
    runs: tuple[PreparedRun, ...]
    seconds: float
    cached: bool
    config: dict
    created: float = 0.0
    summary: str = ""
    skipped: tuple[tuple[str, str], ...] = ()  # (path, reason) of every dataset file that could not be used

    def run(self, n_bits: int) -> PreparedRun:
        for r in self.runs:
            if r.n_bits == int(n_bits):
                return r
        raise InvalidInputError(f"no run with {n_bits} bits", f"prepared bit lengths: {[r.n_bits for r in self.runs]}")

    @property
    def bit_lengths(self) -> tuple[int, ...]:
        return tuple(r.n_bits for r in self.runs)

    def to_dict(self) -> dict:
        return {"key": self.key, "root": str(self.root), "dataset": self.dataset, "backbone": self.backbone,
                "head": self.head, "seed": self.seed, "seconds": self.seconds, "cached": self.cached,
                "created": self.created, "summary": self.summary, "config": self.config,
                "skipped": [list(x) for x in self.skipped], "runs": [r.to_dict() for r in self.runs]}


# ---- validation ---------------------------------------------------------------------------------------------
def check_bit_lengths(bit_lengths, *, head: bool) -> tuple[int, ...]:
    """Bit lengths as a tuple of distinct ints in order; 1..1024 in general, 8..128 for hashing heads."""
    if is_int(bit_lengths):
        bit_lengths = (bit_lengths,)
    try:
        items = list(bit_lengths)
    except TypeError:
        raise InvalidInputError(f"bit lengths must be a list of integers, got {bit_lengths!r}",
                                "e.g. bit_lengths=(16, 32, 48, 64)") from None
    if not items:
        raise InvalidInputError("no bit lengths given", "e.g. --bits 16 32 48 64")
    out: list[int] = []
    for b in items:
        if not is_int(b):
            raise InvalidInputError(f"bit lengths must be integers, got {b!r}", "e.g. --bits 16 32 48 64")
        if not 1 <= int(b) <= MAX_BITS:
            raise InvalidInputError(f"bit length {int(b)} is out of range 1..{MAX_BITS}", "e.g. --bits 16 32 48 64")
        if head:
            from hashviz.heads.train import check_head_bits

            check_head_bits(int(b))
        if int(b) not in out:
            out.append(int(b))
    return tuple(out)


def check_quantizers(names: Sequence[str]) -> tuple[str, ...]:
    from hashviz.quantize import QUANTIZERS

    if isinstance(names, str):
        names = (names,)
    out = tuple(dict.fromkeys(str(n).strip().lower() for n in names))
    if not out:
        raise InvalidInputError("no quantizers given", f"choose from: {', '.join(QUANTIZERS)}")
    for n in out:
        check_choice(n, "quantizer", QUANTIZERS, hint=f"valid quantizers: {', '.join(QUANTIZERS)}")
    return out


def default_quantizers(head: str | None) -> tuple[str, ...]:
    """Sign, ITQ, HQ, then the quantizers the head method's paper pairs with it (``HeadLoss.paired_quantizers``)."""
    if not head:
        return DEFAULT_QUANTIZERS
    from hashviz.heads.losses import get_method

    return tuple(dict.fromkeys(DEFAULT_QUANTIZERS + tuple(get_method(head).paired_quantizers)))


#: the settings of a training-free head (pca, lsh): a linear head and no optimiser, whatever was asked
TRAINING_FREE_SETTINGS = {"epochs": 0, "batch_size": 0, "lr": 0.0, "weight_decay": 0.0, "hidden": (), "dropout": 0.0}


def split_head_options(head_options: Mapping | None, method: str | None = None) -> tuple[dict, dict]:
    """(training settings, loss options): keys in HEAD_TRAIN_KEYS train the head, the rest go to the loss.
    For a training-free ``method`` (``pca``, ``lsh``) the training settings are :data:`TRAINING_FREE_SETTINGS`
    (given ones are ignored: there is nothing to train), so its stored key does not depend on them."""
    from hashviz.heads import train as T

    opts = dict(head_options or {})
    if method is not None:
        from hashviz.heads.losses import get_method

        if not get_method(method).trainable:
            return dict(TRAINING_FREE_SETTINGS), {k: v for k, v in opts.items() if k not in HEAD_TRAIN_KEYS}
    settings = {"epochs": T.DEFAULT_EPOCHS, "batch_size": T.DEFAULT_BATCH_SIZE, "lr": T.DEFAULT_LR,
                "weight_decay": T.DEFAULT_WEIGHT_DECAY, "hidden": tuple(T.DEFAULT_HIDDEN),
                "dropout": T.DEFAULT_DROPOUT}
    for k in HEAD_TRAIN_KEYS:
        if k in opts:
            settings[k] = opts.pop(k)
    if isinstance(settings["hidden"], int | np.integer):
        settings["hidden"] = (int(settings["hidden"]),)
    settings["hidden"] = tuple(int(h) for h in settings["hidden"])
    return settings, opts


def _quantizer_options(name: str, seed: int) -> dict:
    from hashviz.quantize import quantizer_options

    return {"random_state": int(seed)} if "random_state" in quantizer_options(name) else {}


# ---- prepare ------------------------------------------------------------------------------------------------
class _Progress:
    def __init__(self, fn: ProgressFn | None, should_stop: Callable[[], bool] | None) -> None:
        self.fn, self.should_stop = fn, should_stop

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.fn is not None:
            self.fn(stage, int(done), int(total))

    def check(self, what: str) -> None:
        if self.should_stop is not None and self.should_stop():
            raise StoppedError(f"prepare stopped during {what}; finished stages are kept in the run store",
                               "run prepare again: it continues from what is stored")


def _thumbnails(dataset) -> np.ndarray | None:
    imgs = getattr(dataset, "images", None)
    if imgs is None or imgs.nbytes > THUMBNAIL_BUDGET_BYTES:
        return None
    return np.ascontiguousarray(imgs)


def _make_embeddings(z, dataset, meta: dict, thumbnails):
    from hashviz.embeddings import Embeddings

    return Embeddings(z=z, labels=dataset.labels, split=dataset.split, ids=np.arange(dataset.n, dtype=np.int64),
                      class_names=dataset.class_names, meta=meta, thumbnails=thumbnails)


def _fit_quantizers(store: RunStore, emb_entry: Entry, emb, names: Sequence[str], seed: int, prog: _Progress,
                    counter: list[int], total: int) -> tuple[dict, dict, dict]:
    from hashviz.evaluate import evaluate, fit_quantizer

    keys, maps, evals = {}, {}, {}
    for name in names:
        qcfg = _quantizer_config(emb_entry, name, emb.dim, seed)
        entry = store.get("quantizers", qcfg)
        if entry is None:
            prog.check(f"fitting {name}")
            curve: list[dict] = []

            def on_step(step, curve=curve, name=name):
                curve.append(step.to_dict())
                prog.check(f"fitting {name}")

            q, seconds = fit_quantizer(emb, name, qcfg.options, on_step)
            ev = evaluate(emb, name, options=qcfg.options, top_k=TOP_K, ties="expected", fitted=q,
                          fit_seconds=seconds)
            store.clear_curve("quantizers", qcfg)
            store.append_curve("quantizers", qcfg, curve)
            entry = store.put("quantizers", qcfg,
                              arrays=q.state(),
                              extra={"evaluation": ev.to_dict(), "quantizer": q.to_dict()})
            counter[0] += 1
            prog("quantizers", counter[0], total)
        keys[name] = entry.key
        evals[name] = dict(entry.extra.get("evaluation", {}))
        maps[name] = float(evals[name].get("map", float("nan")))
    return keys, maps, evals


def _quantizer_config(emb_entry: Entry, name: str, n_bits: int, seed: int) -> QuantizerConfig:
    """The quantizer's config on these embeddings: keyed by the embeddings' key *and* their file's SHA-256."""
    return QuantizerConfig(embeddings=emb_entry.key, embeddings_sha256=emb_entry.sha256("embeddings.npz"), name=name,
                           n_bits=int(n_bits), options=_quantizer_options(name, seed))


def prepare(dataset: str = DEFAULT_DATASET, backbone: str = DEFAULT_BACKBONE, head: str = DEFAULT_HEAD,
            bit_lengths: Sequence[int] | None = DEFAULT_BITS, *, store: RunStore | str | Path | None = None,
            seed: int = 0, dataset_options: Mapping | None = None, head_options: Mapping | None = None,
            progress: ProgressFn | None = None, should_stop: Callable[[], bool] | None = None,
            quantizers: Sequence[str] | None = None, weights: str | Path | None = None,
            source_name: str | None = None) -> PrepareResult:
    """Run (or read back) the pipeline for one dataset / backbone / head method and several bit lengths.

    ``dataset``: a registry name (``hashviz.data.list_datasets()``) with ``dataset_options`` (e.g. ``path``); the
    ``embeddings`` source skips backbone and head, and its code lengths are the file's (the width of ``z``, or one
    per ``z_<bits>`` array; ``bit_lengths`` is then ignored). ``seed`` drives the split, head initialisation/order and
    quantizer starts. ``head_options``: the training settings ``epochs, batch_size, lr, weight_decay, hidden,
    dropout`` and any loss option (e.g. ``margin``). ``store``: a RunStore or its root (default: the hashviz home
    folder). ``weights``: a user state_dict file for the backbone. ``quantizers``: default sign, ITQ, HQ plus the
    head method's paired ones (SDSH/``spherical``: random search). ``source_name``: what the user calls the input
    (e.g. the original file name of an uploaded embeddings file, which the app saves under a content hash); it
    becomes the run's default name in the run catalog (:mod:`hashviz.catalog`) when the run is new there. Returns a
    :class:`PrepareResult` (mAP@all, ties expected, query vs database, quantizers fitted on the train split).

    Stored results are reused only for the content they were computed from: quantizers and scores are keyed by
    the SHA-256 of the embeddings file, embeddings made by a head by the SHA-256 of the features, so replaced
    inputs are recomputed, never reported with stale scores. A home that cannot be written raises
    :class:`~hashviz.errors.StoreError` before any work (a fully stored run is still read back).
    """
    store = store if isinstance(store, RunStore) else RunStore(store)
    result = _prepare(dataset, backbone, head, bit_lengths, store=store, seed=seed, dataset_options=dataset_options,
                      head_options=head_options, progress=progress, should_stop=should_stop, quantizers=quantizers,
                      weights=weights)
    from hashviz.catalog import register_run

    try:
        register_run(store, result, source_name=source_name)
    except StoreError as e:  # a read-only home with the run already stored: it is listed under a default name
        log.warning("could not record the run's name: %s", e.message)
    return result


def _prepare(dataset, backbone, head, bit_lengths, *, store: RunStore, seed, dataset_options, head_options, progress,
             should_stop, quantizers, weights) -> PrepareResult:
    from hashviz.data import get_dataset

    t0 = time.perf_counter()
    prog = _Progress(progress, should_stop)
    seed = int(seed)
    qnames = check_quantizers(default_quantizers(head if dataset != "embeddings" else None)
                               if quantizers is None else quantizers)
    dopts = dict(dataset_options or {})
    if "seed" in dopts:
        raise InvalidInputError("give the split seed as seed=…, not inside dataset_options", "prepare(..., seed=1)")

    prog("dataset", 0, 1)
    ds = get_dataset(dataset, seed=seed, **dopts)
    prog("dataset", 1, 1)

    if ds.embeddings is not None:
        return _prepare_embeddings_file(ds, store=store, seed=seed, dopts=dopts, qnames=qnames, prog=prog, t0=t0)

    from hashviz.features import extract_features, get_backbone
    from hashviz.heads.losses import get_loss, get_method
    from hashviz.heads.train import fit_head_steps

    bits_t = check_bit_lengths(DEFAULT_BITS if bit_lengths is None else bit_lengths, head=True)
    method = get_method(head).name
    settings, loss_opts = split_head_options(head_options, method)
    get_loss(method, bits_t[0], max(ds.n_classes, 2), multilabel=ds.multilabel, **loss_opts)  # bad options: now
    bb = get_backbone(backbone, weights)
    weights_sha = bb.weights_sha256()
    fcfg = FeatureConfig(dataset=ds.name, fingerprint=ds.fingerprint, seed=seed, backbone=bb.name,
                         weights_sha256=weights_sha)
    pcfg = PrepareConfig(dataset=ds.name, dataset_options=dopts, fingerprint=ds.fingerprint, seed=seed,
                         backbone=bb.name, weights_sha256=weights_sha, head=method,
                         head_options={**settings, **loss_opts}, bit_lengths=bits_t, quantizers=qnames)
    cached = prepared_from_entry(store, store.get("prepared", pcfg))
    if cached is not None:
        return _with(cached, seconds=time.perf_counter() - t0, cached=True)

    store.require_writable()  # a clear StoreError now rather than an OSError after the work

    # which heads still need training (so the progress total is right). The embeddings of a head are keyed by the
    # content hash of the features the head was trained on and applied to (recorded with the head).
    from hashviz.data.dataset import digest

    train_idx = ds.indices("train")
    train_rows = digest("train rows", np.asarray(train_idx, dtype=np.int64), np.asarray(ds.labels)[train_idx])
    head_cfgs = {b: HeadConfig(features=fcfg.key(), method=method, n_bits=b, seed=seed, options=loss_opts,
                               train_rows=train_rows, **settings) for b in bits_t}
    head_entries = {b: store.get("heads", head_cfgs[b]) for b in bits_t}

    def emb_cfg(b: int, features_sha: str) -> EmbeddingsConfig:
        return EmbeddingsConfig(head=head_cfgs[b].key(), n_bits=b, features_sha256=features_sha)

    emb_entries = {b: store.get("embeddings", emb_cfg(b, str(h.extra.get("features_sha256", ""))))
                   if (h := head_entries[b]) is not None and h.extra.get("features_sha256") else None for b in bits_t}
    todo = [b for b in bits_t if emb_entries[b] is None]

    features, features_sha = None, ""
    if todo:
        prog.check("feature extraction")
        features = extract_features(ds, bb, progress=lambda d, n: prog("features", d, n),
                                    cache_dir=store.root / "cache" / "features", should_stop=should_stop)
        features_sha = digest("features", np.asarray(features))
    thumbs = _thumbnails(ds)
    base_meta = {"dataset": ds.name, "dataset_options": dopts, "backbone": bb.name, "weights_sha256": weights_sha,
                 "head": method, "head_options": {**settings, **loss_opts}, "seed": seed,
                 "features_key": fcfg.key(), "features_sha256": features_sha}

    # heads: train the missing ones, one per bit length (a training-free head has no steps)
    per_head = (int(settings["epochs"]) * max(1, round(len(train_idx) / int(settings["batch_size"])))
                if get_method(method).trainable else 0)
    runs_total = len(todo) * per_head
    done_steps = 0
    for b in todo:
        hcfg = head_cfgs[b]
        prog.check("head training")
        t_head = time.perf_counter()
        run = fit_head_steps(features[train_idx], ds.labels[train_idx], n_classes=ds.n_classes,
                             hierarchy=ds.hierarchy, progress=prog, **hcfg.train_kwargs())
        for _ in run:
            done_steps += 1
            prog("heads", done_steps, runs_total)
            prog.check("head training")
        result = run.result()
        train_seconds = time.perf_counter() - t_head
        z = result.embed(features)
        store.clear_curve("heads", hcfg)
        store.append_curve("heads", hcfg, [s.to_dict() for s in result.curve])
        head_entries[b] = store.put("heads", hcfg, arrays=result.state_arrays(), state_dict=result.state_dict(),
                                    extra={"settings": result.settings, "loss_extra": result.extra(),
                                           "head": result.head.config(),
                                           "final_loss": result.curve[-1].loss if result.curve else None,
                                           "train_seconds": train_seconds, "features_sha256": features_sha,
                                           "n_classes": ds.n_classes, "multilabel": ds.multilabel})
        ecfg = emb_cfg(b, features_sha)
        emb = _make_embeddings(z, ds, {**base_meta, "n_bits": b, "head_key": hcfg.key(),
                                       "embeddings_key": ecfg.key()}, thumbs)
        emb_entries[b] = store.put("embeddings", ecfg, files={"embeddings.npz": emb.save},
                                   extra={"n_bits": b, "n": ds.n, "source": "head", "head_key": hcfg.key(),
                                          "features_sha256": features_sha})

    return _finish(store, pcfg, ds, bits_t, emb_entries, {b: head_cfgs[b].key() for b in bits_t}, qnames, seed,
                   prog, t0, backbone=bb.name, head=method)


def _prepare_embeddings_file(ds, *, store, seed, dopts, qnames, prog, t0) -> PrepareResult:
    """A user's embeddings file as a run: one bit length per code length in the file (its ``z`` width, or each
    ``z_<bits>`` array), each stored as an embeddings entry and given the quantizers."""
    by_bits = ds.embeddings if isinstance(ds.embeddings, Mapping) else {ds.embeddings.dim: ds.embeddings}
    bits_t = check_bit_lengths(tuple(by_bits), head=False)
    pcfg = PrepareConfig(dataset=ds.name, dataset_options=dopts, fingerprint=ds.fingerprint, seed=seed,
                         backbone="", weights_sha256="", head="", head_options={}, bit_lengths=bits_t,
                         quantizers=qnames)
    cached = prepared_from_entry(store, store.get("prepared", pcfg))
    if cached is not None:
        return _with(cached, seconds=time.perf_counter() - t0, cached=True)
    store.require_writable()  # a clear StoreError now rather than an OSError after the work
    from hashviz.embeddings import Embeddings

    entries = {}
    for n_bits in bits_t:
        ecfg = EmbeddingsConfig(source=f"file:{ds.fingerprint}", n_bits=n_bits)
        entry = store.get("embeddings", ecfg)
        if entry is None:
            prog.check("storing the embeddings")
            arrays = by_bits[n_bits]
            meta = {**dict(arrays.meta), "dataset": ds.name, "dataset_options": dopts, "seed": seed,
                    "n_bits": n_bits, "embeddings_key": ecfg.key()}
            emb = Embeddings.from_checked(arrays._replace(meta=meta))
            entry = store.put("embeddings", ecfg, files={"embeddings.npz": emb.save},
                              extra={"n_bits": n_bits, "n": emb.n, "source": "file"})
        entries[n_bits] = entry
    return _finish(store, pcfg, ds, bits_t, entries, dict.fromkeys(bits_t), qnames, seed, prog, t0,
                   backbone=None, head=None)


def _finish(store, pcfg, ds, bits_t, emb_entries, head_keys, qnames, seed, prog, t0, *, backbone, head):
    from hashviz.embeddings import Embeddings

    runs = []
    counter = [0]
    total = sum(store.get("quantizers", _quantizer_config(emb_entries[b], q, b, seed)) is None
                for b in bits_t for q in qnames)
    for b in bits_t:
        entry = emb_entries[b]
        # the bytes scored are the bytes whose SHA-256 keys the quantizers (StoreError if another writer replaced
        # the file since the entry was read)
        emb = Embeddings.load(io.BytesIO(entry.read_bytes("embeddings.npz")), name=f"embeddings {entry.key}",
                              max_bytes=None)  # the store's own file: no upload limit
        keys, maps, evals = _fit_quantizers(store, entry, emb, qnames, seed, prog, counter, total)
        runs.append(PreparedRun(n_bits=b, embeddings=entry.file("embeddings.npz"), embeddings_key=entry.key,
                                head_key=head_keys[b], quantizers=keys, map=maps, evaluations=evals,
                                embeddings_sha256=entry.sha256("embeddings.npz")))
    seconds = time.perf_counter() - t0
    summary = ds.summary()
    skipped = tuple((str(p), str(r)) for p, r in getattr(ds, "skipped", ()))
    record = {"runs": [_relative(store, r) for r in runs], "dataset": ds.name, "backbone": backbone, "head": head,
              "seed": seed, "seconds": seconds, "summary": summary, "created": time.time(),
              "skipped": [list(x) for x in skipped]}
    entry = store.put("prepared", pcfg, extra=record)
    return PrepareResult(key=entry.key, root=store.root, dataset=ds.name, backbone=backbone, head=head, seed=seed,
                         runs=tuple(runs), seconds=seconds, cached=False, config=pcfg.to_dict(),
                         created=record["created"], summary=summary, skipped=skipped)


def _relative(store: RunStore, run: PreparedRun) -> dict:
    d = run.to_dict()
    d["embeddings"] = str(Path(run.embeddings).relative_to(store.root))
    return d


def _with(result: PrepareResult, **changes) -> PrepareResult:
    from dataclasses import replace

    return replace(result, **changes)


def _float(v) -> float:
    return float("nan") if v is None else float(v)


def prepared_from_entry(store: RunStore, entry: Entry | None, *, retries: int = 0) -> PrepareResult | None:
    """A PrepareResult from a ``prepared`` entry, or None when an entry it refers to is gone, corrupt or holds
    other content than the scores were computed on. ``retries > 0``: read the entries it refers to without ever
    setting one aside (:meth:`RunStore.get_key`)."""
    if entry is None:
        return None
    runs = []
    try:
        order = list(entry.config["quantizers"])
        for r in entry.extra["runs"]:
            emb_entry = store.get_key("embeddings", r["embeddings_key"], retries=retries)
            if emb_entry is None:
                return None
            # the scores hold only for the embeddings they were computed on: same file content, and quantizers
            # fitted on that content (otherwise the caller recomputes: never a stale score)
            sha = emb_entry.sha256("embeddings.npz")
            if r.get("embeddings_sha256") != sha:
                return None
            for key in r["quantizers"].values():
                q_entry = store.get_key("quantizers", key, retries=retries)
                if q_entry is None or q_entry.config.get("embeddings_sha256") != sha \
                        or q_entry.config.get("embeddings") != emb_entry.key:
                    return None
            runs.append(PreparedRun(n_bits=int(r["n_bits"]), embeddings=emb_entry.file("embeddings.npz"),
                                    embeddings_key=r["embeddings_key"], head_key=r.get("head_key"),
                                    quantizers={q: r["quantizers"][q] for q in order},
                                    map={q: _float(r["map"][q]) for q in order},
                                    evaluations=dict(r.get("evaluations", {})), embeddings_sha256=sha))
        x = entry.extra
        return PrepareResult(key=entry.key, root=store.root, dataset=x["dataset"], backbone=x.get("backbone"),
                             head=x.get("head"), seed=int(x["seed"]), runs=tuple(runs),
                             seconds=float(x.get("seconds", 0.0)), cached=True, config=dict(entry.config),
                             created=float(x.get("created", 0.0)), summary=str(x.get("summary", "")),
                             skipped=tuple((str(p), str(r)) for p, r in x.get("skipped", ())))
    except (KeyError, TypeError, ValueError, StoreError):
        return None


def list_prepared(store: RunStore | str | Path | None = None) -> list[PrepareResult]:
    """Every prepared run in the store whose files are all still sound, newest first (the app's "open again")."""
    store = store if isinstance(store, RunStore) else RunStore(store)
    out = [r for r in (prepared_from_entry(store, e) for e in store.list("prepared")) if r is not None]
    return sorted(out, key=lambda r: r.created, reverse=True)


def load_prepared(key: str, store: RunStore | str | Path | None = None) -> PrepareResult | None:
    """The prepared run with this key (from :attr:`PrepareResult.key`), or None."""
    store = store if isinstance(store, RunStore) else RunStore(store)
    return prepared_from_entry(store, store.get_key("prepared", key))


def load_quantizer(key: str, store: RunStore | str | Path | None = None):
    """A fitted quantizer rebuilt from its ``quantizers`` entry (rotation and mean), or None when missing."""
    from hashviz.quantize import make_quantizer

    store = store if isinstance(store, RunStore) else RunStore(store)
    entry = store.get_key("quantizers", key)
    if entry is None:
        return None
    cfg = entry.config
    q = make_quantizer(cfg["name"], int(cfg["n_bits"]), **dict(cfg.get("options", {})))
    return q.set_rotation(entry.arrays["rotation"], entry.arrays.get("mean"))


def format_summary(result: PrepareResult) -> list[str]:
    """Human lines: where results are and one mAP line per bit length."""
    lines = [f"{result.summary}" if result.summary else result.dataset,
             f"results in {result.root / 'runs'} (prepared key {result.key}; "
             f"{'read from the store' if result.cached else 'computed'} in {result.seconds:.1f} s)"]
    if result.skipped:
        path, why = result.skipped[0]
        lines.append(f"{len(result.skipped)} dataset files skipped, e.g. {path}: {why}")
    for r in result.runs:
        maps = "  ".join(f"{name} {v:.4f}" for name, v in r.map.items())
        lines.append(f"{r.n_bits:>4} bits  mAP@all  {maps}   {r.embeddings}")
    return lines
