"""Brute-force references for the retrieval tests: literal loops, no shortcuts."""

from __future__ import annotations

import itertools

import numpy as np


def popcount_bin(codes_row_a: np.ndarray, codes_row_b: np.ndarray) -> int:
    """Hamming distance of two packed code rows by ``bin().count('1')`` over bytes."""
    return sum(bin(int(x) ^ int(y)).count("1") for x, y in zip(codes_row_a, codes_row_b))


def hamming_bits(q_bits: np.ndarray, db_bits: np.ndarray) -> np.ndarray:
    return (q_bits[:, None, :] != db_bits[None, :, :]).sum(-1)


def relevance_brute(q_labels, db_labels) -> np.ndarray:
    q, db = np.asarray(q_labels), np.asarray(db_labels)
    out = np.zeros((len(q), len(db)), bool)
    for i in range(len(q)):
        for j in range(len(db)):
            out[i, j] = (q[i] == db[j]) if q.ndim == 1 else bool(np.any(q[i].astype(bool) & db[j].astype(bool)))
    return out


def ap_of_ranking(rel_in_rank_order, k=None) -> float:
    """Deep-hashing AP@k of one ranking by a literal loop: mean precision at the relevant items in the top k."""
    rel = list(rel_in_rank_order)
    k = len(rel) if k is None else min(k, len(rel))
    hits, total = 0, 0.0
    for i in range(k):
        if rel[i]:
            hits += 1
            total += hits / (i + 1)
    return total / hits if hits else 0.0


def tie_groups(dist_row: np.ndarray) -> list[np.ndarray]:
    """Database indices grouped by distance, groups in increasing distance, index order inside."""
    return [np.flatnonzero(dist_row == d) for d in np.unique(dist_row)]


def expected_by_enumeration(dist_row, rel_row, k=None, stat="ap") -> float:
    """Mean of AP@k (or relevant-in-top-k / k) over every order inside every tie group (small cases only)."""
    groups = tie_groups(np.asarray(dist_row))
    vals = []
    for perms in itertools.product(*[itertools.permutations(g) for g in groups]):
        order = np.concatenate([np.asarray(p, dtype=int) for p in perms])
        vals.append(_stat(rel_row[order], k, stat))
    return float(np.mean(vals))


def _stat(rel, k, stat):
    if stat == "ap":
        return ap_of_ranking(rel, k)
    kk = len(rel) if k is None else min(k, len(rel))
    return float(np.sum(rel[:kk])) / kk


def order_with_ties(dist_row, rel_row, policy, secondary=None):
    """Ranking (database indices) by distance with ties broken by ``policy``."""
    dist_row = np.asarray(dist_row)
    if policy == "stable":
        return np.argsort(dist_row, kind="stable")
    if policy == "optimistic":
        return np.lexsort((~rel_row, dist_row))
    if policy == "pessimistic":
        return np.lexsort((rel_row, dist_row))
    if policy == "secondary":
        return np.lexsort((secondary, dist_row))
    raise ValueError(policy)
