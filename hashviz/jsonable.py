"""JSON-ready values, canonical JSON and config keys — shared by the configs, the run store and the CLI.

:func:`to_jsonable` turns configs and results into plain JSON values (dataclasses or objects with ``to_dict``,
tuples, numpy scalars and arrays, paths); ``strict=False`` turns NaN and infinities into ``null`` (results),
``strict=True`` refuses them (configs, whose text is hashed into keys by :func:`config_key`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hashviz.errors import InvalidInputError

KEY_LENGTH = 16


def to_jsonable(value: Any, *, strict: bool = True) -> Any:
    """JSON-ready copy: dataclasses/objects with to_dict, tuples → lists, numpy scalars → Python, paths → str.

    ``strict``: a NaN or infinite float is an error (configs); otherwise it becomes ``None`` (results)."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        value = value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, strict=strict) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v, strict=strict) for v in value]
    if isinstance(value, np.generic):
        return to_jsonable(value.item(), strict=strict)
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist(), strict=strict)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        if not strict:
            return None
        raise InvalidInputError(f"config values must be finite numbers, got {value}", "use finite numbers")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise InvalidInputError(f"config value {value!r} of type {type(value).__name__} is not JSON-able",
                            "configs hold strings, numbers, booleans, lists and dicts only")


def canonical_json(config: Any) -> str:
    """The canonical JSON text of a config: sorted keys, no spaces, tuples as lists."""
    return json.dumps(to_jsonable(config), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def config_key(config: Any) -> str:
    """Short stable key of a config: the first 16 hex digits of sha256(canonical JSON)."""
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()[:KEY_LENGTH]
