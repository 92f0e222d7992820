"""Writing files atomically and checksumming them — the one implementation every module uses.

:func:`write_atomic` writes to a temporary file in the same folder (``.<name>.<pid>.<n>.tmp``, the name the run
store's maintenance recognises as a leftover of process ``pid``), fsyncs it and moves it into place with
``os.replace``, so a reader sees the old file or the new one, never half a file; the temporary file is removed if
writing fails. :func:`sha256_file` is the SHA-256 of a file's bytes, read in 1 MiB blocks.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

_last_tag = 0
_tag_lock = threading.Lock()


def _temp_tag() -> int:
    """A number unique within this process for a temporary name (nanoseconds, bumped if two calls meet)."""
    global _last_tag
    with _tag_lock:
        _last_tag = max(_last_tag + 1, time.monotonic_ns())
        return _last_tag


def temp_path(path: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.<pid>.<n>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{_temp_tag()}.tmp")


def write_atomic(path: str | os.PathLike, write: Callable[[io.BufferedWriter], object]) -> None:
    """Call ``write(f)`` on a temporary binary file beside ``path``, fsync it and move it to ``path`` atomically."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`write_atomic`)."""
    data = bytes(data)
    write_atomic(path, lambda f: f.write(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`write_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of the bytes of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a folder's entries to disk (best effort: some systems cannot open or fsync a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
