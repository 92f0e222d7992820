"""The data behind the Codes & embeddings maps, UI-free: a seeded subsample of the run, its codes before (sign)
and after a rotation, per-point quantization error, and the neighbours of a clicked point in code space."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashviz.codes import to_bits
from hashviz.embeddings import Embeddings
from hashviz.quantize.base import Quantizer, quantization_error, sphere_rows
from hashviz.session.browse import neighbours
from hashviz.viz.project import MAX_POINTS, subsample


def point_errors(quantizer: Quantizer, z: np.ndarray) -> np.ndarray:
    """Quantization error of each row (:func:`hashviz.quantize.base.quantization_error` per row)."""
    return quantization_error(quantizer.transform(z), axis=1)


@dataclass(frozen=True)
class MapData:
    """Rows ``rows`` (indices into the run's embeddings, sorted) of the run shown on the maps, their embeddings,
    labels (None when multi-label) and codes before (sign) and after the chosen rotation."""

    emb: Embeddings
    rows: np.ndarray
    z: np.ndarray
    labels: np.ndarray | None
    bits_before: np.ndarray
    bits_after: np.ndarray

    @classmethod
    def build(cls, emb: Embeddings, before: Quantizer, after: Quantizer, max_points: int = MAX_POINTS) -> MapData:
        rows = subsample(emb.n, max_points)
        z = emb.z[rows]
        return cls(emb=emb, rows=rows, z=z, labels=None if emb.multilabel else emb.labels[rows],
                   bits_before=to_bits(before.transform(z)), bits_after=to_bits(after.transform(z)))

    @property
    def subsampled(self) -> bool:
        return len(self.rows) < self.emb.n

    def position(self, row: int) -> int | None:
        """Where run row ``row`` sits among the map's points (None when the subsample left it out)."""
        i = int(np.searchsorted(self.rows, row))
        return i if i < len(self.rows) and self.rows[i] == row else None

    def ring(self, anchor: int | None, bits: np.ndarray, k: int = 12) -> np.ndarray | None:
        """Run rows of the ``k`` code-space neighbours of ``anchor`` (to ring on a map), None without one."""
        i = None if anchor is None else self.position(anchor)
        return None if i is None else self.rows[neighbours(bits, i, k)[0]]

    def neighbours(self, anchor: int, bits: np.ndarray, k: int = 12):
        """(run rows, Hamming distances, relevant to the anchor) of its ``k`` nearest codes on the map."""
        i = self.position(anchor)
        if i is None:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
        nb, dist = neighbours(bits, i, k)
        rows = self.rows[nb]
        lab = self.emb.labels
        rel = (lab[rows] & lab[anchor]).any(axis=1) if self.emb.multilabel else lab[rows] == lab[anchor]
        return rows, dist, np.asarray(rel, dtype=bool)

    def coordinates(self, quantizer: Quantizer) -> np.ndarray:
        """Rotated coordinates rescaled to norm √n_bits (the two-coordinate view)."""
        return sphere_rows(quantizer.transform(self.z))
