"""Where hashviz keeps its files: the hashviz home folder.

``HASHVIZ_HOME`` if set, else ``~/.hashviz``. Inside it: ``data/`` (datasets such as CIFAR that are not bundled)
and ``cache/`` (backbone features and other recomputable results). Nothing is created until a caller writes.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The hashviz home folder: ``$HASHVIZ_HOME`` or ``~/.hashviz`` (read at every call, so tests can change it)."""
    env = os.environ.get("HASHVIZ_HOME", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".hashviz"


def data_root() -> Path:
    """Folder for datasets that are not bundled, e.g. ``<home>/data/cifar``."""
    return home() / "data"


def cache_dir() -> Path:
    """Folder for recomputable results (backbone features…)."""
    return home() / "cache"
