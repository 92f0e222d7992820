"""Where hashviz keeps its files: the hashviz home folder.

``HASHVIZ_HOME`` if set, else ``~/.hashviz``. Inside it: ``data/`` (datasets such as CIFAR that are not bundled)
and ``cache/`` (backbone features and other recomputable results). Nothing is created until a caller writes.
"""

from __future__ import annotations

import os
from pathlib import Path

from hashviz.errors import InvalidInputError


def check_folder(path, what: str = "the folder") -> Path:
    """``path`` (``~`` expanded) if it is a folder or one can be created there; InvalidInputError if it, or the
    nearest part of it that exists, is a file. Creates nothing."""
    p = Path(path).expanduser()
    for part in (p, *p.parents):
        if part.exists():
            if not part.is_dir():
                where = "is a file" if part == p else f"is inside {part}, which is a file"
                raise InvalidInputError(f"{what} {p} {where}, not a folder",
                                        "point it at a folder (it is created if missing), or leave it unset for "
                                        "the default ~/.hashviz")
            break
    return p


def home() -> Path:
    """The hashviz home folder: ``$HASHVIZ_HOME`` or ``~/.hashviz`` (read at every call, so tests can change it).
    A path that is a file raises InvalidInputError saying so."""
    env = os.environ.get("HASHVIZ_HOME", "").strip()
    if env:
        return check_folder(env, "HASHVIZ_HOME")
    return check_folder(Path.home() / ".hashviz", "the hashviz home")


def data_root() -> Path:
    """Folder for datasets that are not bundled, e.g. ``<home>/data/cifar``."""
    return home() / "data"


def cache_dir() -> Path:
    """Folder for recomputable results (backbone features…)."""
    return home() / "cache"
