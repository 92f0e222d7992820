"""Registry of hashing-head training objectives (one file per method in this folder).

Adding a method = one new file ``hashviz/heads/losses/<method>.py`` whose class subclasses
:class:`~hashviz.heads.losses.base.HeadLoss` and is decorated with :func:`register`, plus one line in
``_METHOD_MODULES`` below. Modules are imported on first use of the registry (not at ``import hashviz``); a
module named in the list but not present on disk is skipped, any other import error propagates.
"""

from __future__ import annotations

import importlib
import inspect
import json
from typing import Any

from hashviz.heads.losses.base import HeadLoss, shared_label_similarity
from hashviz.validate import unknown_choice

__all__ = [
    "HEAD_METHODS",
    "HeadLoss",
    "get_loss",
    "get_method",
    "list_methods",
    "method_options",
    "parse_option_value",
    "register",
    "shared_label_similarity",
]

# One line per method file, in the order they are listed to users.
_METHOD_MODULES: tuple[str, ...] = (
    "cel",
    "orthohash",
    "csq",
    "shc",
    "shrewd",
    "dpsh",
    "hashnet",
    "spherical",
    "pca",
    "lsh",
)

#: the registered methods' names in listing order, known without importing torch (one module per method, named
#: after it; tests check this equals list_methods()) — for CLI choices
METHOD_NAMES: tuple[str, ...] = _METHOD_MODULES

HEAD_METHODS: dict[str, type[HeadLoss]] = {}
_ALIASES: dict[str, str] = {}
_loaded = False


def register(cls: type[HeadLoss]) -> type[HeadLoss]:
    """Class decorator: add a HeadLoss subclass to the registry under ``cls.name`` (and its ``aliases``)."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs a class attribute `name` to be registered")
    if not (isinstance(cls, type) and issubclass(cls, HeadLoss)):
        raise TypeError(f"{cls!r} is not a HeadLoss subclass")
    HEAD_METHODS[name] = cls
    for alias in getattr(cls, "aliases", ()):
        _ALIASES[alias] = name
    return cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for module in _METHOD_MODULES:
        full = f"{__name__}.{module}"
        try:
            importlib.import_module(full)
        except ModuleNotFoundError as exc:
            if exc.name != full:  # a real missing dependency inside the module: show it
                raise
    _loaded = True


def list_methods() -> list[str]:
    """Names of the registered head methods, in listing order (aliases not included)."""
    _load()
    order = {m: i for i, m in enumerate(_METHOD_MODULES)}
    return sorted(HEAD_METHODS, key=lambda n: (order.get(n, len(order)), n))


def get_method(name: str) -> type[HeadLoss]:
    """The HeadLoss class registered under ``name`` (or an alias); unknown → InvalidInputError listing names."""
    _load()
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in HEAD_METHODS:
        raise unknown_choice(name, "head method", list_methods(),
                             hint=f"valid head methods: {', '.join(list_methods())}")
    return HEAD_METHODS[key]


def get_loss(name: str, n_bits: int, n_classes: int, *, multilabel: bool = False, **options: Any) -> HeadLoss:
    """Construct the loss of head method ``name`` for ``n_bits`` bits and ``n_classes`` classes."""
    return get_method(name)(n_bits, n_classes, multilabel=multilabel, **options)


_NOT_OPTIONS = {"multilabel", "class_names"}  # set by the trainer from the data, not by users


def method_options(name: str) -> dict[str, Any]:
    """The loss options of head method ``name`` with their defaults, e.g. ``{"lambda_q": 10.0}`` for DPSH —
    the keyword-only arguments of its class and the classes it builds on (SHC adds to CSQ's), in order."""
    cls = get_method(name)
    out: dict[str, Any] = {}
    for klass in cls.__mro__:
        if klass is HeadLoss or not (isinstance(klass, type) and issubclass(klass, HeadLoss)):
            continue
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _NOT_OPTIONS and p.name not in out:
                out[p.name] = p.default
    return out


def parse_option_value(text: str) -> Any:
    """A loss option typed as text (CLI ``--head-option``, the app's form): JSON when it parses (numbers,
    ``true``/``false``, ``null``, lists), else the stripped string (e.g. ``hadamard``)."""
    text = str(text).strip()
    try:
        return json.loads(text)
    except ValueError:
        return text
