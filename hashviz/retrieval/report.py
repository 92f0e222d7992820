"""One result record and one counting pass: :class:`Evaluation` and :func:`score_codes`.

Every score of a cell — mAP at the protocol's depth with its tie order and no-relevant rule, the relevant-first
/ relevant-last orders of that mAP (the tie bounds), mAP@k and P@k, P@r≤radius and the number of queries with no
relevant item — comes from one pass over the database per query: the per-distance (items, relevant items)
histogram feeds the closed forms, and a protocol with an explicit tie order (stable, Euclidean) runs one ordered
pass that scores every depth at once and fills the same histogram.

:class:`Evaluation` is the record the CLI (``evaluate``, ``table``, ``penalty``), ``hashviz.results``, the run store
(``prepare``) and the app's Compare table share; mAP is spelled ``map`` everywhere (fields, CSV columns, JSON).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

import numpy as np

from hashviz.errors import InvalidInputError
from hashviz.retrieval.protocols import Protocol, dataset_family, get_protocol, map_label, protocol_list
from hashviz.validate import check_int

NAN = math.nan


@dataclass(frozen=True)
class Evaluation:
    """The scores of one set of codes (one quantizer on one embeddings bundle) under one protocol.

    ``map``: mAP at depth ``map_k`` under ``protocol`` (its tie order ``ties`` and no-relevant rule);
    ``map_optimistic`` / ``map_pessimistic``: the same with relevant items first / last inside ties (bounds for
    ``map_k`` = all); ``map_at_k``, ``p_at_k``: at ``top_k``, same ties and rule; ``p_within_radius``: precision
    within Hamming ``radius`` (a query retrieving nothing counts 0); ``n_no_relevant``: queries without a relevant
    database item (left out of the means under ``hashviz``, AP 0 under the published evaluators).
    The context fields (``dataset`` … ``head_train_seconds``) are filled by tables that know them.
    """

    quantizer: str = ""
    n_bits: int = 0
    protocol: str = "hashviz"
    ties: str = "expected"
    map: float = NAN
    map_k: int = 0
    map_optimistic: float = NAN
    map_pessimistic: float = NAN
    map_at_k: float = NAN
    p_at_k: float = NAN
    top_k: int = 0
    p_within_radius: float = NAN
    radius: int = 2
    quantization_error: float = NAN
    n_query: int = 0
    n_database: int = 0
    n_train: int = 0
    n_no_relevant: int = 0
    fit_seconds: float = 0.0
    eval_seconds: float = 0.0  # encoding query + database and computing every score above
    # mean semantic similarity of the top_k under a label hierarchy (given as ``similarity``), else NaN
    hierarchical_at_k: float = NAN
    options: Mapping = field(default_factory=dict)        # the quantizer's options
    dataset: str = ""
    backbone: str = ""
    head: str = ""
    head_options: Mapping = field(default_factory=dict)   # the head's loss options (e.g. lambda_q)
    seed: int = 0
    head_train_seconds: float = NAN
    # per-query AP at map_k (NaN for queries left out); not stored or printed
    average_precisions: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def cell_seconds(self) -> float:
        """Quantizer fit + scoring (the head's own training time is ``head_train_seconds``)."""
        return self.fit_seconds + self.eval_seconds

    @property
    def map_label(self) -> str:
        """``"mAP@all (hashviz)"``, ``"mAP@3999 (deephash)"``: the mAP's depth and protocol, for headers."""
        return map_label(self.protocol, self.map_k, self.n_database, self.ties)

    def to_dict(self) -> dict:
        """JSON-able fields (no per-query arrays) plus ``cell_seconds`` and ``map_label``."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "average_precisions"}
        d["options"], d["head_options"] = dict(self.options), dict(self.head_options)
        d["cell_seconds"], d["map_label"] = self.cell_seconds, self.map_label
        return d

    @classmethod
    def from_dict(cls, data: Mapping) -> Evaluation:
        """Rebuild from :meth:`to_dict` (or an older stored record: missing fields take their defaults, JSON
        ``null`` floats become NaN)."""
        kw = {}
        for f in fields(cls):
            if f.name == "average_precisions" or f.name not in data:
                continue
            v = data[f.name]
            if isinstance(f.default, float):
                v = NAN if v is None else float(v)
            kw[f.name] = v
        return cls(**kw)


def _no_relevant_mean(ap: np.ndarray, rule: str) -> float:
    if ap.size == 0:
        return NAN
    if rule == "zero":
        return float(np.nan_to_num(ap, nan=0.0).mean())
    ok = ~np.isnan(ap)
    return float(ap[ok].mean()) if ok.any() else NAN


def _check_radius(radius) -> int:
    return check_int(radius, "radius", lo=0, hint="e.g. radius=2")


def _tie_policy(protocol: Protocol, ties, q_z, db_z, nq: int, ndb: int):
    """(ties argument for the metrics, its name): the protocol's own order unless ``ties`` overrides it."""
    from hashviz.retrieval.metrics import SecondaryDistances

    rule = protocol.ties if ties is None else ties
    if isinstance(rule, str) and rule == "euclidean":
        if q_z is None or db_z is None:
            raise InvalidInputError(f"protocol {protocol.name!r} breaks ties by the continuous embeddings, "
                                    "and none were given", "pass q_z= and db_z= (the rotated embeddings whose "
                                    "signs are the codes), or use evaluate(), which passes them")
        return SecondaryDistances(q_z, db_z), "euclidean"
    if isinstance(rule, str):
        return rule, rule
    return rule, "secondary"


def score_codes(q_codes, db_codes, q_labels, db_labels, *, protocol="hashviz", family: str | None = None,
                protocol_k=None, ties=None, top_k: int = 1000, radius: int = 2, q_z=None, db_z=None,
                seed: int = 0, _problem=None) -> Evaluation:
    """Every retrieval score of one query/database pair of codes under ``protocol``, counting distances once.

    ``family``: the dataset family that picks the protocol's depth (:mod:`hashviz.retrieval.protocols`);
    ``protocol_k`` overrides that depth (a positive int, ``"all"``, or ``-1`` = all but the last). ``ties``
    overrides the protocol's tie order (any ``ties=`` of :mod:`hashviz.retrieval.metrics`). ``q_z``/``db_z``: the
    continuous embeddings whose signs are the codes (needed by ``h2q``, which breaks ties by them).
    Returns an :class:`Evaluation` with the retrieval fields filled (quantizer fields left at their defaults).
    """
    from hashviz.retrieval.metrics import _check_k, _prepare, _radius_curves, _resolve_ties, ranked_scores

    proto = get_protocol(protocol)
    p = _problem if _problem is not None else _prepare(q_codes, db_codes, q_labels, db_labels)
    radius = _check_radius(radius)
    k = _check_k(top_k, p.ndb, "top_k")
    depth = proto.resolve_k(p.ndb, family, protocol_k)
    tie_arg, tie_name = _tie_policy(proto, ties, q_z, db_z, p.nq, p.ndb)
    if tie_name == "random":
        tie_name = _resolve_ties(tie_arg, seed, p.nq, p.ndb)[2]
    scored = ranked_scores(p, (depth, k), tie_arg, seed)      # fills the counts when it runs an ordered pass
    ap_first = ranked_scores(p, (depth,), "optimistic")[depth][0]
    ap_last = ranked_scores(p, (depth,), "pessimistic")[depth][0]
    counts = p.counts()
    n_no_rel = int((counts[:, 1, :].sum(axis=1) == 0).sum())
    ap, _ = scored[depth]
    ap_k, relk = scored[k]
    prec, _ = _radius_curves(counts, min(radius, p.nd - 1), "macro")
    ap_store = np.nan_to_num(ap, nan=0.0) if proto.no_relevant == "zero" else ap
    return Evaluation(
        protocol=proto.name, ties=tie_name, map=_no_relevant_mean(ap, proto.no_relevant), map_k=depth,
        map_optimistic=_no_relevant_mean(ap_first, proto.no_relevant),
        map_pessimistic=_no_relevant_mean(ap_last, proto.no_relevant),
        map_at_k=_no_relevant_mean(ap_k, proto.no_relevant),
        p_at_k=float(np.mean(relk / k)) if p.nq else NAN, top_k=k,
        p_within_radius=float(prec[-1]) if p.nq else NAN, radius=radius, n_query=p.nq, n_database=p.ndb,
        n_no_relevant=n_no_rel, average_precisions=ap_store)


def score_protocols(q_codes, db_codes, q_labels, db_labels, protocols: Iterable | str = "all", *,
                    family: str | None = None, protocol_k=None, top_k: int = 1000, radius: int = 2, q_z=None,
                    db_z=None, ties=None) -> list[Evaluation]:
    """The same codes under several protocols (``"all"``: every preset, or one name), sharing one distance count:
    the "same codes, every protocol" table. ``protocol_k`` (if given) overrides every protocol's depth, ``ties``
    (if given) every protocol's tie order."""
    from hashviz.retrieval.metrics import _prepare

    p = _prepare(q_codes, db_codes, q_labels, db_labels)
    return [score_codes(None, None, None, None, protocol=proto, family=family, protocol_k=protocol_k, ties=ties,
                        top_k=top_k, radius=radius, q_z=q_z, db_z=db_z, _problem=p)
            for proto in protocol_list(protocols)]


def family_of(meta: Mapping | None, family: str | None = None) -> str:
    """The dataset family for an embeddings bundle: ``family`` if given, else its ``meta["family"]``, else the
    registry's family of ``meta["dataset"]`` ('' when unknown: presets use their defaults)."""
    if family is not None:
        return str(family)
    meta = dict(meta or {})
    if meta.get("family"):
        return str(meta["family"])
    return dataset_family(meta.get("dataset"))


__all__ = ["Evaluation", "family_of", "score_codes", "score_protocols"]
