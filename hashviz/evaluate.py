"""Fit a quantizer on the train split of an Embeddings bundle and score query-vs-database retrieval.

This is the one function behind ``python -m hashviz evaluate`` and the app's evaluate table, so the CLI and
the app always show the same numbers.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np

from hashviz.data.splits import check_split
from hashviz.embeddings import Embeddings
from hashviz.errors import InvalidInputError

QUANTIZER_LABELS = {"sign": "sign", "itq": "ITQ", "hq": "HQ (Householder)", "random": "random search"}


@dataclass(frozen=True)
class Evaluation:
    """Scores of one quantizer on one Embeddings bundle (query vs database)."""

    quantizer: str
    n_bits: int
    map: float
    map_at_k: float
    p_at_k: float
    p_within_radius: float
    quantization_error: float
    fit_seconds: float
    top_k: int
    radius: int
    ties: str
    n_query: int
    n_database: int
    n_train: int
    options: Mapping
    eval_seconds: float = 0.0  # encoding query + database and computing every score above
    # mean semantic similarity of the top_k under a label hierarchy (given as ``similarity``), else NaN
    hierarchical_at_k: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)


def fit_quantizer(emb: Embeddings, name: str, options: Mapping | None = None,
                  on_step: Callable | None = None):
    """Fit quantizer ``name`` on the train split of ``emb``; returns (quantizer, seconds)."""
    from hashviz.quantize import make_quantizer

    _check_dim(emb)
    n_train = int(emb.mask("train").sum())
    if n_train < 2:
        raise InvalidInputError(f"the train split has {n_train} rows; a quantizer needs at least 2",
                                "give a 'split' with train rows (0) or leave it out for a seeded split")
    train = emb.part("train")
    q = make_quantizer(name, emb.dim, **dict(options or {}))
    t0 = time.perf_counter()
    y = train.labels if name == "random" else None
    for step in q.fit_steps(train.z, y):
        if on_step is not None and on_step(step) is False:
            break
    return q, time.perf_counter() - t0


def _check_dim(emb: Embeddings) -> None:
    from hashviz.retrieval.search import MAX_BYTES

    if not isinstance(emb, Embeddings):
        raise InvalidInputError(f"evaluate needs an Embeddings bundle, got {type(emb).__name__}",
                                "load one with Embeddings.load(path)")
    if emb.dim > 8 * MAX_BYTES:
        raise InvalidInputError(f"z has {emb.dim} dimensions; quantizers give one bit per dimension and hashviz "
                                f"handles 1 to {8 * MAX_BYTES} bits",
                                "reduce the dimension first (e.g. PCA to 64), or train a hashing head on these "
                                "features (python -m hashviz prepare)")


def check_arguments(emb: Embeddings, *, top_k: int = 1000, radius: int = 2, ties="expected",
                    need_train: bool = True) -> None:
    """The cheap checks of :func:`evaluate`, done before any fitting: ``z`` has 1..1024 dimensions (one bit per
    dimension), the split has query, database and (``need_train``) >= 2 train rows, ``top_k`` >= 1, ``radius``
    >= 0 and ``ties`` is one of :data:`hashviz.retrieval.metrics.TIES` (or an array, checked when scoring)."""
    from hashviz.retrieval.metrics import TIES

    _check_dim(emb)
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise InvalidInputError(f"top_k must be a positive integer, got {top_k!r}",
                                "e.g. top_k=1000 (values above the database size are clipped)")
    if isinstance(radius, bool) or not isinstance(radius, numbers.Integral) or radius < 0:
        raise InvalidInputError(f"radius must be a non-negative integer, got {radius!r}", "e.g. radius=2")
    if isinstance(ties, str) and ties not in TIES:
        raise InvalidInputError(f"unknown ties={ties!r}", f"use one of {', '.join(TIES)}")
    check_split(emb.split, "the split", min_train=2 if need_train else 0)


def evaluate(emb: Embeddings, quantizer: str = "hq", *, options: Mapping | None = None, top_k: int = 1000,
             ties: str = "expected", radius: int = 2, fitted=None, fit_seconds: float = 0.0,
             on_step: Callable | None = None, similarity=None) -> Evaluation:
    """Fit ``quantizer`` on the train split (or use ``fitted``), encode query and database, score them.

    mAP is mAP@all; mAP@k, P@k use ``top_k`` (clipped to the database size); P@r uses Hamming ``radius``.
    ``similarity``: a (c, c) class similarity from a label hierarchy
    (:func:`hashviz.retrieval.hierarchical.class_similarity_matrix`) adds the hierarchical score: the mean
    semantic similarity of the top k (ties ``stable`` when ``ties="stable"``, else expected).
    """
    from hashviz.retrieval.metrics import (
        mean_average_precision,
        precision_at_k,
        precision_within_radius,
        quantization_error,
    )

    check_arguments(emb, top_k=top_k, radius=radius, ties=ties, need_train=fitted is None)
    if fitted is None:
        fitted, fit_seconds = fit_quantizer(emb, quantizer, options, on_step)
    query, database = emb.part("query"), emb.part("database")
    t0 = time.perf_counter()
    qc, dc = fitted.encode(query.z), fitted.encode(database.z)
    k = int(min(top_k, database.n))
    args = (qc, dc, query.labels, database.labels)
    ev = Evaluation(
        quantizer=quantizer, n_bits=emb.dim,
        map=float(mean_average_precision(*args, ties=ties)),
        map_at_k=float(mean_average_precision(*args, top_k=k, ties=ties)),
        p_at_k=float(precision_at_k(*args, k, ties=ties)),
        p_within_radius=float(precision_within_radius(*args, radius=radius)),
        quantization_error=float(quantization_error(fitted.transform(database.z))),
        fit_seconds=float(fit_seconds), top_k=k, radius=radius, ties=str(ties),
        n_query=query.n, n_database=database.n, n_train=int(emb.mask("train").sum()),
        options=dict(options or {}))
    if similarity is not None:
        from hashviz.retrieval.hierarchical import mean_semantic_similarity_at_k

        ev = replace(ev, hierarchical_at_k=float(mean_semantic_similarity_at_k(
            *args, similarity, k, ties="stable" if ties == "stable" else "expected")))
    return replace(ev, eval_seconds=time.perf_counter() - t0)


def evaluate_many(emb: Embeddings, quantizers: Iterable[str], **kwargs) -> list[Evaluation]:
    return [evaluate(emb, name, **kwargs) for name in quantizers]


def results_table(results: Iterable[Evaluation]):
    """A pandas DataFrame with one row per evaluation and the protocol in the column labels."""
    import pandas as pd

    rows = []
    for r in results:
        rows.append({
            "quantizer": QUANTIZER_LABELS.get(r.quantizer, r.quantizer), "n_bits": r.n_bits,
            f"mAP@all (ties {r.ties})": r.map, f"mAP@{r.top_k}": r.map_at_k, f"P@{r.top_k}": r.p_at_k,
            f"P@r≤{r.radius}": r.p_within_radius, "quantization error": r.quantization_error,
            "fit time (s)": r.fit_seconds})
    return pd.DataFrame(rows)


def _json_float(x):
    return None if isinstance(x, float) and not np.isfinite(x) else x
