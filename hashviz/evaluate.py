"""Fit a quantizer on the train split of an Embeddings bundle and score query-vs-database retrieval.

This is the one function behind ``python -m hashviz evaluate``, ``prepare``'s stored scores, ``table``,
``penalty`` and the app's tables, so every surface shows the same numbers in the same record
(:class:`~hashviz.retrieval.report.Evaluation`). Scoring follows a named protocol
(:mod:`hashviz.retrieval.protocols`; default ``hashviz``) and counts Hamming distances once per cell.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from hashviz.data.splits import check_split
from hashviz.embeddings import Embeddings
from hashviz.errors import InvalidInputError
from hashviz.retrieval.report import Evaluation
from hashviz.validate import check_int

__all__ = ["Evaluation", "check_arguments", "evaluate", "evaluate_protocols", "fit_quantizer",
           "results_table"]


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
    y = train.labels if q.needs_labels else None
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
    check_int(top_k, "top_k", lo=1, hint="e.g. top_k=1000 (values above the database size are clipped)")
    check_int(radius, "radius", lo=0, hint="e.g. radius=2")
    if isinstance(ties, str) and ties not in TIES:
        raise InvalidInputError(f"unknown ties={ties!r}", f"use one of {', '.join(TIES)}")
    check_split(emb.split, "the split", min_train=2 if need_train else 0)


def _parts(emb: Embeddings):
    query, database = emb.part("query"), emb.part("database")
    if query.n == 0 or database.n == 0:
        raise InvalidInputError(f"need query and database rows, got {query.n} queries and {database.n} database",
                                "split codes: 1 = query, 2 = database (train rows count as database too)")
    return query, database


def evaluate(emb: Embeddings, quantizer: str = "hq", *, options: Mapping | None = None, top_k: int = 1000,
             ties=None, radius: int = 2, fitted=None, fit_seconds: float = 0.0,
             on_step: Callable | None = None, similarity=None, protocol: str = "hashviz", protocol_k=None,
             family: str | None = None) -> Evaluation:
    """Fit ``quantizer`` on the train split (or use ``fitted``), encode query and database, score them.

    ``protocol``: a preset of :mod:`hashviz.retrieval.protocols` (``hashviz`` default: mAP@all, expected ties,
    queries without a relevant item left out); ``family`` picks its depth (default: from the bundle's dataset,
    ``emb.meta``), ``protocol_k`` overrides it, ``ties`` overrides its tie order. mAP@k and P@k use ``top_k``
    (clipped to the database size); P@r uses Hamming ``radius``. ``similarity``: a (c, c) class similarity from a
    label hierarchy (:func:`hashviz.data.hierarchy.class_similarity_matrix`) adds the hierarchical score:
    the mean semantic similarity of the top k (ties ``stable`` when the tie order is stable, else expected).
    """
    check_arguments(emb, top_k=top_k, radius=radius, ties="expected" if ties is None else ties,
                    need_train=fitted is None)
    if fitted is None:
        fitted, fit_seconds = fit_quantizer(emb, quantizer, options, on_step)
    query, database = _parts(emb)
    t0 = time.perf_counter()
    ev = _score(emb, fitted, query, database, protocol=protocol, protocol_k=protocol_k, family=family, ties=ties,
                top_k=top_k, radius=radius, similarity=similarity)[0]
    ev = replace(ev, quantizer=quantizer, fit_seconds=float(fit_seconds), options=dict(options or {}))
    return replace(ev, eval_seconds=time.perf_counter() - t0)


def evaluate_protocols(emb: Embeddings, quantizer: str = "hq", *, protocols: Iterable[str] | str = "all",
                       options: Mapping | None = None, fitted=None, fit_seconds: float = 0.0, top_k: int = 1000,
                       radius: int = 2, protocol_k=None, family: str | None = None,
                       on_step: Callable | None = None) -> list[Evaluation]:
    """The same codes under every protocol (or those named): one fit, one encoding, one distance count — the
    "same codes, every protocol" table, showing how much of a published gap is the evaluator."""
    check_arguments(emb, top_k=top_k, radius=radius, need_train=fitted is None)
    if fitted is None:
        fitted, fit_seconds = fit_quantizer(emb, quantizer, options, on_step)
    query, database = _parts(emb)
    t0 = time.perf_counter()
    evs = _score(emb, fitted, query, database, protocol=protocols, protocol_k=protocol_k, family=family, ties=None,
                 top_k=top_k, radius=radius, similarity=None)
    seconds = (time.perf_counter() - t0) / max(1, len(evs))
    return [replace(ev, quantizer=quantizer, fit_seconds=float(fit_seconds), options=dict(options or {}),
                    eval_seconds=seconds) for ev in evs]


def _score(emb, fitted, query, database, *, protocol, protocol_k, family, ties, top_k, radius, similarity):
    """Encode once; one Evaluation per protocol (a list even for one)."""
    from hashviz.codes import encode
    from hashviz.retrieval.metrics import quantization_error
    from hashviz.retrieval.report import family_of, score_protocols

    qz, dz = fitted.transform(query.z), fitted.transform(database.z)
    qc, dc = encode(qz), encode(dz)
    qe = float(quantization_error(dz))
    out = []
    for ev in score_protocols(qc, dc, query.labels, database.labels, protocol, family=family_of(emb.meta, family),
                              protocol_k=protocol_k, ties=ties, top_k=top_k, radius=radius, q_z=qz, db_z=dz):
        ev = replace(ev, n_bits=emb.dim, quantization_error=qe, n_train=int(emb.mask("train").sum()))
        if similarity is not None:
            from hashviz.retrieval.hierarchical import mean_semantic_similarity_at_k

            ev = replace(ev, hierarchical_at_k=float(mean_semantic_similarity_at_k(
                qc, dc, query.labels, database.labels, similarity, ev.top_k,
                ties="stable" if ev.ties == "stable" else "expected")))
        out.append(ev)
    return out


def results_table(results: Iterable[Evaluation]):
    """A pandas DataFrame with one row per evaluation and the protocol in the column labels."""
    import pandas as pd

    from hashviz.quantize import quantizer_label

    rows = []
    for r in results:
        rows.append({
            "quantizer": quantizer_label(r.quantizer), "n_bits": r.n_bits,
            r.map_label: r.map, f"mAP@{r.top_k} ({r.protocol})": r.map_at_k, f"P@{r.top_k} ({r.protocol})": r.p_at_k,
            f"P@r≤{r.radius}": r.p_within_radius, "quantization error": r.quantization_error,
            "fit time (s)": r.fit_seconds})
    return pd.DataFrame(rows)
