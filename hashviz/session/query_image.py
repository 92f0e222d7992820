"""A new image through a run's own model, UI-free: image → what the backbone sees → backbone features → the
run's hashing head → z → each quantizer's code → the top-k database items by Hamming distance.

The image is prepared like the run's dataset images (:func:`hashviz.data.drawing.image_recipe`: the MNIST
recipe for digit datasets, the dataset loader's crop and resize for colour ones) and then goes through exactly
what ``prepare`` ran on them: :meth:`Backbone.transform`, the backbone in eval mode, the head stored in the run
store (stage ``heads``: state_dict + config) and its loss's ``embed``. So a dataset image's own pixels give back
its stored z (a test checks it) and its stored codes.

Neighbours are ranked among the database split (train ⊂ database) with ties in database order (the order of a
stable sort, :func:`hashviz.retrieval.search.top_k`); the predicted class is the majority class among them.
The page "Your own image" and ``hashviz query`` both call :func:`query_image`, so they show the same neighbours.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hashviz.embeddings import Embeddings
from hashviz.errors import DataUnavailableError, InvalidInputError, StoreError
from hashviz.store import RunStore
from hashviz.validate import check_int

DEFAULT_TOP_K = 10


def no_model_error(key: str) -> InvalidInputError:
    return InvalidInputError(
        f"run {key} was made from an embeddings file: it has no backbone and no hashing head, so a new image "
        "cannot be turned into a code",
        "prepare a run from images and query that one (Data & model → Prepare default, or `hashviz prepare`; "
        "`hashviz query IMAGE` without --run prepares the default mnist5k run)")


@contextmanager
def few_threads(n_rows: int, limit: int = 64):
    """One torch thread while a few rows go through a model: on a busy 2-core machine two threads made one 28×28
    digit take 140 ms through the CNN (1 ms on one thread) and the four heads 100 ms. The setting is process-wide
    (as in head training, hashviz.heads.train) and restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    if n_rows > limit or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class RunModel:
    """A run's image pipeline: the recipe, the backbone with the run's weights, and one head per bit length."""

    key: str
    dataset: str
    recipe: object  # hashviz.data.drawing.ImageRecipe
    backbone: object  # hashviz.features.backbones.Backbone
    model: object  # torch.nn.Module in eval mode
    heads: dict  # n_bits → (HashHead, HeadLoss), eval mode

    @property
    def bit_lengths(self) -> tuple[int, ...]:
        return tuple(self.heads)

    def prepare(self, data: bytes, *, name: str = "the image") -> np.ndarray:
        """Image bytes → the dataset-like uint8 image the backbone sees (checked: see ``drawing.open_image``)."""
        from hashviz.data.drawing import prepare_image

        return prepare_image(data, self.recipe, name=name)

    def features(self, images: np.ndarray) -> np.ndarray:
        """Backbone features of dataset-like uint8 images, float32 (n, d) — :func:`extract_features`'s steps."""
        import torch

        images = np.asarray(images)
        with few_threads(len(images)), torch.inference_mode():
            feats = self.model(self.backbone.transform(images))
        return feats.float().cpu().numpy()

    def head_embed(self, features: np.ndarray, n_bits: int) -> np.ndarray:
        """z = the ``n_bits`` head's loss.embed(head(features)), float32 (n, n_bits)."""
        from hashviz.heads.train import embed_features

        if int(n_bits) not in self.heads:
            raise InvalidInputError(f"the run has no head for {n_bits} bits",
                                    f"its bit lengths: {', '.join(map(str, self.bit_lengths))}")
        head, loss = self.heads[int(n_bits)]
        with few_threads(len(features)):
            return embed_features(head, loss, features)

    def embed(self, images: np.ndarray, n_bits: int) -> np.ndarray:
        """z of dataset-like uint8 images for the head of ``n_bits``: float32 (n, n_bits)."""
        return self.head_embed(self.features(images), n_bits)


