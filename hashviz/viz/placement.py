"""Placing a new point on a map that was computed without it: nearest-neighbour placement in code space.

The codes maps (:mod:`hashviz.viz.project`) are UMAP layouts of the database codes under ``metric="hamming"``
(identical codes share one point), cached on disk by content; we do not keep the fitted UMAP model, so its
``transform`` is not available, and refitting to add one point would move every other point. Instead a new
code is put where its nearest codes are: at the point of the codes equal to it when there are any (UMAP gave
them one shared position), else at the mean position of its ``k`` nearest codes in Hamming distance (ties in
map order). The same rule works on the PCA layout shown while UMAP computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashviz.errors import InvalidInputError
from hashviz.validate import check_int

DEFAULT_K = 5


@dataclass(frozen=True)
class Placement:
    """Where a new code falls on a map: ``xy`` (2,), and the map points that placed it (``rows``: indices into
    the map's points, nearest first) with their Hamming ``distances``."""

    xy: np.ndarray
    rows: np.ndarray
    distances: np.ndarray

    @property
    def exact(self) -> bool:
        """The map holds the very same code (distance 0)."""
        return bool(len(self.distances) and self.distances[0] == 0)


def place_by_neighbours(bits, map_bits, layout, k: int = DEFAULT_K) -> Placement:
    """Position of the code ``bits`` (n_bits,) bool on a map whose points have codes ``map_bits`` (n, n_bits) and
    positions ``layout`` (n, 2): the shared position of the equal codes, else the mean of the ``k`` nearest."""
    from hashviz.codes import pack_bits
    from hashviz.retrieval.search import top_k

    bits = np.asarray(bits, dtype=bool).reshape(1, -1)
    map_bits = np.asarray(map_bits, dtype=bool)
    layout = np.asarray(layout, dtype=np.float64)
    if map_bits.ndim != 2 or map_bits.shape[1] != bits.shape[1] or len(layout) != len(map_bits) or len(map_bits) < 1:
        raise InvalidInputError(f"cannot place a {bits.shape[1]}-bit code on a map of {map_bits.shape} codes and "
                                f"{layout.shape} positions", "give the map's own codes and layout")
    check_int(k, "k", lo=1, hint=f"the default is {DEFAULT_K}")
    same = np.flatnonzero((map_bits == bits).all(axis=1))
    if len(same):
        return Placement(xy=layout[same].mean(axis=0), rows=same, distances=np.zeros(len(same), np.int64))
    idx, dist = top_k(pack_bits(bits), pack_bits(map_bits), int(k))
    idx, dist = np.asarray(idx)[0], np.asarray(dist)[0].astype(np.int64)
    return Placement(xy=layout[idx].mean(axis=0), rows=idx, distances=dist)
