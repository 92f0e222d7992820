"""Errors that carry a message (what is wrong) and a hint (how to fix it).

The app shows ``message`` with ``st.error`` and ``hint`` below it; the CLI prints both and exits 2.
"""

from __future__ import annotations


class HashvizError(Exception):
    """Base error for every problem a user can fix: bad input, missing data, wrong files."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # shown by the CLI and in logs
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class InvalidInputError(HashvizError, ValueError):
    """An array, file or option has the wrong shape, type or value."""


class DataUnavailableError(HashvizError):
    """A dataset or weights file is not on disk and cannot be downloaded here."""


class NotFittedError(HashvizError, AttributeError):
    """A quantizer or head was used before ``fit``."""


class StoreError(HashvizError):
    """A run-store entry is corrupt or was written by an incompatible version."""


class StoppedError(HashvizError):
    """A long computation was stopped on request (a Stop button, Ctrl-C); nothing half-done was saved."""
