"""The data behind the Codes & embeddings maps, UI-free: a seeded subsample of the run, its codes before (sign)
and after a rotation, per-point quantization error, the neighbours of a clicked point in code space, how pure
each map's neighbourhoods are (so the page's text can say what is true of the run on screen), and what a
selection shows and exports (per-class counts, a sample across classes, a CSV of ids, classes and codes)."""

from __future__ import annotations

import csv
import io
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

    def coordinates(self, quantizer: Quantizer) -> np.ndarray:
        """Rotated coordinates rescaled to norm √n_bits (the two-coordinate view)."""
        return sphere_rows(quantizer.transform(self.z))


PURITY_K = 10
PURITY_ANCHORS = 1000


def neighbourhood_purity(points: np.ndarray, labels: np.ndarray, *, k: int = PURITY_K,
                         anchors: np.ndarray | None = None) -> float:
    """Mean over ``anchors`` (rows; default all) of the share of their ``k`` nearest other rows that share a label
    with them (labels (n,) ints or (n, c) multi-hot). Bool ``points`` are codes, compared by Hamming distance,
    whose ties are broken in expectation: the tie group the k-th neighbour falls in counts with its share of same-
    label rows. Float ``points`` are compared by Euclidean distance."""
    from hashviz.codes import hamming_distances, pack_bits

    points = np.asarray(points)
    n = len(points)
    anchors = np.arange(n) if anchors is None else np.asarray(anchors)
    k = int(min(k, n - 1))
    if k < 1:
        return float("nan")
    if points.dtype == bool:
        codes = pack_bits(points)
        dist = np.asarray(hamming_distances(codes[anchors], codes), dtype=np.float64)
    else:
        P = np.asarray(points, dtype=np.float64)
        A = P[anchors]
        dist = np.sqrt(np.maximum((A * A).sum(1)[:, None] + (P * P).sum(1)[None, :] - 2 * A @ P.T, 0.0))
    dist[np.arange(len(anchors)), anchors] = np.inf                 # a point is not its own neighbour
    lab = np.asarray(labels)
    if lab.ndim == 2:
        same = (lab[anchors].astype(np.int64) @ lab.T.astype(np.int64)) > 0
    else:
        same = lab[anchors][:, None] == lab[None, :]
    d_k = np.partition(dist, k - 1, axis=1)[:, k - 1:k]
    closer, tied = dist < d_k, dist == d_k
    expected = (same & closer).sum(1) + (k - closer.sum(1)) * (same & tied).sum(1) / tied.sum(1)
    return float(np.mean(expected / k))


def purities(data: MapData, *, k: int = PURITY_K, n_anchors: int = PURITY_ANCHORS, seed: int = 0) -> dict:
    """Neighbourhood purity of the three maps' spaces — the continuous embeddings, the sign codes and the
    rotated codes — on the same seeded anchors: ``{"embeddings", "before", "after"}``."""
    n = len(data.rows)
    anchors = np.arange(n) if n <= n_anchors else np.sort(np.random.default_rng(seed).choice(n, n_anchors, False))
    labels = data.emb.labels[data.rows]
    return {name: neighbourhood_purity(points, labels, k=k, anchors=anchors)
            for name, points in (("embeddings", data.z), ("before", data.bits_before), ("after", data.bits_after))}


def purity_sentence(p: dict, after_label: str, k: int = PURITY_K) -> str:
    """What the purity numbers say about this run, in words (no claim the numbers do not make)."""
    diff = p["after"] - p["before"]
    head = (f"Neighbourhood purity — the share of a point's {k} nearest neighbours in its own class (codes: "
            f"Hamming distance, ties in expectation): embeddings {p['embeddings']:.3f} · sign codes "
            f"{p['before']:.3f} · {after_label} codes {p['after']:.3f}. ")
    if diff > 0.02:
        return head + f"On this run the rotation tightens the classes: {after_label}'s codes keep more neighbours " \
                      "in their class than sign's."
    if diff < -0.02:
        return head + f"On this run {after_label}'s codes keep fewer neighbours in their class than sign's."
    return head + (f"On this run sign codes already group the classes about as well as {after_label}'s (within "
                   "0.02): expect the two code maps to look alike.")


def class_counts(emb: Embeddings, rows) -> list[tuple[str, int]]:
    """How many of ``rows`` fall in each class, largest first (ties by class order); for multi-label runs an item
    counts once for each of its labels. Classes with no row are left out."""
    counts = emb.class_counts(np.asarray(rows, dtype=np.int64))
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
