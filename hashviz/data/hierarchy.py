"""Optional two-level label hierarchies: one parent name per class.

A hierarchy is a tuple ``parents`` aligned with a dataset's ``class_names`` (``parents[i]`` is the parent of class
``i``). Views use it to colour classes by family; retrieval metrics do not use it.

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
