"""The data behind the Codes & embeddings maps, UI-free: a seeded subsample of the run, its codes before (sign)
and after a rotation, per-point quantization error, the neighbours of a clicked point in code space, and what a
selection shows and exports (per-class counts, a sample across classes, a CSV of ids, classes and codes)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from hashviz.codes import to_bits
from hashviz.embeddings import Embeddings
from hashviz.quantize.base import quantization_error, sphere_rows
from hashviz.session.browse import neighbours
from hashviz.viz.project import MAX_POINTS, subsample


def point_errors(quantizer, z: np.ndarray) -> np.ndarray:
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
    def build(cls, emb: Embeddings, before, after, max_points: int = MAX_POINTS) -> MapData:
        rows = subsample(emb.n, max_points)
        z = emb.z[rows]
        return cls(emb=emb, rows=rows, z=z, labels=None if emb.multilabel else emb.labels[rows],
                   bits_before=to_bits(before.transform(z)), bits_after=to_bits(after.transform(z)))

    @property
    def class_labels(self) -> np.ndarray:
        """Labels of the map's rows: (n,) class ids, or (n, c) multi-hot for multi-label runs."""
        return self.emb.labels[self.rows]

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

    def coordinates(self, quantizer) -> np.ndarray:
        """Rotated coordinates rescaled to norm √n_bits (the two-coordinate view)."""
        return sphere_rows(quantizer.transform(self.z))


def class_counts(emb: Embeddings, rows) -> list[tuple[str, int]]:
    """How many of ``rows`` fall in each class, largest first (ties by class order); for multi-label runs an item
    counts once for each of its labels. Classes with no row are left out."""
    rows = np.asarray(rows, dtype=np.int64)
    n_classes = len(emb.class_names)
    if emb.multilabel:
        counts = np.asarray(emb.labels[rows], dtype=bool).sum(axis=0)
    else:
        counts = np.bincount(emb.labels[rows], minlength=n_classes)
    order = sorted((c for c in range(len(counts)) if counts[c]), key=lambda c: (-counts[c], c))
    return [(str(emb.class_names[c]), int(counts[c])) for c in order]


def sample_across_classes(emb: Embeddings, rows, limit: int = 80, seed: int = 0) -> np.ndarray:
    """At most ``limit`` of ``rows`` for the image grid, spread over the classes they contain: each class gets a
    share proportional to its count but at least one image while the limit allows (small classes are not drowned
    by big ones), drawn at random (seeded) inside the class; the result is ordered by class, then row. Multi-label
    runs sample by each row's first label. Fewer rows than ``limit``: all of them."""
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if len(rows) <= limit:
        return rows
    lab = emb.labels[rows]
    if emb.multilabel:
        lab = np.where(np.asarray(lab, bool).any(axis=1), np.asarray(lab, bool).argmax(axis=1), -1)
    classes, counts = np.unique(lab, return_counts=True)
    quota = np.minimum(counts, 1)
    if quota.sum() > limit:  # more classes than slots: the biggest classes get one each
        quota[:] = 0
        quota[np.argsort(-counts, kind="stable")[:limit]] = 1
    while quota.sum() < limit:  # hand out the remaining slots in proportion to what each class still has
        spare = counts - quota
        room = limit - quota.sum()
        add = np.floor(room * spare / spare.sum()).astype(np.int64)
        if add.sum() == 0:
            add[np.argmax(spare)] = 1
        quota += np.minimum(add, spare)
    rng = np.random.default_rng(seed)
    picked = [np.sort(rng.choice(rows[lab == c], size=q, replace=False)) for c, q in zip(classes, quota) if q]
    return np.concatenate(picked) if picked else rows[:0]


def _cell(text: str) -> str:
    """A CSV cell of user text that a spreadsheet will not run as a formula (a leading ``'`` before = + - @)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def selection_csv(emb: Embeddings, rows, before, after, after_name: str) -> str:
    """The selected rows as CSV: ``row`` (in the run's embeddings), ``id`` (in the source dataset), ``split``,
    ``class`` (names, ``;``-separated for multi-label), and the codes before (sign) and after the rotation as bit
    strings (first bit first)."""
    from hashviz.viz.figures import code_strings

    rows = np.unique(np.asarray(rows, dtype=np.int64))
    z = emb.z[rows]
    codes_b = code_strings(to_bits(before.transform(z)), group=emb.dim)
    codes_a = code_strings(to_bits(after.transform(z)), group=emb.dim)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["row", "id", "split", "class", "code_sign", f"code_{after_name}"])
    split_names = {0: "train", 1: "query", 2: "database"}
    for k, r in enumerate(rows):
        if emb.multilabel:
            cls = ";".join(str(emb.class_names[c]) for c in np.flatnonzero(emb.labels[r]))
        else:
            cls = str(emb.class_names[emb.labels[r]])
        w.writerow([int(r), int(emb.ids[r]), split_names.get(int(emb.split[r]), str(int(emb.split[r]))),
                    _cell(cls), codes_b[k], codes_a[k]])
    return buf.getvalue()