def _weights_for(backbone, expected_sha: str, home: Path, weights=None):
    """The backbone with the weights file whose SHA-256 the run recorded: a file given by the caller, the
    default one (bundled / torch hub cache), or an upload saved under ``<home>/app/uploads``."""
    from hashviz.features.backbones import file_sha256

    if weights is not None:
        bb = backbone.with_weights(weights)
        if expected_sha and bb.weights_sha256() != expected_sha:
            raise InvalidInputError(f"the weights file {weights} is not the one run was prepared with (SHA-256 "
                                    f"{bb.weights_sha256()[:12]}…, the run's {expected_sha[:12]}…)",
                                    "give the state_dict file the run was prepared with")
        return bb
    if not expected_sha:
        return backbone
    ok, _ = backbone.available_offline()
    if ok and backbone.weights_sha256() == expected_sha:
        return backbone
    uploads = home / "app" / "uploads"
    if uploads.is_dir():
        for p in sorted(uploads.iterdir()):
            if p.is_file() and p.suffix in (".pt", ".pth") and file_sha256(p) == expected_sha:
                return backbone.with_weights(p)
    raise DataUnavailableError(
        f"the {backbone.name} weights this run was prepared with (SHA-256 {expected_sha[:12]}…) are not on this "
        "machine", "give the same state_dict file (hashviz query --weights FILE), or prepare the run again")


def load_run_model(store: RunStore | str | Path | None, key: str, *, weights=None) -> RunModel:
    """The image pipeline of prepared run ``key``. InvalidInputError for an embeddings-file run (no backbone,
    no head); StoreError when the run or one of its heads is gone."""
    import torch

    from hashviz.data.drawing import image_recipe
    from hashviz.features.backbones import get_backbone
    from hashviz.heads.train import load_head
    from hashviz.pipeline import load_prepared

    store = store if isinstance(store, RunStore) else RunStore(store)
    res = load_prepared(str(key), store)
    if res is None:
        raise StoreError(f"no prepared run {key} (or its files are damaged)",
                         "`hashviz runs list` lists the runs; prepare it again if it is gone")
    recipe = image_recipe(res.dataset, res.config.get("dataset_options") or {})
    if res.dataset == "embeddings" or not res.backbone or not res.head or recipe is None:
        raise no_model_error(res.key)
    bb = _weights_for(get_backbone(res.backbone), str(res.config.get("weights_sha256") or ""), store.root, weights)
    heads = {}
    for run in res.runs:
        entry = store.get_key("heads", run.head_key) if run.head_key else None
        if entry is None or "weights.pt" not in entry.files:
            raise StoreError(f"the {run.n_bits}-bit head of run {res.key} is missing from the run store",
                             "prepare the run again: the missing head is retrained")
        # the bytes checked against the entry's recorded SHA-256; tensors only (weights_only=True)
        state = torch.load(io.BytesIO(entry.read_bytes("weights.pt")), map_location="cpu", weights_only=True)
        x = entry.extra
        heads[run.n_bits] = load_head(state, head_config=x["head"], method=entry.config["method"],
                                      n_classes=int(x["n_classes"]), multilabel=bool(x.get("multilabel", False)),
                                      options=entry.config.get("options") or {})
    return RunModel(key=res.key, dataset=res.dataset, recipe=recipe, backbone=bb, model=bb.load_model(),
                    heads=heads)


