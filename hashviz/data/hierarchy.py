"""Optional two-level label hierarchies: one parent name per class.

A hierarchy is a tuple ``parents`` aligned with a dataset's ``class_names`` (``parents[i]`` is the parent of class
``i``). Views use it to colour classes by family; the semantic class distances below turn it into the label
similarities that the SHREWD head trains on and the hierarchical retrieval score
(:mod:`hashviz.retrieval.hierarchical`) ranks by.

- CIFAR-100: the 20 official coarse classes ("superclasses"), read from the dataset files themselves.
- MNIST / digits: a tree by stroke shape, chosen for teaching, not learned from data::

      loops      0 6 8 9    digits drawn with a closed loop
      straight   1 4 7      digits made of straight strokes
      curves     2 3 5      open curved strokes

- Any dataset: a user JSON file ``{"class name": "parent name", ...}`` covering every class.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hashviz.errors import InvalidInputError

DIGIT_FAMILIES: dict[str, tuple[str, ...]] = {
    "loops": ("0", "6", "8", "9"),
    "straight": ("1", "4", "7"),
    "curves": ("2", "3", "5"),
}
DIGIT_PARENT = {d: fam for fam, digits in DIGIT_FAMILIES.items() for d in digits}


def digit_hierarchy(class_names: Sequence[str] = tuple(str(d) for d in range(10))) -> tuple[str, ...]:
    """Parents of the digit classes ``"0"``…``"9"`` by stroke shape (see the module docstring)."""
    return tuple(DIGIT_PARENT[str(c)] for c in class_names)


def from_mapping(mapping: Mapping[str, str], class_names: Sequence[str], *,
                 source: str = "hierarchy") -> tuple[str, ...]:
    """Parents from a ``{class: parent}`` mapping; every class must appear and no unknown class may."""
    if not isinstance(mapping, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in mapping.items()):
        raise InvalidInputError(f"{source} must be a JSON object mapping class names to parent names",
                                'write it as {"cat": "animal", "truck": "vehicle", ...}')
    names = [str(c) for c in class_names]
    unknown = sorted(set(mapping) - set(names))
    missing = [c for c in names if c not in mapping]
    if unknown:
        raise InvalidInputError(f"{source} names {len(unknown)} classes the dataset does not have: "
                                f"{', '.join(unknown[:8])}{' …' if len(unknown) > 8 else ''}",
                                f"the dataset's classes are: {', '.join(names[:20])}{' …' if len(names) > 20 else ''}")
    if missing:
        raise InvalidInputError(f"{source} gives no parent for {len(missing)} classes: "
                                f"{', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}",
                                "give every class a parent (use the class's own name to keep it on its own)")
    return tuple(mapping[c] for c in names)


def load_hierarchy_json(path, class_names: Sequence[str]) -> tuple[str, ...]:
    """Read a user JSON file ``{"class": "parent"}`` (plain JSON, never pickle)."""
    path = Path(path)
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"no such hierarchy file: {path}", "check the path of the JSON file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInputError(f"{path} is not a readable JSON file ({e})",
                                'write it as {"class name": "parent name", ...}') from None
    return from_mapping(mapping, class_names, source=str(path))


def from_label_pairs(fine: np.ndarray, coarse: np.ndarray, fine_names: Sequence[str],
                     coarse_names: Sequence[str], *, source: str = "labels") -> tuple[str, ...]:
    """Parents from paired fine/coarse label arrays (CIFAR-100): each fine class must map to one coarse class."""
    fine = np.asarray(fine, dtype=np.int64)
    coarse = np.asarray(coarse, dtype=np.int64)
    parents: list[str] = []
    for c in range(len(fine_names)):
        cs = np.unique(coarse[fine == c])
        if len(cs) > 1:
            raise InvalidInputError(f"{source}: fine class {fine_names[c]!r} appears under {len(cs)} coarse classes",
                                    "the coarse labels must form a tree (each fine class under one coarse class)")
        parents.append(str(coarse_names[cs[0]]) if len(cs) else "")
    return tuple(parents)


def resolve(hierarchy, class_names: Sequence[str], default: tuple[str, ...] | None = None) -> tuple[str, ...] | None:
    """The ``hierarchy=`` option of :func:`hashviz.data.get_dataset`: ``None``/``"default"`` → the source's own
    tree (or none), ``False``/``"none"`` → none, a mapping or a path to a JSON file → that tree."""
    if hierarchy is None or (isinstance(hierarchy, str) and hierarchy == "default"):
        return default
    if hierarchy is False or (isinstance(hierarchy, str) and hierarchy == "none"):
        return None
    if isinstance(hierarchy, Mapping):
        return from_mapping(hierarchy, class_names)
    if isinstance(hierarchy, str | Path):
        return load_hierarchy_json(hierarchy, class_names)
    raise InvalidInputError(f"hierarchy must be a path to a JSON file, a mapping, 'default' or 'none', "
                            f"got {type(hierarchy).__name__}", 'a JSON file {"class": "parent", ...}')


# ---- semantic distances between classes -------------------------------------------------------------------
# A label hierarchy is a tree whose leaves are the dataset's classes. The semantic distance between two classes is
# the height of their lowest common ancestor divided by the height of the root (Barz & Denzler's measure, used by
# SHREWD, Arponen & Bishop 2019): 0 for the same class, 1 for classes that only meet at the root; in a two-level
# tree (class → family → root) two classes of the same family are 1/2 apart. Semantic similarity = 1 − distance.
#
# Accepted hierarchy forms (class_distance_matrix):
# - a sequence of n_classes parent names aligned with the classes — the form above (parents[i] is the family of
#   class i; a two-level tree);
# - a mapping {child: parent} where the children that are classes are given by index (0, "0") or by name (with
#   class_names), and inner nodes may have parents of their own (any depth).
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
