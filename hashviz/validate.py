"""Checks of scalar arguments shared by the library: integers in a range and names from a fixed set.

Both raise :class:`~hashviz.errors.InvalidInputError` saying what was expected and what was given:
``check_int(-1, "steps", lo=0)`` → "steps must be a non-negative integer, got -1";
``check_choice("nope", "HQ loss", ("l2", "l1"))`` → "unknown HQ loss 'nope'" with the choices as the hint.
Booleans are not integers here (``True`` is refused), numpy integers are.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

from hashviz.errors import InvalidInputError


def _expected(lo, hi, none: bool) -> str:
    if lo is not None and hi is not None:
        text = f"an integer between {lo} and {hi}"
    elif lo == 0:
        text = "a non-negative integer"
    elif lo == 1:
        text = "a positive integer"
    elif lo is not None:
        text = f"an integer >= {lo}"
    elif hi is not None:
        text = f"an integer <= {hi}"
    else:
        text = "an integer"
    return text + (" or None" if none else "")


def is_int(value: Any) -> bool:
    """A Python or numpy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(value: Any, name: str, *, lo: int | None = None, hi: int | None = None, hint: str = "",
              none: bool = False, expected: str | None = None) -> int | None:
    """``value`` as an ``int``, checked to be an integer (not a bool) with ``lo <= value <= hi`` (either bound may
    be left out); ``none=True`` also lets ``None`` through (returned as is). ``expected`` replaces the words
    describing a valid value in the message ("a positive integer", "an integer between 1 and 64", …)."""
    if none and value is None:
        return None
    if not is_int(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        raise InvalidInputError(f"{name} must be {expected or _expected(lo, hi, none)}, got {value!r}", hint)
    return int(value)


def unknown_choice(value: Any, name: str, choices: Iterable, *, hint: str | None = None) -> InvalidInputError:
    """The error for a ``value`` that is not one of ``choices``: "unknown {name} {value!r}", the choices as the hint
    (``hint`` replaces it) — for callers that look a normalised name up themselves (aliases, lower case)."""
    return InvalidInputError(f"unknown {name} {value!r}",
                             hint if hint is not None else f"choose one of: {', '.join(map(str, choices))}")


def check_choice(value: Any, name: str, choices: Iterable, *, hint: str | None = None) -> Any:
    """``value`` if it is one of ``choices``, else :func:`unknown_choice`'s error."""
    choices = tuple(choices)
    try:
        ok = value in choices
    except (TypeError, ValueError):  # e.g. an array, whose comparison has no single truth value
        ok = False
    if not ok:
        raise unknown_choice(value, name, choices, hint=hint)
    return value