# ---- ranking ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CodeResult:
    """One bit length × quantizer: the image's code and its ``k`` nearest database items."""

    n_bits: int
    quantizer: str  # id (registry name, or live:… on the page)
    label: str
    bits: np.ndarray  # bool (n_bits,)
    rows: np.ndarray  # embedding rows of the neighbours, nearest first (ties in database order)
    ids: np.ndarray  # their index in the source dataset
    distances: np.ndarray  # Hamming distances
    labels: np.ndarray  # their labels: (k,) ints or (k, c) bool
    predicted: tuple[int, ...]  # the majority class (one; multi-label: the labels of most neighbours)
    votes: int  # how many of the k neighbours have the (first) predicted class

    @property
    def code(self) -> str:
        from hashviz.viz.images import bit_string

        return bit_string(self.bits)

    def class_text(self, class_names: Sequence[str], i: int) -> str:
        lab = self.labels[i]
        if np.ndim(lab) == 0:
            return str(class_names[int(lab)]) if int(lab) < len(class_names) else str(int(lab))
        return ", ".join(str(class_names[c]) for c in np.flatnonzero(lab)) or "—"

    def predicted_text(self, class_names: Sequence[str]) -> str:
        return ", ".join(str(class_names[c]) if c < len(class_names) else str(c) for c in self.predicted) or "—"

    def to_dict(self, class_names: Sequence[str]) -> dict:
        return {"n_bits": self.n_bits, "quantizer": self.quantizer, "label": self.label,
                "code": "".join("1" if b else "0" for b in self.bits),
                "predicted": [str(class_names[c]) if c < len(class_names) else str(c) for c in self.predicted],
                "votes": self.votes, "k": len(self.rows),
                "neighbours": [{"rank": i + 1, "index": int(self.ids[i]), "row": int(self.rows[i]),
                                "class": self.class_text(class_names, i), "distance": int(self.distances[i])}
                               for i in range(len(self.rows))]}


