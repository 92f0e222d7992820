"""Semantic (hierarchy-based) class distances and the hierarchical retrieval score.

A label hierarchy is a tree whose leaves are the dataset's classes. The semantic distance between two classes is
the height of their lowest common ancestor divided by the height of the root (Barz & Denzler's measure, used by
SHREWD, Arponen & Bishop 2019): 0 for the same class, 1 for classes that only meet at the root; in a two-level
tree (class → family → root) two classes of the same family are 1/2 apart. Semantic similarity = 1 − distance.

Accepted hierarchy forms (:func:`class_distance_matrix`):

- a sequence of ``n_classes`` parent names aligned with the classes — the form of
  :mod:`hashviz.data.hierarchy` (``parents[i]`` is the family of class ``i``; a two-level tree);
- a mapping ``{child: parent}`` where the children that are classes are given by index (``0``, ``"0"``) or by
  name (with ``class_names``), and inner nodes may have parents of their own (any depth).

The retrieval score :func:`mean_semantic_similarity_at_k` is the mean, over queries, of the mean semantic
similarity between the query and its k nearest database items in Hamming distance (SHREWD's "hierarchical
precision@k"). For multi-label items the similarity of two items is the largest similarity between one label of
each (1 when they share a label).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hashviz.codes import hamming_distances
from hashviz.errors import InvalidInputError
from hashviz.validate import check_choice, check_int

_HINT = 'give one parent per class, e.g. {"cat": "animal", "dog": "animal", "truck": "vehicle"}'


def _class_index(key, n_classes: int, names: dict[str, int]) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, int | np.integer):
        return int(key) if 0 <= int(key) < n_classes else None
    if isinstance(key, str):
        if key in names:
            return names[key]
        if not names and key.strip().isdigit() and int(key) < n_classes:
            return int(key)
    return None


def hierarchy_parents(hierarchy, n_classes: int, class_names: Sequence[str] | None = None
                      ) -> dict[tuple[str, object], tuple[str, object]]:
    """The tree as ``{node: parent}`` with nodes ``("class", i)`` for classes and ``("node", name)`` for inner
    nodes; a node without a parent hangs under the root."""
    if hierarchy is None:
        raise InvalidInputError("a label hierarchy is needed", _HINT)
    names = {str(n): i for i, n in enumerate(class_names)} if class_names is not None else {}
    parents: dict[tuple[str, object], tuple[str, object]] = {}
    if isinstance(hierarchy, Mapping):
        for child, parent in hierarchy.items():
            ci = _class_index(child, n_classes, names)
            node = ("class", ci) if ci is not None else ("node", str(child))
            if parent is None or str(parent) == "":
                continue
            parents[node] = ("node", str(parent))
        missing = [i for i in range(n_classes) if ("class", i) not in parents]
        if len(missing) == n_classes:
            raise InvalidInputError("the hierarchy names none of the dataset's classes",
                                    "key it by class index (0, 1, …) or by class name and pass class_names")
        if missing:
            shown = [str(class_names[i]) if class_names is not None else str(i) for i in missing[:8]]
            raise InvalidInputError(f"the hierarchy gives no parent for {len(missing)} classes: {', '.join(shown)}",
                                    _HINT)
    elif isinstance(hierarchy, Sequence) and not isinstance(hierarchy, str | bytes):
        if len(hierarchy) != n_classes:
            raise InvalidInputError(f"the hierarchy lists {len(hierarchy)} parents for {n_classes} classes",
                                    "give exactly one parent name per class, in class order")
        for i, p in enumerate(hierarchy):
            if p is not None and str(p) != "":
                parents[("class", i)] = ("node", str(p))
    else:
        raise InvalidInputError(f"a hierarchy must be a mapping or a list of parent names, got "
                                f"{type(hierarchy).__name__}", _HINT)
    # cycles
    for start in list(parents):
        seen, node = {start}, start
        while node in parents:
            node = parents[node]
            if node in seen:
                raise InvalidInputError(f"the hierarchy has a cycle through {node[1]!r}",
                                        "each node needs a single chain of parents up to a root")
            seen.add(node)
    return parents


def class_distance_matrix(hierarchy, n_classes: int, class_names: Sequence[str] | None = None) -> np.ndarray:
    """Semantic distance (c, c) in [0, 1]: height(LCA(a, b)) / height(root), heights counted in edges up from
    the leaves (a node's height = longest path down to a class)."""
    parents = hierarchy_parents(hierarchy, n_classes, class_names)
    root = ("root", None)
    chains = []
    for i in range(n_classes):
        chain, node = [("class", i)], ("class", i)
        while node in parents:
            node = parents[node]
            chain.append(node)
        chain.append(root)
        chains.append(chain)
    height: dict = {}
    for chain in chains:
        for h, node in enumerate(chain):
            height[node] = max(height.get(node, 0), h)
    top = height[root]
    dist = np.zeros((n_classes, n_classes))
    for a in range(n_classes):
        anc = set(chains[a])
        for b in range(a + 1, n_classes):
            lca = next(n for n in chains[b] if n in anc)
            dist[a, b] = dist[b, a] = height[lca] / top
    return dist


def class_similarity_matrix(hierarchy, n_classes: int, class_names: Sequence[str] | None = None) -> np.ndarray:
    """1 − :func:`class_distance_matrix`."""
    return 1.0 - class_distance_matrix(hierarchy, n_classes, class_names)


def dataset_similarity(dataset) -> np.ndarray | None:
    """The (c, c) class similarity of a dataset's own label hierarchy (``dataset.hierarchy``), or None when it has
    none (or ``dataset`` is None, e.g. a run made from an embeddings file)."""
    if dataset is None or getattr(dataset, "hierarchy", None) is None:
        return None
    return class_similarity_matrix(dataset.hierarchy, dataset.n_classes, dataset.class_names)


def _as_label_matrix(labels, n_classes: int, what: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 1:
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise InvalidInputError(f"{what} labels must lie in 0..{n_classes - 1}",
                                    "the similarity matrix needs one row per class")
        out = np.zeros((len(labels), n_classes), dtype=bool)
        out[np.arange(len(labels)), labels.astype(np.int64)] = True
        return out
    if labels.ndim == 2 and labels.shape[1] == n_classes:
        return labels.astype(bool)
    raise InvalidInputError(f"{what} labels must be (n,) ints or (n, {n_classes}) multi-hot, got {labels.shape}",
                            "the similarity matrix has one row per class")


def item_similarity(q_labels, db_labels, similarity) -> np.ndarray:
    """Similarity (nq, ndb) between items: the largest class similarity over their label pairs."""
    s = np.asarray(similarity, dtype=float)
    c = s.shape[0]
    q = np.asarray(q_labels)
    db = np.asarray(db_labels)
    if q.ndim == 1 and db.ndim == 1:
        return s[q.astype(np.int64)][:, db.astype(np.int64)]
    qm, dm = _as_label_matrix(q, c, "query"), _as_label_matrix(db, c, "database")
    # best[j, a] = max over labels b of db item j of s[a, b]
    best = np.full((len(dm), c), -np.inf)
    for b in range(c):
        rows = dm[:, b]
        if rows.any():
            best[rows] = np.maximum(best[rows], s[:, b][None, :])
    out = np.full((len(qm), len(dm)), -np.inf)
    for a in range(c):
        rows = qm[:, a]
        if rows.any():
            out[rows] = np.maximum(out[rows], best[:, a][None, :])
    return np.where(np.isfinite(out), out, 0.0)


def mean_semantic_similarity_at_k(q_codes, db_codes, q_labels, db_labels, similarity, k: int, *,
                                  ties: str = "expected") -> float:
    """Mean over queries of the mean semantic similarity of the ``k`` database items nearest in Hamming distance.

    ``similarity``: (c, c) class similarity (e.g. :func:`class_similarity_matrix`). ``ties``: ``"expected"``
    (exact expectation over random orders inside the Hamming tie group cut by k) or ``"stable"`` (database
    index order inside ties).
    """
    s = np.asarray(similarity, dtype=float)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise InvalidInputError(f"similarity must be a square (c, c) matrix, got shape {s.shape}",
                                "use class_similarity_matrix(hierarchy, n_classes)")
    check_choice(ties, "ties", ("expected", "stable"))
    d = hamming_distances(q_codes, db_codes)
    nq, ndb = d.shape
    if len(np.asarray(q_labels)) != nq or len(np.asarray(db_labels)) != ndb:
        raise InvalidInputError("labels and codes have different numbers of rows", "give one label per code")
    k = min(check_int(k, "k", lo=1, hint="e.g. k=100"), ndb)
    if nq == 0:
        return float("nan")
    total = 0.0
    block = max(1, 2_000_000 // max(ndb, 1))
    for s0 in range(0, nq, block):
        sim = item_similarity(np.asarray(q_labels)[s0:s0 + block], db_labels, s)
        dd = d[s0:s0 + block]
        for r in range(len(dd)):
            order = np.argsort(dd[r], kind="stable")
            if ties == "stable":
                total += sim[r, order[:k]].mean()
                continue
            cut = dd[r, order[k - 1]]
            inside = dd[r] < cut
            at = dd[r] == cut
            n_in = int(inside.sum())
            total += (sim[r, inside].sum() + (k - n_in) * sim[r, at].mean()) / k
    return float(total / nq)
