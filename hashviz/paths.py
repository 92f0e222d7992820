"""Where hashviz keeps its files (the hashviz home folder) and which files the app may open (the data roots).

``HASHVIZ_HOME`` if set, else ``~/.hashviz``. Inside it: ``data/`` (datasets such as CIFAR that are not bundled)
and ``cache/`` (backbone features and other recomputable results). Nothing is created until a caller writes.

Paths typed into the app are confined (:func:`confine`) to the data roots (:func:`data_roots`): ``<home>/data``
and the folders in ``$HASHVIZ_DATA_ROOTS``. The command line opens any path (its user owns the machine).
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


# ---- data roots: the folders the app may read paths from ------------------------------------------------------
DATA_ROOTS_ENV = "HASHVIZ_DATA_ROOTS"
MAX_OPEN_BYTES_ENV = "HASHVIZ_MAX_OPEN_BYTES"
DEFAULT_MAX_OPEN_BYTES = 4_000_000_000  # uncompressed arrays of an embeddings file opened by path in the app


class OutsideDataRootsError(InvalidInputError):
    """A path typed into the app is not inside the configured data roots (the same message for every such path,
    so the refusal says nothing about what exists on the server)."""


def data_roots(home_dir=None) -> tuple[Path, ...]:
    """The folders whose files the app may read by path: ``<home>/data`` first, then every folder listed in
    ``$HASHVIZ_DATA_ROOTS`` (separated by ``os.pathsep``, ``:`` on Linux; read at every call). ``home_dir``:
    the hashviz home (default :func:`home`). The roots need not exist. The command line is not confined."""
    base = Path(home_dir).expanduser() if home_dir is not None else home()
    roots = [Path(os.path.abspath(base / "data"))]
    for part in os.environ.get(DATA_ROOTS_ENV, "").split(os.pathsep):
        part = part.strip()
        if part:
            p = Path(os.path.abspath(Path(part).expanduser()))
            if p not in roots:
                roots.append(p)
    return tuple(roots)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _expand_home(text: str) -> str:
    """``~`` and ``~/…`` only: ``~user`` would look the user up, which tells whether that account exists."""
    if text == "~" or text.startswith("~/"):
        return os.path.expanduser(text)
    return text


def confine(path, roots) -> Path:
    """``path`` resolved inside one of ``roots``, or :class:`OutsideDataRootsError`.

    A relative path is taken relative to each root in turn (the first under which it exists, else the first
    root). The path must lie inside the roots both as written (``..`` removed) and with every symlink resolved
    (``os.path.realpath``), so neither ``..`` nor a symlink leads out of them; the resolved path is returned.
    The refusal is one message for every path outside the roots, whether or not it exists; nothing outside
    the roots is opened or listed (resolving symlinks reads only the link chain of the path itself)."""
    roots = tuple(Path(os.path.abspath(Path(r))) for r in roots)
    text = str(path).strip() if path is not None else ""
    if not roots or not text or "\x00" in text:
        raise _refused(roots)
    typed = Path(_expand_home(text))
    candidates = [typed] if typed.is_absolute() else [root / typed for root in roots]
    real_roots = [Path(os.path.realpath(r)) for r in roots]
    inside = []
    for cand in candidates:
        written = Path(os.path.abspath(cand))  # lexical: removes "..", follows nothing
        real = Path(os.path.realpath(written))
        if any(_inside(written, r) for r in roots) and any(_inside(real, r) for r in real_roots):
            inside.append(real)
    if not inside:
        raise _refused(roots)
    return next((p for p in inside if p.exists()), inside[0])


def _refused(roots) -> OutsideDataRootsError:
    where = ", ".join(str(r) for r in roots) or "none configured"
    return OutsideDataRootsError(
        "the app opens files only inside its data folders, and this path is not inside one",
        f"put the files in a data folder ({where}) and give their path there (absolute, or relative to the "
        f"folder); the operator can add folders with {DATA_ROOTS_ENV}. The command line (hashviz prepare "
        "--path …) opens any path.")


def max_open_bytes() -> int:
    """The largest embeddings file (uncompressed arrays, bytes) the app opens by path from a data root:
    ``$HASHVIZ_MAX_OPEN_BYTES`` (e.g. ``8e9``) or :data:`DEFAULT_MAX_OPEN_BYTES` (4 GB). Uploads keep the
    browser limit (``server.maxUploadSize``) and :data:`hashviz.embeddings.MAX_NPZ_BYTES`."""
    raw = os.environ.get(MAX_OPEN_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_OPEN_BYTES
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 1 or value > 2**63:
        raise InvalidInputError(f"{MAX_OPEN_BYTES_ENV} must be a number of bytes >= 1, got {raw!r}",
                                "e.g. HASHVIZ_MAX_OPEN_BYTES=8e9 for 8 GB, or leave it unset for 4 GB")
    return int(value)
