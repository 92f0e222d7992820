"""Hamming retrieval: relevance from labels, exact top-k search and tie-aware metrics.

- :mod:`hashviz.retrieval.relevance` — labels → relevance (single- or multi-label);
- :mod:`hashviz.retrieval.search` — ``top_k`` and per-distance counts over packed codes;
- :mod:`hashviz.retrieval.metrics` — mAP, mAP@k, P@k, PR by radius, P@r≤2, quantization error, bit balance and
  correlation, with the ``ties=`` policies documented in ``docs/metrics.md``;
- :mod:`hashviz.retrieval.protocols` — each paper's evaluator as a named preset (tie order, depth, no-relevant
  rule);
- :mod:`hashviz.retrieval.report` — :class:`Evaluation`, the one result record, and :func:`score_codes`, every
  score of a cell from one counting pass.

Kernels are compiled with numba on first use (cached on disk); importing this package does not load numba.
"""

from hashviz.retrieval.metrics import (
    TIES,
    SecondaryDistances,
    average_precisions,
    bit_balance,
    bit_correlation,
    mean_average_precision,
    normalized_euclidean_distances,
    precision_at_k,
    precision_recall_by_radius,
    precision_within_radius,
    quantization_error,
    retrieval_report,
)
from hashviz.retrieval.protocols import PROTOCOL_NAMES, PROTOCOLS, Protocol, get_protocol
from hashviz.retrieval.relevance import relevance
from hashviz.retrieval.report import Evaluation, score_codes, score_protocols
from hashviz.retrieval.search import distance_counts, hamming_distances, top_k

__all__ = [
    "PROTOCOLS", "PROTOCOL_NAMES", "TIES", "Evaluation", "Protocol", "SecondaryDistances", "average_precisions",
    "bit_balance", "bit_correlation", "distance_counts", "get_protocol", "hamming_distances",
    "mean_average_precision", "normalized_euclidean_distances", "precision_at_k", "precision_recall_by_radius",
    "precision_within_radius", "quantization_error", "relevance", "retrieval_report", "score_codes",
    "score_protocols", "top_k",
]
