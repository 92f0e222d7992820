r"""Retrieval metrics for Hamming ranking, exact under ties, plus code-quality measures.

Relevance: labels ``(n,)`` ints (relevant = equal) or ``(n, c)`` multi-hot (relevant = share >= 1 label).
Queries are ranked against the database by Hamming distance; since distances take only n_bits + 1 values,
ties are massive, and the order inside a tie group changes mAP by 1–2 points. ``ties=`` says which order:

- ``"expected"`` (default): the exact expectation over uniformly random orders inside every tie group
  (McSherry & Najork, ECIR 2008), in closed form from per-distance counts — no sort.
- ``"stable"``: database index order inside ties (what published code does once its sort is stable).
- ``"optimistic"`` / ``"pessimistic"``: relevant items first / last inside ties.
- ``"random"``: one uniformly random order, from ``seed`` (keyword, default 0; ``ties=("random", seed)`` works
  too): the database is shuffled once by ``np.random.default_rng(seed).permutation(ndb)`` and ties are broken in
  that order for every query — what evaluating a database stored in shuffled order with a stable sort gives.
- a float array ``(nq, ndb)`` of secondary distances: ties broken by it, then by index (the HQ authors' protocol
  uses the Euclidean distance of L2-normalised embeddings: :func:`normalized_euclidean_distances`).

Definitions (per query; ``rel_i`` relevance of the item at rank i, ``R`` relevant items in the database,
``k`` clipped to the database size, ``top_k=None`` meaning k = ndb):

- AP@k (deep-hashing convention): ``(1 / R_k) * sum_{i<=k, rel_i} P(i)``, ``P(i) = (sum_{j<=i} rel_j) / i``,
  ``R_k = sum_{i<=k} rel_i``; 0 when ``R_k = 0``. AP@all is k = ndb. A query with ``R = 0`` has AP = NaN in
  :func:`average_precisions` and is left out of :func:`mean_average_precision`
  (:func:`retrieval_report` counts them in ``n_no_relevant``).
- P@k = ``R_k / k``, averaged over all queries.
- ``"expected"``: a tie group of n items (r relevant) following N items (Rb relevant). By linearity and
  exchangeability, position p of the group is relevant with probability r/n, and given that, the other relevant
  items among its p - 1 predecessors number (p - 1)(r - 1)/(n - 1) on average, so the expected sum of precisions
  of the group's relevant items within its first m positions, given x relevant there, is
  ``f(x) = (x/m) sum_{p=1}^{m} [Rb + 1 + (p - 1)(x - 1)/(m - 1)] / (N + p)``
  ``     = (x/m) [(Rb + 1) A + (x - 1)/(m - 1) B]``, ``A = H_{N+m} - H_N``, ``B = m - (N + 1) A``
  (H harmonic numbers). Groups entirely in the top k contribute ``f(r)`` with m = n. If k cuts a group
  (m = k - N < n), the number X of relevant items in the top k is hypergeometric(n, r, m) and, given X = x, the
  earlier groups are independent of it, so ``E[AP@k] = sum_x P(X = x) (S + f(x)) / (Rb + x)`` (S = expected sum of
  the earlier groups) — exact, O(n_bits + spread of X) per query.
- ``"optimistic"`` / ``"pessimistic"`` use the same counts: ``sum_{j=1}^{a} (Rb + j)/(N0 + j)
  = a + (Rb - N0)(H_{N0+a} - H_{N0})`` with N0 = N (first) or N + n - r (last).

For AP@all and for P@k, optimistic >= any order >= pessimistic. For AP@k with k cutting a tie group the deep
-hashing convention is not monotone (an extra relevant item at a late rank lowers the mean), so the two are the
relevant-first/-last orders, not bounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hashviz.errors import InvalidInputError
from hashviz.retrieval.relevance import LabelPair, check_labels
from hashviz.retrieval.search import check_code_pair, histogram_words
from hashviz.validate import check_int, is_int

__all__ = [
    "TIES", "SecondaryDistances", "average_precisions", "bit_balance", "bit_correlation", "mean_average_precision",
    "normalized_euclidean_distances", "precision_at_k", "precision_recall_by_radius", "precision_within_radius",
    "quantization_error", "retrieval_report",
]

TIES = ("expected", "stable", "optimistic", "pessimistic", "random")
_CLOSED_FORM = {"expected": 0, "optimistic": 1, "pessimistic": 2}
_TIES_HINT = ('use ties="expected" (default), "stable", "optimistic", "pessimistic", "random" (with seed=...) '
              "or a float array (n_query, n_database) of secondary distances")
_ORDER_BLOCK_BYTES = 32 * 1024 * 1024


# ----------------------------------------------------------------------------------------------- preparation
@dataclass
class _Problem:
    qw: np.ndarray
    dw: np.ndarray
    n_bytes: int
    labels: LabelPair
    label_args: tuple
    _counts: np.ndarray | None = field(default=None, repr=False)

    @property
    def nq(self) -> int:
        return self.qw.shape[0]

    @property
    def ndb(self) -> int:
        return self.dw.shape[0]

    @property
    def nd(self) -> int:
        return 8 * self.n_bytes + 1

    def counts(self) -> np.ndarray:
        if self._counts is None:
            self._counts = histogram_words(self.qw, self.dw, self.label_args, self.nd)
        return self._counts


def _prepare(q_codes, db_codes, q_labels, db_labels) -> _Problem:
    qw, dw, nbytes = check_code_pair(q_codes, db_codes)
    pair = check_labels(q_labels, db_labels, qw.shape[0], dw.shape[0])
    return _Problem(qw, dw, nbytes, pair, pair.kernel_args())


def _check_k(k, ndb: int, name: str) -> int:
    k = check_int(k, name, lo=1, hint=f"pass e.g. {name}=1000 (values above the database size are clipped)")
    return min(k, ndb)


def _resolve_ties(ties, seed, nq: int, ndb: int):
    """('closed', mode) | ('order', order array (0|1|nq, ndb)) | ('secondary', float array (nq, ndb))."""
    if isinstance(ties, tuple) and len(ties) == 2 and ties[0] == "random":
        ties, seed = "random", ties[1]
    if isinstance(ties, str):
        if ties in _CLOSED_FORM:
            return "closed", _CLOSED_FORM[ties], ties
        if ties == "stable":
            return "order", np.zeros((0, 0), np.int64), ties
        if ties == "random":
            seed = check_int(seed, 'the seed of ties="random"', hint="pass seed=0")
            perm = np.random.default_rng(seed).permutation(ndb).astype(np.int64)
            return "order", perm[None, :], f"random(seed={int(seed)})"
        raise InvalidInputError(f"unknown ties={ties!r}", _TIES_HINT)
    if isinstance(ties, SecondaryDistances):
        if ties.shape != (nq, ndb):
            raise InvalidInputError(f"secondary distances are for {ties.shape} pairs, not ({nq}, {ndb})", _TIES_HINT)
        return "secondary", ties, "secondary"
    if isinstance(ties, np.ndarray | list):
        sec = np.asarray(ties)
        if sec.shape != (nq, ndb) or not np.issubdtype(sec.dtype, np.number):
            raise InvalidInputError(f"a ties array must be numeric of shape (n_query, n_database) = ({nq}, {ndb}), "
                                    f"got {sec.dtype} {sec.shape}", _TIES_HINT)
        if not np.isfinite(sec).all():
            raise InvalidInputError("the ties array has NaN or infinite entries", "give finite distances")
        return "secondary", sec, "secondary"
    raise InvalidInputError(f"unknown ties={ties!r}", _TIES_HINT)


def _harmonic(n: int) -> np.ndarray:
    """H[i] = 1 + 1/2 + ... + 1/i for i = 0..n (accumulated in extended precision)."""
    h = np.zeros(n + 1, np.longdouble)
    np.cumsum(1.0 / np.arange(1, n + 1, dtype=np.longdouble), out=h[1:])
    return h.astype(np.float64)


def _ap_and_relk(p: _Problem, k: int, ties, seed):
    """Per-query AP@k (NaN when no relevant item in the database) and (expected) relevant items in the top k."""
    return ranked_scores(p, (k,), ties, seed)[k]


def ranked_scores(p: _Problem, ks, ties, seed: int = 0) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{k: (AP@k per query, relevant items in the top k per query)}`` for every k in ``ks`` (each already
    clipped to 1..ndb), from one pass over the database: the closed forms read the cached per-distance counts;
    an explicit order (stable, random, secondary distances) runs one ordered pass for all ks, which also fills
    the counts cache. AP is NaN for queries without a relevant database item."""
    from hashviz.retrieval import _kernels as K

    ks = tuple(dict.fromkeys(int(k) for k in ks))
    kind, payload, _ = _resolve_ties(ties, seed, p.nq, p.ndb)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if kind == "closed":
        counts = p.counts()
        H = _harmonic(p.ndb)
        for k in ks:
            ap, relk = np.empty(p.nq, np.float64), np.empty(p.nq, np.float64)
            K.closed_form_ap(counts, k, payload, H, ap, relk)
            out[k] = (ap, relk)
        return out
    qi, di, qm, dm, multi = p.label_args
    karr = np.asarray(ks, np.int64)
    s = np.zeros((p.nq, len(ks)))
    c = np.zeros((p.nq, len(ks)), np.int64)
    r = np.zeros(p.nq, np.int64)
    fill = p._counts is None
    counts = np.zeros((p.nq if fill else 0, 2, p.nd), np.int64)

    def run(a, b, order):
        cnt = counts[a:b] if fill else counts
        if multi:
            K.ordered_ap(p.qw[a:b], p.dw, qi, di, qm[a:b], dm, True, p.nd, order, karr, s[a:b], c[a:b], r[a:b], cnt)
        else:
            K.ordered_ap(p.qw[a:b], p.dw, qi[a:b], di, qm, dm, False, p.nd, order, karr, s[a:b], c[a:b], r[a:b], cnt)

    if kind == "order":
        K.run_blocks(lambda a, b: run(a, b, payload), p.nq, p.ndb)
    else:
        rows = max(1, _ORDER_BLOCK_BYTES // (8 * p.ndb))

        def run_secondary(a, b):
            for s0 in range(a, b, rows):
                s1 = min(b, s0 + rows)
                block = payload.rows(s0, s1) if isinstance(payload, SecondaryDistances) else payload[s0:s1]
                run(s0, s1, np.argsort(block, axis=1, kind="stable"))

        K.run_blocks(run_secondary, p.nq, p.ndb)
    if fill:
        p._counts = counts
    for i, k in enumerate(ks):
        with np.errstate(invalid="ignore", divide="ignore"):
            ap = np.where(c[:, i] > 0, s[:, i] / np.maximum(c[:, i], 1), 0.0)
        ap[r == 0] = np.nan
        out[k] = (ap, c[:, i].astype(np.float64))
    return out


class SecondaryDistances:
    """A secondary distance for ``ties=`` computed block by block instead of held as an (nq, ndb) array: the
    Euclidean distance between L2-normalised rows of ``q_z`` and ``db_z`` (the HQ authors' tie-break), the
    same numbers as :func:`normalized_euclidean_distances`."""

    def __init__(self, q_z, db_z) -> None:
        q, db = _as_float2d(q_z, "query embeddings"), _as_float2d(db_z, "database embeddings")
        if q.shape[1] != db.shape[1]:
            raise InvalidInputError(f"query embeddings have {q.shape[1]} columns but database {db.shape[1]}",
                                    "use embeddings from the same model")
        self.q, self.db = _unit_rows(q), _unit_rows(db)
        self.shape = (q.shape[0], db.shape[0])

    def rows(self, start: int, stop: int) -> np.ndarray:
        return _euclidean(self.q[start:stop], self.db)


def _mean_left_out(ap: np.ndarray) -> tuple[float, int]:
    ok = ~np.isnan(ap)
    return (float(ap[ok].mean()) if ok.any() else float("nan")), int((~ok).sum())


# -------------------------------------------------------------------------------------------------- public
def average_precisions(q_codes, db_codes, q_labels, db_labels, *, top_k: int | None = None, ties="expected",
                       seed: int = 0) -> np.ndarray:
    """Per-query AP (``top_k=None``) or AP@k, float64 (nq,); NaN for queries with no relevant database item.

    See the module docstring for the AP@k convention and the ``ties`` policies.
    """
    p = _prepare(q_codes, db_codes, q_labels, db_labels)
    k = p.ndb if top_k is None else _check_k(top_k, p.ndb, "top_k")
    return _ap_and_relk(p, k, ties, seed)[0]


def mean_average_precision(q_codes, db_codes, q_labels, db_labels, *, top_k: int | None = None,
                           ties="expected", seed: int = 0) -> float:
    """mAP (``top_k=None``) or mAP@k: the mean of :func:`average_precisions` over queries that have at least
    one relevant database item (the others are left out; :func:`retrieval_report` gives their number).
    NaN if no query has a relevant item."""
    ap = average_precisions(q_codes, db_codes, q_labels, db_labels, top_k=top_k, ties=ties, seed=seed)
    return _mean_left_out(ap)[0]


def precision_at_k(q_codes, db_codes, q_labels, db_labels, k: int, *, ties="expected", seed: int = 0) -> float:
    """P@k = (relevant items in the top k) / k, averaged over all queries (k clipped to the database size).

    Under ``ties="expected"`` a tie group of n items (r relevant) cut after m of its items contributes m r / n."""
    p = _prepare(q_codes, db_codes, q_labels, db_labels)
    k = _check_k(k, p.ndb, "k")
    relk = _ap_and_relk(p, k, ties, seed)[1]
    return float(np.mean(relk / k)) if p.nq else float("nan")


def _radius_curves(counts: np.ndarray, n_bits: int, average: str):
    if average not in ("macro", "micro"):
        raise InvalidInputError(f"unknown average={average!r}", 'use average="macro" (default) or "micro"')
    counts = counts[:, :, : n_bits + 1]
    ret = np.cumsum(counts[:, 0], axis=1, dtype=np.float64)     # retrieved within radius r
    hit = np.cumsum(counts[:, 1], axis=1, dtype=np.float64)     # relevant retrieved within radius r
    R = hit[:, -1:]
    if average == "micro":
        tot_ret, tot_hit, tot_rel = ret.sum(0), hit.sum(0), R.sum()
        precision = np.divide(tot_hit, tot_ret, out=np.zeros_like(tot_hit), where=tot_ret > 0)
        recall = tot_hit / tot_rel if tot_rel > 0 else np.full_like(tot_hit, np.nan)
        return precision, recall
    precision = np.divide(hit, ret, out=np.zeros_like(hit), where=ret > 0).mean(axis=0)
    has = R[:, 0] > 0
    recall = (hit[has] / R[has]).mean(axis=0) if has.any() else np.full(n_bits + 1, np.nan)
    return precision, recall


def _n_bits(p: _Problem, n_bits: int | None) -> int:
    top = 8 * p.n_bytes
    if n_bits is None:
        return top
    if not is_int(n_bits) or not top - 8 < n_bits <= top:
        raise InvalidInputError(f"n_bits={n_bits!r} does not match codes of {p.n_bytes} bytes",
                                f"give the n_bits the codes were packed with ({top - 7} to {top})")
    if p.counts()[:, 0, n_bits + 1:].any():
        raise InvalidInputError(f"some distances exceed n_bits={n_bits}: the codes have set padding bits",
                                "pack codes with hashviz.codes.pack_bits (padding bits 0)")
    return int(n_bits)


def precision_recall_by_radius(q_codes, db_codes, q_labels, db_labels, *, n_bits: int | None = None,
                               average: str = "macro"):
    """Precision and recall of Hamming-ball retrieval for every radius 0..n_bits, two float64 arrays.

    The items retrieved at radius r are those at distance <= r (ties do not matter). ``average="macro"``
    (default): precision[r] = mean over all queries of hits / retrieved, a query retrieving nothing counting 0
    (so precision[2] equals :func:`precision_within_radius`); recall[r] = mean over queries with at least one
    relevant item of hits / relevant. ``"micro"``: pooled sums, precision 0 where nothing is retrieved at all.
    ``n_bits`` defaults to 8 x bytes per code; pass the true n_bits for codes whose length is not a multiple of 8.
    """
    p = _prepare(q_codes, db_codes, q_labels, db_labels)
    nb = _n_bits(p, n_bits)
    return _radius_curves(p.counts(), nb, average)


def precision_within_radius(q_codes, db_codes, q_labels, db_labels, radius: int = 2) -> float:
    """Mean over queries of the precision of the items within Hamming distance ``radius`` (a query with no item
    within the radius counts 0) — "P@r<=2" of deep-hashing papers."""
    radius = check_int(radius, "radius", lo=0, hint="e.g. radius=2")
    p = _prepare(q_codes, db_codes, q_labels, db_labels)
    if p.nq == 0:
        return float("nan")
    precision, _ = _radius_curves(p.counts(), min(int(radius), p.nd - 1), "macro")
    return float(precision[-1])


def retrieval_report(q_codes, db_codes, q_labels, db_labels, *, top_k: int = 1000, ties="expected",
                     seed: int = 0, radius: int = 2):
    """mAP@all, its tie bounds, mAP@k, P@k, P@r<=radius and the queries with no relevant item, counting
    distances once: :func:`hashviz.retrieval.report.score_codes` under the ``hashviz`` protocol with ``ties``.
    Returns an :class:`~hashviz.retrieval.report.Evaluation`."""
    from hashviz.retrieval.report import score_codes

    return score_codes(q_codes, db_codes, q_labels, db_labels, protocol="hashviz", ties=ties, seed=seed,
                       top_k=top_k, radius=radius)


def normalized_euclidean_distances(q_z, db_z, *, dtype=np.float32) -> np.ndarray:
    """Euclidean distances between L2-normalised rows, (nq, ndb) — a secondary distance for ``ties=``
    (the HQ authors' evaluation breaks Hamming ties by it). Zero rows stay zero."""
    q, db = _as_float2d(q_z, "query embeddings"), _as_float2d(db_z, "database embeddings")
    if q.shape[1] != db.shape[1]:
        raise InvalidInputError(f"query embeddings have {q.shape[1]} columns but database {db.shape[1]}",
                                "use embeddings from the same model")
    return _euclidean(_unit_rows(q), _unit_rows(db)).astype(dtype, copy=False)


def _euclidean(qn: np.ndarray, dn: np.ndarray) -> np.ndarray:
    sq = (qn * qn).sum(1)[:, None] + (dn * dn).sum(1)[None, :] - 2.0 * (qn @ dn.T)
    return np.sqrt(np.maximum(sq, 0.0))


# ------------------------------------------------------------------------------------------ code quality
def _as_float2d(z, name: str) -> np.ndarray:
    z = np.asarray(z)
    if z.ndim != 2 or not np.issubdtype(z.dtype, np.number) or z.shape[1] == 0:
        raise InvalidInputError(f"{name} must be a numeric 2-D array (n, n_bits), got {z.dtype} {z.shape}",
                                "give one row per item")
    z = z.astype(np.float64)
    if not np.isfinite(z).all():
        raise InvalidInputError(f"{name} contain NaN or infinite values", "check the model that produced them")
    return z


def _unit_rows(z: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(z, axis=1, keepdims=True)
    return np.divide(z, norm, out=np.zeros_like(z), where=norm > 0)


def quantization_error(z, *, rescale: bool = True, axis: int | None = None):
    """Mean over entries of ``(|u| - 1)^2`` = ``(u - sgn u)^2``, with ``u`` the rows of ``z`` rescaled to norm
    ``sqrt(n_bits)`` (``rescale=False``: ``u = z`` as given). Zero rows stay zero (error 1 per entry).

    The one definition of the quantization error (DESIGN.md §3): the quantizers' fit curves, the evaluation and
    the maps all call it. ``axis=1``: one value per row (a float64 array) instead of the overall mean (a float;
    NaN when ``z`` has no rows)."""
    z = _as_float2d(z, "embeddings")
    u = _unit_rows(z) * np.sqrt(z.shape[1]) if rescale else z
    if axis is not None:
        return np.mean((np.abs(u) - 1.0) ** 2, axis=axis)
    return float(np.mean((np.abs(u) - 1.0) ** 2)) if u.size else float("nan")


def _as_bits(codes_or_bits, n_bits: int | None) -> np.ndarray:
    """bool (n, n_bits): bool arrays are bits, uint8 arrays packed codes, other arrays of {0, 1} or {-1, +1}
    are bits with 1 / +1 as True."""
    from hashviz.codes import unpack_bits

    x = np.asarray(codes_or_bits)
    if x.ndim != 2:
        raise InvalidInputError(f"codes or bits must be 2-D, got shape {x.shape}", "one row per item")
    if x.dtype == np.uint8:
        return unpack_bits(x, 8 * x.shape[1] if n_bits is None else n_bits)
    if x.dtype == bool:
        bits = x
    elif np.issubdtype(x.dtype, np.number) and (np.isin(x, (0, 1)).all() or np.isin(x, (-1, 1)).all()):
        bits = x > 0
    else:
        raise InvalidInputError(f"cannot read {x.dtype} array as bits",
                                "pass packed uint8 codes (with n_bits), bool bits, or a 0/1 or ±1 matrix")
    if n_bits is not None and n_bits != bits.shape[1]:
        raise InvalidInputError(f"n_bits={n_bits} but the bits have {bits.shape[1]} columns", "")
    return bits


def bit_balance(codes_or_bits, n_bits: int | None = None) -> np.ndarray:
    """Fraction of items with bit = 1 (= +1) per bit, float64 (n_bits,); 0.5 is a perfectly balanced bit.
    ``codes_or_bits``: packed uint8 codes (``n_bits`` defaults to 8 x bytes) or bool / 0-1 / ±1 bits."""
    bits = _as_bits(codes_or_bits, n_bits)
    return bits.mean(axis=0, dtype=np.float64) if bits.shape[0] else np.full(bits.shape[1], np.nan)


def bit_correlation(codes_or_bits, n_bits: int | None = None) -> np.ndarray:
    """Pearson correlation of the ±1 bits, float64 (n_bits, n_bits). Diagonal 1; a constant bit has
    correlation 0 with every other bit (not NaN)."""
    bits = _as_bits(codes_or_bits, n_bits)
    n = bits.shape[0]
    # from exact counts (Pearson of ±1 bits = the phi coefficient of 0/1 bits): P(1), P(both 1) by one 0/1 matrix
    # product — integer sums, exact in float32 below 2**24 rows — instead of centring a float64 copy (6–9× faster
    # at 200,000 × 128; the same numbers to ~1e-14)
    B = bits.astype(np.float32 if n < 2 ** 24 else np.float64)
    p = B.sum(axis=0, dtype=np.float64) / max(n, 1)
    cov = (B.T @ B).astype(np.float64) / max(n, 1) - np.outer(p, p)
    sd = np.sqrt(np.maximum(p * (1.0 - p), 0.0))
    denom = sd[:, None] * sd[None, :]
    corr = np.divide(cov, denom, out=np.zeros_like(cov), where=denom > 0)
    corr = np.clip(corr, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return corr