def majority(labels: np.ndarray, n_classes: int) -> tuple[tuple[int, ...], int]:
    """(predicted classes, votes) from neighbour labels in rank order. Single-label: the most frequent class,
    ties to the one ranked first; multi-label: every label carried by more than half of the neighbours (else
    the most frequent one). Votes: neighbours with the (first) predicted class."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return (), 0
    if labels.ndim == 1:
        counts = np.bincount(labels.astype(np.int64), minlength=n_classes)
        best = counts.max()
        first = next(int(c) for c in labels if counts[int(c)] == best)
        return (first,), int(best)
    counts = labels.astype(bool).sum(axis=0)
    chosen = tuple(int(c) for c in np.flatnonzero(counts * 2 > len(labels)))
    if not chosen and counts.max() > 0:
        chosen = (int(np.argmax(counts)),)
    return chosen, int(counts[chosen[0]]) if chosen else 0


def database_codes(emb: Embeddings, quantizer) -> tuple[np.ndarray, np.ndarray]:
    """(database rows, their packed codes under ``quantizer``)."""
    db = np.flatnonzero(emb.mask("database"))
    return db, quantizer.encode(emb.z[db])


def neighbours(z: np.ndarray, emb: Embeddings, fitted, k: int = DEFAULT_TOP_K, *, db=None) -> CodeResult:
    """The code of ``z`` (n_bits,) under a FittedQuantizer-like ``fitted`` (``id``, ``label``, ``quantizer``) and
    its ``k`` nearest database items; ``db`` = :func:`database_codes` when the caller keeps them."""
    from hashviz.codes import unpack_bits
    from hashviz.retrieval.search import top_k

    check_int(k, "top-k", lo=1, hint="e.g. --top-k 10")
    rows, codes = db if db is not None else database_codes(emb, fitted.quantizer)
    q = fitted.quantizer.encode(np.asarray(z, dtype=np.float32).reshape(1, -1))
    idx, dist = top_k(q, codes, int(k))
    nb = rows[np.asarray(idx)[0]]
    labels = emb.labels[nb]
    predicted, votes = majority(labels, len(emb.class_names))
    return CodeResult(n_bits=emb.dim, quantizer=str(fitted.id), label=str(fitted.label),
                      bits=unpack_bits(q, emb.dim)[0], rows=nb, ids=emb.ids[nb],
                      distances=np.asarray(dist)[0].astype(np.int64), labels=labels, predicted=predicted,
                      votes=votes)


@dataclass(frozen=True)
class ImageQuery:
    """What :func:`query_image` found: the image the network saw, z per bit length, one CodeResult per bit length
    × quantizer (bit lengths in order, quantizers in the order given)."""

    image: np.ndarray
    z: Mapping[int, np.ndarray]
    results: tuple[CodeResult, ...]
    sha256: str = ""
    meta: Mapping = field(default_factory=dict)

    def result(self, n_bits: int, quantizer: str) -> CodeResult:
        for r in self.results:
            if r.n_bits == int(n_bits) and r.quantizer == quantizer:
                return r
        raise InvalidInputError(f"no result for {n_bits} bits and {quantizer!r}", "")

    def to_dict(self, class_names: Sequence[str]) -> dict:
        return {**dict(self.meta), "image_sha256": self.sha256,
                "seen": {"shape": list(self.image.shape), "dtype": str(self.image.dtype)},
                "results": [r.to_dict(class_names) for r in self.results]}


def query_image(model: RunModel, data: bytes, embeddings: Mapping[int, Embeddings],
                quantizers: Mapping[int, Mapping[str, object]], *, k: int = DEFAULT_TOP_K,
                name: str = "the image", image: np.ndarray | None = None,
                database: Mapping[int, Mapping[str, tuple]] | None = None) -> ImageQuery:
    """Image bytes (or an already prepared dataset-like ``image``) → code and top-``k`` per bit length ×
    quantizer. ``embeddings``: n_bits → the run's Embeddings; ``quantizers``: n_bits → {id: FittedQuantizer};
    ``database``: n_bits → {id: :func:`database_codes`} kept by the caller (the page caches them)."""
    seen = model.prepare(data, name=name) if image is None else np.asarray(image)
    results, zs = [], {}
    features = model.features(seen[None])
    for n_bits in embeddings:
        z = model.head_embed(features, n_bits)[0]
        zs[int(n_bits)] = z
        for qid, fitted in quantizers[n_bits].items():
            db = (database or {}).get(n_bits, {}).get(qid)
            results.append(neighbours(z, embeddings[n_bits], fitted, k, db=db))
    sha = hashlib.sha256(data).hexdigest() if data is not None else ""
    return ImageQuery(image=seen, z=zs, results=tuple(results), sha256=sha,
                      meta={"run": model.key, "dataset": model.dataset, "recipe": model.recipe.describe(),
                            "top_k": int(k)})


def stored_inputs(workspace, key: str, bit_lengths: Sequence[int] | None = None,
                  quantizers: Sequence[str] | None = None) -> tuple[dict, dict]:
    """(n_bits → Embeddings, n_bits → {id: FittedQuantizer}) of a run, as the app's cached loaders give them:
    the quantizers ``prepare`` stored (all of them by default, in their order), a requested one that was not
    stored fitted now on the train split with default options (as the app does)."""
    from hashviz.evaluate import fit_quantizer
    from hashviz.pipeline import check_quantizers
    from hashviz.session.runs import stored_fitted

    res = workspace.result(key)
    chosen = tuple(res.bit_lengths) if not bit_lengths else tuple(dict.fromkeys(int(b) for b in bit_lengths))
    missing = [b for b in chosen if b not in res.bit_lengths]
    if missing:
        raise InvalidInputError(f"run {res.key} has no {', '.join(map(str, missing))}-bit codes",
                                f"its bit lengths: {', '.join(map(str, res.bit_lengths))} "
                                "(or prepare it with --bits …)")
    wanted = None if not quantizers else check_quantizers(quantizers)
    embs, fitted = {}, {}
    for b in chosen:
        embs[b] = workspace.load_embeddings(res.key, b)
        names = wanted or workspace.stored_quantizer_names(res.key, b)
        fitted[b] = {}
        for name in names:
            q = workspace.stored_quantizer(res.key, b, name)
            if q is None:
                q, _ = fit_quantizer(embs[b], name, {})
            fitted[b][name] = stored_fitted(name, q)
    return embs, fitted
