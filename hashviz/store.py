"""The run store: every stage result saved on disk under a key derived from its config.

Layout (``root`` is the hashviz home folder by default, see :func:`hashviz.paths.home`)::

    <root>/runs/<stage>/<key>/
        config.json      the stage config (canonical JSON); key = sha256(canonical JSON)[:16]
        arrays.npz       named numpy arrays (np.savez, read with allow_pickle=False)
        extra.json       any JSON-able results (scores, diagnostics)            optional
        weights.pt       a torch state_dict (torch.load(weights_only=True))     optional
        <name>           other files written by a caller (e.g. embeddings.npz)  optional
        curve.jsonl      fit curve, one JSON object per line, appended + flushed as training goes
        status           JSON: {"state": "complete" | "running", "schema": 1, "files": {name: {size, sha256}}, ...}

Writes are atomic: every file is written to a temporary name in the same folder and moved into place with
``os.replace``; ``status`` is written last and is the commit point. An entry is usable only when its status
parses, has a known schema, and every file it lists has the recorded size and SHA-256. Anything else (no status,
bad JSON, a checksum mismatch, an unreadable npz) is *corrupt*: :meth:`RunStore.get` logs a warning, moves the
folder aside to ``<stage>/.corrupt-<key>-<time>`` and returns ``None`` so the caller recomputes it (or raises
:class:`~hashviz.errors.StoreError` with ``strict=True``). Never silently used. Hashes are remembered per process
for files that have not changed since they were hashed (same inode, size, mtime and ctime, and untouched for
:data:`SETTLE_SECONDS` before the hash), so reading a verified entry again costs a ``stat`` per file, not a hash.

Checkpoints (:meth:`RunStore.checkpoint`, live training): arrays go to a fresh ``checkpoint-<n>.npz`` and the
status (state ``running``) is replaced only after that file is complete, so a crash at any moment leaves the
previous checkpoint readable; :meth:`RunStore.put` later turns the entry into a complete one.

The curve (``curve.jsonl``) is append-only and outside the checksums; a torn last line (a crash mid-write) is
ignored by :meth:`Entry.curve`.

Concurrency (several CLIs, app sessions and threads on one home): every write of an entry (``put``,
``checkpoint``, ``delete``) holds an exclusive advisory lock on ``<root>/runs/.locks/<stage>/<key>.lock``
(``flock``; the kernel releases it when the writer exits, however it exits). Writers of one entry take turns. A
reader never locks a sound entry; when an entry does not verify it tries the lock without waiting:

- held → a writer is at work: the entry is treated as absent (``None``), nothing is moved;
- free → no writer is alive, so the entry is read again under the lock (the writer may just have finished) and,
  if it still does not verify, it is a truly interrupted write and is set aside as above.

So a reader never moves an entry another process is writing, and a dead writer's leftovers are recovered by the
next reader (or by :meth:`RunStore.clean`). Where locks cannot be taken (no ``fcntl``, a read-only home) readers
report a bad entry but never set it aside.

Writing to a home that cannot be written (read-only, a file, full disk) raises :class:`~hashviz.errors.StoreError`
"cannot write to the hashviz home …" with a hint, never a bare ``OSError``.

Maintenance: :meth:`RunStore.scan` lists crash leftovers (set-aside ``.corrupt-*`` folders, interrupted
entries, temporary files of writers that are gone, in the store and in ``<root>/cache``, stale unfinished
training folders) and :meth:`RunStore.clean` removes those whose writer is known gone.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import logging
import os
import re
import shutil
import socket
import threading
import time
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashviz.errors import InvalidInputError, StoreError
from hashviz.fileio import fsync_dir, sha256_file
from hashviz.fileio import write_atomic as _write_atomic
from hashviz.fileio import write_bytes_atomic as _write_bytes
from hashviz.jsonable import canonical_json, config_key
from hashviz.jsonable import to_jsonable as _plain

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks; readers then report bad entries but never set them aside
    fcntl = None

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
COMPLETE, RUNNING = "complete", "running"
_RESERVED = {"config.json", "status", "curve.jsonl", "arrays.npz", "extra.json", "weights.pt"}
LOCK_TIMEOUT = 120.0  # seconds a writer waits for another writer of the same entry before giving up
LEFTOVER_GRACE = 600.0  # a temporary file of a process that is not running is a leftover once this old
STALE_TRAINING = 86400.0  # an unfinished training folder (config + curve, no status) untouched this long is stale
WRITABLE_HINT = "set HASHVIZ_HOME to a writable folder (the CLI also takes --home DIR)"


class StoreWarning(UserWarning):
    """A store entry was corrupt or partial and has been set aside; it will be recomputed."""


_sha256_file = sha256_file  # the one file checksum (hashviz.fileio), under the name the store's code uses


# ---- verification memo -------------------------------------------------------------------------------------
# Verifying an entry hashes every file it lists, and the app reads the same entries on every rerun (at 60,000
# rows with thumbnails that was ~200 MB hashed per rerun). A file's SHA-256 is remembered per process, keyed by
# its identity and stat — (path, device, inode, size, mtime_ns, ctime_ns) — and only when the file had not been
# touched for SETTLE_SECONDS before it was hashed ("racily clean" files, as git calls them, are hashed again on
# every read). Any later write to the file (in place, through a new inode, or with its mtime set back by
# os.utime) moves its ctime to the time of that write, which is after the hash, so the key no longer matches
# and the file is hashed again: a changed file is never taken for the one that was verified.
SETTLE_SECONDS = 2.0
_MEMO_MAX = 4096
_memo: dict[tuple, str] = {}
_memo_lock = threading.Lock()
_memo_stats = {"hits": 0, "hashed": 0}


def _stat_key(path: Path, st: os.stat_result) -> tuple:
    return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _settled(st: os.stat_result, hashed_at_ns: int) -> bool:
    return max(st.st_mtime_ns, st.st_ctime_ns) < hashed_at_ns - int(SETTLE_SECONDS * 1e9)


def _remember(key: tuple, digest: str) -> None:
    with _memo_lock:
        if len(_memo) >= _MEMO_MAX:
            _memo.pop(next(iter(_memo)))
        _memo[key] = digest


def forget_verified() -> None:
    """Drop the process's memo of verified file hashes (every file is hashed again on its next read)."""
    with _memo_lock:
        _memo.clear()


def _file_sha256(path: Path) -> str:
    """SHA-256 of ``path``, from the memo when the file is the very one hashed before (see above)."""
    t0 = time.time_ns()
    with open(path, "rb") as f:
        st0 = os.fstat(f.fileno())
        key = _stat_key(path, st0)
        with _memo_lock:
            known = _memo.get(key)
        if known is not None:
            _memo_stats["hits"] += 1
            return known
        h = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
        st1 = os.fstat(f.fileno())
    _memo_stats["hashed"] += 1
    digest = h.hexdigest()
    if _stat_key(path, st1) == key and _settled(st0, t0):
        _remember(key, digest)
    return digest


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    clean = {}
    for k, v in arrays.items():
        a = np.asarray(v)
        if a.dtype == object:
            raise InvalidInputError(f"array {k!r} holds Python objects", "store numeric or string arrays only")
        clean[str(k)] = a
    _write_atomic(path, lambda f: np.savez(f, **clean))


def _verified_bytes(path: Path, info: Mapping) -> bytes:
    """The bytes of ``path``, checked against the size and SHA-256 a status recorded for it (the memo of verified
    hashes spares the hashing when the file's stat before and after the read is that of a file verified before)."""
    path = Path(path)
    t0 = time.time_ns()
    with open(path, "rb") as f:
        st0 = os.fstat(f.fileno())
        data = f.read()
        st1 = os.fstat(f.fileno())
    key = _stat_key(path, st0)
    with _memo_lock:
        known = _memo.get(key) if _stat_key(path, st1) == key else None
    if known is not None and len(data) == info["size"] and known == info["sha256"]:
        _memo_stats["hits"] += 1
        return data
    digest = hashlib.sha256(data).hexdigest()
    _memo_stats["hashed"] += 1
    if len(data) != info["size"] or digest != info["sha256"]:
        raise ValueError(f"{path.name} changed while it was being read")
    if _stat_key(path, st1) == key and _settled(st0, t0):
        _remember(key, digest)
    return data


def _read_npz(path) -> dict[str, np.ndarray]:
    from hashviz.npyio import HEADER_LOCK

    with HEADER_LOCK, np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


# ---- locks --------------------------------------------------------------------------------------------------
def _lock_fd(path: Path, *, timeout: float) -> int | None:
    """An fd holding an exclusive ``flock`` on ``path`` (created if missing), or None if another holder keeps it
    past ``timeout`` seconds (0: don't wait). Raises OSError when the lock file cannot be created.

    The file may be removed by a holder (``RunStore.delete``): after locking, the fd must still be the file at
    ``path``, otherwise the lock is taken again on the new file."""
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return None
                os.close(fd)
                time.sleep(0.02)
                continue
            st = os.fstat(fd)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
            if now is None or (now.st_ino, now.st_dev) != (st.st_ino, st.st_dev):
                os.close(fd)  # the file was removed by the previous holder: lock the new one
                continue
            with contextlib.suppress(OSError):  # who holds it, for messages (best effort)
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                          "since": time.time()}).encode(), 0)
            return fd
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise


def _lock_holder(path: Path) -> str:
    """"process N on HOST" from a lock file (what its last holder wrote), or "another process"."""
    try:
        info = json.loads(Path(path).read_bytes() or b"{}")
        return f"process {int(info['pid'])} on {info['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _pid_running(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


_TEMP_NAME = re.compile(r"^\.(?:part-(?P<ppid>\d+)-\d+-.+|.+?\.(?P<pid>\d+)(?:\.\d+)?\.tmp)$")


def _temp_writer_pid(name: str) -> int | None:
    """The writer's pid of a temporary file name this package writes (``.<name>.<pid>[.<ns>].tmp``,
    ``.part-<pid>-<ns>-<name>``); None for other names."""
    m = _TEMP_NAME.match(name)
    if not m:
        return None
    return int(m.group("ppid") or m.group("pid"))


@dataclass(frozen=True)
class StoreProblem:
    """One crash leftover or damaged entry found by :meth:`RunStore.scan` (or ``hashviz.catalog.check``).

    ``kind``: ``set_aside`` (a ``.corrupt-*`` folder), ``interrupted`` (an entry that does not verify and whose
    writer is gone), ``being_written`` (a writer is at work now: not a problem yet), ``temp_file`` (a temporary
    file), ``stale_training`` (config + curve but no result, untouched for a day), or a run-level kind from the
    catalog. ``removable``: its writer is known gone, so :meth:`RunStore.clean` may remove it."""

    kind: str
    path: Path
    detail: str
    removable: bool

    def to_dict(self) -> dict:
        return {"kind": self.kind, "path": str(self.path), "detail": self.detail, "removable": self.removable}


# ---- entries ------------------------------------------------------------------------------------------------
@dataclass
class Entry:
    """A verified store entry. ``arrays`` are loaded on first access; ``state`` is "complete" or "running"."""

    stage: str
    key: str
    path: Path
    config: dict
    status: dict
    extra: dict = field(default_factory=dict)
    _arrays: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def state(self) -> str:
        return str(self.status.get("state"))

    @property
    def complete(self) -> bool:
        return self.state == COMPLETE

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            name = self.status.get("arrays")
            self._arrays = _read_npz(self.path / name) if name else {}
        return self._arrays

    def file(self, name: str) -> Path:
        """Path of a file of this entry (one the status lists)."""
        if name not in self.status.get("files", {}):
            raise StoreError(f"{self.stage}/{self.key} has no file {name!r}",
                             f"files: {', '.join(sorted(self.status.get('files', {})))}")
        return self.path / name

    @property
    def files(self) -> list[str]:
        return sorted(self.status.get("files", {}))

    def sha256(self, name: str) -> str:
        """The SHA-256 the status records for one of the entry's files (its content hash)."""
        self.file(name)
        return str(self.status["files"][name]["sha256"])

    def read_bytes(self, name: str) -> bytes:
        """The bytes of one of the entry's files, checked against its recorded size and SHA-256 (StoreError if the
        file changed or went away since the entry was read: another writer replaced the entry)."""
        try:
            return _verified_bytes(self.file(name), self.status["files"][name])
        except (OSError, ValueError):
            raise StoreError(f"{self.stage}/{self.key}: {name} changed or went away since the entry was read",
                             "another process rewrote the entry; read it again") from None

    def curve(self) -> list[dict]:
        return read_curve_file(self.path / "curve.jsonl")


def read_curve_file(path: Path) -> list[dict]:
    """Rows of a curve.jsonl; a torn or unparsable line (a crash mid-append) ends the read."""
    rows: list[dict] = []
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return rows
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            log.warning("ignoring a torn line in %s", path)
            break
        if isinstance(row, dict):
            rows.append(row)
    return rows


class RunStore:
    """Stage results on disk under ``<root>/runs/<stage>/<key>/`` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        if root is None:
            from hashviz.paths import home

            root = home()
        self.root = Path(root).expanduser()
        self.runs = self.root / "runs"
        self.problems: list[str] = []  # corrupt entries found by this instance (also logged and warned)

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    # ---- paths and keys
    @staticmethod
    def key(config: Any) -> str:
        return config_key(config)

    def _check_stage(self, stage: str) -> str:
        if not isinstance(stage, str) or not stage or not all(c.isalnum() or c in "_-" for c in stage):
            raise InvalidInputError(f"stage names are letters, digits, '_' and '-', got {stage!r}",
                                    "e.g. 'heads', 'quantizers'")
        return stage

    def path_for(self, stage: str, config: Any) -> Path:
        """The folder of ``stage``'s entry for ``config`` (it may not exist)."""
        return self.runs / self._check_stage(stage) / config_key(config)

    def path_for_key(self, stage: str, key: str) -> Path:
        if not isinstance(key, str) or not key.isalnum():
            raise InvalidInputError(f"not a store key: {key!r}", "keys are hex strings from RunStore.key(config)")
        return self.runs / self._check_stage(stage) / key

    # ---- reading
    def _verify(self, path: Path) -> tuple[dict | None, str]:
        """(status, "") for a sound entry, (None, reason) otherwise; reason "" means simply missing."""
        if not path.is_dir():
            return None, ""
        status_path = path / "status"
        if not status_path.is_file():
            names = {p.name for p in path.iterdir() if not p.name.startswith(".")}
            if names <= {"config.json", "curve.jsonl"}:
                return None, ""  # training under way with no checkpoint yet (only its curve): not an entry
            return None, "no status file (an interrupted write)"
        try:
            status = json.loads(status_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, OSError) as e:
            return None, f"unreadable status ({e})"
        if not isinstance(status, dict) or status.get("state") not in (COMPLETE, RUNNING):
            return None, "status has no valid state"
        if status.get("schema") != SCHEMA_VERSION:
            return None, f"schema {status.get('schema')!r}, this hashviz reads schema {SCHEMA_VERSION}"
        files = status.get("files")
        if not isinstance(files, dict) or "config.json" not in files:
            return None, "status lists no files"
        for name, info in files.items():
            p = path / name
            if not p.is_file():
                return None, f"{name} is missing"
            try:
                if p.stat().st_size != info["size"] or _file_sha256(p) != info["sha256"]:
                    return None, f"{name} does not match its checksum"
            except (KeyError, TypeError):
                return None, f"status entry of {name} is malformed"
        return status, ""

    def _report(self, stage: str, path: Path, reason: str, *, set_aside: bool = True) -> None:
        """Log, warn and record a bad entry; move it aside when ``set_aside`` (its writer is known gone)."""
        outcome = "left in place (its lock cannot be taken here, so its writer may still be at work)"
        if set_aside:
            aside = path.with_name(f".corrupt-{path.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
            try:
                os.replace(path, aside)
                outcome = "it will be recomputed"
            except OSError as e:
                outcome = f"left in place (it cannot be moved aside: {e.strerror or type(e).__name__})"
        msg = f"run store entry {stage}/{path.name} is corrupt or partial ({reason}); {outcome}"
        self.problems.append(msg)
        log.warning(msg)
        warnings.warn(msg, StoreWarning, stacklevel=4)

    def _try_load(self, stage: str, path: Path, running: bool) -> tuple[Entry | None, str]:
        """(entry, "") for a sound entry, (None, "") when there is none (or only a checkpoint and not
        ``running``), (None, reason) when the folder does not verify or read. Never moves anything."""
        try:
            status, reason = self._verify(path)
        except OSError as e:  # the folder went away or changed under us (a writer or delete at work)
            return None, f"unreadable ({e.strerror or type(e).__name__})"
        if status is None:
            return None, reason
        if status["state"] == RUNNING and not running:
            return None, ""
        try:
            # the bytes parsed are checked against the status again: a writer may replace a file between the
            # verification above and this read, and the entry must never mix two versions
            files = status["files"]
            config = json.loads(_verified_bytes(path / "config.json", files["config.json"]))
            extra = json.loads(_verified_bytes(path / "extra.json", files["extra.json"])) if "extra.json" in files \
                else {}
            entry = Entry(stage=stage, key=path.name, path=path, config=config, status=status, extra=extra)
            name = status.get("arrays")
            if name:  # an npz that does not read is corrupt too
                entry._arrays = _read_npz(io.BytesIO(_verified_bytes(path / name, files[name])))
        except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
            return None, f"unreadable content: {e}"
        return entry, ""

    def _load(self, stage: str, path: Path, *, strict: bool, running: bool) -> Entry | None:
        entry, reason = self._try_load(stage, path, running)
        if not reason:
            return entry
        # the entry does not verify: either a writer is at work (it holds the entry's lock) or it died mid-write
        with self._entry_lock(stage, path.name, timeout=0.0) as held:
            if held is False:
                if strict:
                    raise StoreError(f"run store entry {stage}/{path.name} is being written by "
                                     f"{_lock_holder(self._lock_path(stage, path.name))}",
                                     "try again when it has finished")
                return None  # not an entry yet, and not ours to move
            if held:  # no writer alive; it may just have finished: read again under the lock
                entry, reason = self._try_load(stage, path, running)
                if not reason:
                    return entry
            if strict:
                raise StoreError(f"run store entry {stage}/{path.name} is corrupt or partial: {reason}",
                                 "delete the folder or call the stage again to recompute it")
            self._report(stage, path, reason, set_aside=bool(held))
            return None

    def get(self, stage: str, config: Any, *, strict: bool = False, running: bool = False) -> Entry | None:
        """The complete entry of ``config`` (also a checkpoint when ``running=True``), or ``None`` when absent.

        A corrupt or partial entry is reported (log + :class:`StoreWarning` + ``self.problems``), set aside and
        ``None`` is returned so the caller recomputes it; ``strict=True`` raises StoreError instead."""
        return self._load(stage, self.path_for(stage, config), strict=strict, running=running)

    def get_key(self, stage: str, key: str, *, strict: bool = False, running: bool = False,
                retries: int = 0) -> Entry | None:
        """Like :meth:`get` with a key instead of a config (e.g. a key kept in the app's session state).

        ``retries > 0``: a read that may race a writer (a live checkpoint being replaced by another session):
        an entry that does not verify is read again up to ``retries`` times, 50 ms apart, and then skipped
        (``None``) without being set aside, because it may be sound a moment later."""
        path = self.path_for_key(stage, key)
        if retries > 0:
            return self._load_settled(stage, path, running=running, retries=retries)
        return self._load(stage, path, strict=strict, running=running)

    def _load_settled(self, stage: str, path: Path, *, running: bool, retries: int) -> Entry | None:
        for attempt in range(int(retries) + 1):
            entry, reason = self._try_load(stage, path, running)
            if not reason:
                return entry
            if attempt < retries:
                time.sleep(0.05)
        return None

    def has(self, stage: str, config: Any) -> bool:
        """True when a complete, verified entry exists (a corrupt one is reported and set aside)."""
        return self.get(stage, config) is not None

    def list(self, stage: str, *, running: bool = False, retries: int = 0) -> list[Entry]:
        """Every sound entry of ``stage`` (complete ones; checkpoints too with ``running=True``), oldest first.

        ``retries > 0``: entries that do not verify are retried and then skipped, never set aside (see
        :meth:`get_key`), for stages other sessions write to while this one reads."""
        folder = self.runs / self._check_stage(stage)
        if not folder.is_dir():
            return []
        out = []
        for p in sorted(folder.iterdir()):
            if p.name.startswith(".") or not p.is_dir():
                continue
            e = (self._load_settled(stage, p, running=running, retries=retries) if retries > 0
                 else self._load(stage, p, strict=False, running=running))
            if e is not None:
                out.append(e)
        out.sort(key=lambda e: (e.status.get("written", 0), e.key))
        return out

    def stages(self) -> list[str]:
        if not self.runs.is_dir():
            return []
        return sorted(p.name for p in self.runs.iterdir() if p.is_dir() and not p.name.startswith("."))

    # ---- locks and writability
    def _lock_path(self, stage: str, key: str) -> Path:
        return self.runs / ".locks" / stage / f"{key}.lock"

    @contextlib.contextmanager
    def _entry_lock(self, stage: str, key: str, *, timeout: float) -> Iterator[bool | None]:
        """Hold the entry's lock: yields True (held), False (another process holds it: a writer is at work) or
        None (locks are not available here: no ``fcntl``, or the lock file cannot be created)."""
        fd = None
        held: bool | None = None
        if fcntl is not None:
            try:
                fd = _lock_fd(self._lock_path(stage, key), timeout=timeout)
                held = fd is not None
            except OSError:
                held = None
        try:
            yield held
        finally:
            if fd is not None:
                os.close(fd)

    def _write_error(self, e: OSError) -> StoreError:
        why = e.strerror or type(e).__name__
        if self.root.exists() and not self.root.is_dir():
            why = "it is a file, not a folder"
        hint = ("free some disk space, or " + WRITABLE_HINT) if e.errno in (errno.ENOSPC, errno.EDQUOT) \
            else WRITABLE_HINT
        return StoreError(f"cannot write to the hashviz home {self.root} ({why})", hint)

    @contextlib.contextmanager
    def _writable(self) -> Iterator[None]:
        """Turn any OSError of a write into StoreError("cannot write to the hashviz home …", hint)."""
        try:
            yield
        except OSError as e:
            raise self._write_error(e) from None

    @contextlib.contextmanager
    def _writing(self, stage: str, key: str) -> Iterator[None]:
        """Hold the entry's lock for a write (waiting up to LOCK_TIMEOUT for another writer of it)."""
        with self._writable():
            fd = None
            if fcntl is not None:
                fd = _lock_fd(self._lock_path(stage, key), timeout=LOCK_TIMEOUT)
                if fd is None:
                    raise StoreError(f"run store entry {stage}/{key} has been locked by "
                                     f"{_lock_holder(self._lock_path(stage, key))} for over {LOCK_TIMEOUT:.0f} s",
                                     "wait for the other process to finish, or stop it")
            try:
                yield
            finally:
                if fd is not None:
                    os.close(fd)

    @contextlib.contextmanager
    def locked(self, name: str, *, timeout: float = 60.0) -> Iterator[None]:
        """Hold the store-wide lock ``name`` (``<root>/runs/.locks/<name>.lock``) for a read-modify-write of a small
        shared file (the run catalog); an OSError inside becomes StoreError ("cannot write to the hashviz home")."""
        if not name.replace("_", "").isalnum():
            raise InvalidInputError(f"lock names are letters, digits and '_', got {name!r}", "e.g. 'catalog'")
        path = self.runs / ".locks" / f"{name}.lock"
        with self._writable():
            fd = _lock_fd(path, timeout=timeout) if fcntl is not None else None
            if fcntl is not None and fd is None:
                raise StoreError(f"the store lock {name!r} has been held by {_lock_holder(path)} for over "
                                 f"{timeout:.0f} s", "try again when the other hashviz command has finished")
            try:
                yield
            finally:
                if fd is not None:
                    os.close(fd)

    def require_writable(self) -> None:
        """Raise :class:`~hashviz.errors.StoreError` ("cannot write to the hashviz home …", with a hint) unless
        the store and the cache folder beside it can be written; creates them. Call before long work."""
        with self._writable():
            for folder in (self.runs, self.root / "cache"):
                folder.mkdir(parents=True, exist_ok=True)
                probe = folder / f".probe.{os.getpid()}.{time.monotonic_ns()}.tmp"
                probe.write_bytes(b"")
                probe.unlink()

    # ---- writing
    def _write_entry(self, stage: str, config: Any, *, state: str, arrays: Mapping[str, np.ndarray] | None,
                     extra: Mapping | None, state_dict: Mapping | None,
                     files: Mapping[str, bytes | Callable[[Path], Any]] | None, arrays_name: str) -> Entry:
        path = self.path_for(stage, config)
        for name in files or {}:
            if (not isinstance(name, str) or name in _RESERVED or "/" in name or "\\" in name or not name
                    or name.startswith(".") or name.startswith("checkpoint-")):
                raise InvalidInputError(f"file name {name!r} is reserved or not a plain name",
                                        f"reserved: {', '.join(sorted(_RESERVED))}")
        with self._writing(stage, path.name):
            return self._write_locked(stage, path, config, state=state, arrays=arrays, extra=extra,
                                      state_dict=state_dict, files=files, arrays_name=arrays_name)

    def _write_locked(self, stage: str, path: Path, config: Any, *, state: str,
                      arrays: Mapping[str, np.ndarray] | None, extra: Mapping | None, state_dict: Mapping | None,
                      files: Mapping[str, bytes | Callable[[Path], Any]] | None, arrays_name: str) -> Entry:
        path.mkdir(parents=True, exist_ok=True)
        old_status, _ = self._verify(path)
        names: dict[str, None] = {}
        _write_bytes(path / "config.json", (json.dumps(_plain(config), sort_keys=True, indent=1) + "\n").encode())
        names["config.json"] = None
        if arrays is not None:
            _write_npz(path / arrays_name, arrays)
            names[arrays_name] = None
        if extra is not None:
            text = json.dumps(_plain(extra, strict=False), sort_keys=True, indent=1) + "\n"
            _write_bytes(path / "extra.json", text.encode())
            names["extra.json"] = None
        if state_dict is not None:
            import torch

            tensors = {str(k): v.detach().cpu().contiguous() for k, v in state_dict.items()}
            _write_atomic(path / "weights.pt", lambda f: torch.save(tensors, f))
            names["weights.pt"] = None
        for name, content in (files or {}).items():
            if isinstance(content, bytes | bytearray):
                _write_bytes(path / name, bytes(content))
            else:
                # the temporary name ends with the real name, so writers that add a suffix (np.savez) don't
                tmp = path / f".part-{os.getpid()}-{time.monotonic_ns()}-{name}"
                try:
                    content(tmp)
                    if not tmp.is_file():
                        raise StoreError(f"the writer for {name!r} wrote no file", "write to the path it is given")
                    os.replace(tmp, path / name)
                finally:
                    if tmp.exists():
                        tmp.unlink()
            names[name] = None
        status = {"state": state, "schema": SCHEMA_VERSION, "stage": stage, "key": path.name,
                  "written": time.time(), "arrays": arrays_name if arrays is not None else None,
                  "files": {n: {"size": (path / n).stat().st_size, "sha256": _sha256_file(path / n)} for n in names}}
        if arrays is None and old_status and state == RUNNING and old_status.get("arrays"):
            # a checkpoint without new arrays keeps the previous ones
            status["arrays"] = old_status["arrays"]
            status["files"][old_status["arrays"]] = old_status["files"][old_status["arrays"]]
        _write_bytes(path / "status", (json.dumps(status, sort_keys=True, indent=1) + "\n").encode())
        fsync_dir(path)
        # clean up files the new status no longer references (old checkpoints) and temporary files of writers
        # that died here before (this writer holds the lock, so no other writer of the entry is alive)
        keep = set(status["files"]) | {"status", "curve.jsonl"}
        for p in path.iterdir():
            if p.name not in keep and (not p.name.startswith(".") or _temp_writer_pid(p.name) is not None):
                p.unlink(missing_ok=True)
        return Entry(stage=stage, key=path.name, path=path, config=json.loads(canonical_json(config)),
                     status=status, extra=dict(_plain(extra, strict=False)) if extra is not None else {},
                     _arrays={k: np.asarray(v) for k, v in arrays.items()} if arrays is not None else None)

    def put(self, stage: str, config: Any, *, arrays: Mapping[str, np.ndarray] | None = None,
            extra: Mapping | None = None, state_dict: Mapping | None = None,
            files: Mapping[str, bytes | Callable[[Path], Any]] | None = None) -> Entry:
        """Write a complete entry (replacing any previous one for the same config).

        ``files``: extra files by name, as bytes or as a function that writes the file at the path it is given
        (e.g. ``lambda p: embeddings.save(p)``). The curve already appended is kept."""
        return self._write_entry(stage, config, state=COMPLETE, arrays=arrays, extra=extra, state_dict=state_dict,
                                 files=files, arrays_name="arrays.npz")

    def checkpoint(self, stage: str, config: Any, arrays: Mapping[str, np.ndarray] | None = None, *,
                   extra: Mapping | None = None, status: str = RUNNING) -> Entry:
        """Save training in progress (e.g. a rotation) as a ``running`` entry; the previous checkpoint stays
        readable until this one is fully written. ``status="complete"`` is the same as :meth:`put`."""
        if status == COMPLETE:
            return self.put(stage, config, arrays=arrays, extra=extra)
        if status != RUNNING:
            raise InvalidInputError(f"checkpoint status must be 'running' or 'complete', got {status!r}", "")
        return self._write_entry(stage, config, state=RUNNING, arrays=arrays, extra=extra, state_dict=None,
                                 files=None, arrays_name=f"checkpoint-{time.time_ns()}.npz")

    def delete(self, stage: str, config: Any) -> bool:
        """Remove the entry of ``config`` (waiting for a writer of it to finish); False when there was none."""
        return self.delete_key(stage, config_key(config))

    def delete_key(self, stage: str, key: str) -> bool:
        """Remove the entry ``stage/key`` (waiting for a writer of it to finish); False when there was none."""
        path = self.path_for_key(stage, key)
        if not path.exists():
            return False
        with self._writing(stage, key):
            if not path.exists():
                return False
            shutil.rmtree(path)
            # removed while held: a process waiting on the old file notices and locks a new one (see _lock_fd)
            self._lock_path(stage, key).unlink(missing_ok=True)
            return True

    # ---- curves
    def append_curve(self, stage: str, config: Any, rows: Iterable[Mapping]) -> int:
        """Append rows to the entry's curve.jsonl (one JSON object per line, flushed and fsynced); returns the
        number of rows written. Also records config.json when the entry folder is new."""
        path = self.path_for(stage, config)
        if not (path / "config.json").is_file():
            with self._writing(stage, path.name):
                path.mkdir(parents=True, exist_ok=True)
                if not (path / "config.json").is_file():
                    text = json.dumps(_plain(config), sort_keys=True, indent=1) + "\n"
                    _write_bytes(path / "config.json", text.encode())
        lines = [json.dumps(_plain(r, strict=False), sort_keys=True, separators=(",", ":")) for r in rows]
        if not lines:
            return 0
        curve = path / "curve.jsonl"
        with self._writable(), open(curve, "ab") as f:
            if f.tell() > 0:  # a torn last line from a crash: start on a fresh line
                with open(curve, "rb") as r:
                    r.seek(-1, os.SEEK_END)
                    if r.read(1) != b"\n":
                        f.write(b"\n")
            f.write(("\n".join(lines) + "\n").encode())
            f.flush()
            os.fsync(f.fileno())
        return len(lines)

    def clear_curve(self, stage: str, config: Any) -> None:
        with self._writable():
            (self.path_for(stage, config) / "curve.jsonl").unlink(missing_ok=True)

    # ---- maintenance
    def scan(self, *, grace: float = LEFTOVER_GRACE, stale_training: float = STALE_TRAINING) -> list[StoreProblem]:
        """Crash leftovers and damaged entries, without changing anything (see :class:`StoreProblem`).

        Verifies every entry's checksums, so it reads the whole store. A temporary file outside the entries (the
        feature cache under ``<root>/cache``, the app's uploads under ``<root>/app``) is removable once the
        process named in its file name is not running and it is ``grace`` seconds old, or when it is untouched for
        ``stale_training`` seconds; inside an entry, once nobody holds the entry's lock."""
        now = time.time()
        out: list[StoreProblem] = []
        for stage in self.stages():
            try:
                children = sorted((self.runs / stage).iterdir())
            except OSError:
                continue
            for p in children:
                if p.name.startswith(".corrupt-") and p.is_dir():
                    out.append(StoreProblem("set_aside", p, f"a {stage} entry set aside as corrupt or partial", True))
                elif not p.name.startswith(".") and p.is_dir():
                    out.extend(self._scan_entry(stage, p, now, stale_training))
        for folder in (self.root / "cache", self.root / "app"):
            out.extend(_scan_temp_files(folder, now, grace, stale_training))
        return out

    def _scan_entry(self, stage: str, path: Path, now: float, stale_training: float) -> list[StoreProblem]:
        try:
            status, reason = self._verify(path)
            temps = sorted(q for q in path.iterdir() if q.name.startswith(".") and _temp_writer_pid(q.name) is not None)
        except OSError:
            return []  # it went away while we looked
        if status is not None and not temps:
            return []
        with self._entry_lock(stage, path.name, timeout=0.0) as held:
            if held is False:
                holder = _lock_holder(self._lock_path(stage, path.name))
                return [StoreProblem("being_written", path, f"{stage} entry being written by {holder}", False)]
            if held:  # re-read under the lock: a writer may just have finished
                try:
                    status, reason = self._verify(path)
                except OSError:
                    return []
            free = held is True
            if reason:  # removing the entry removes its temporary files too
                return [StoreProblem("interrupted", path, f"{stage} entry: {reason}", free)]
            out = []
            if status is None:  # config (+ curve) only: training that never saved a result
                age = now - _newest_mtime(path)
                if age > stale_training:
                    out.append(StoreProblem("stale_training", path, f"unfinished {stage} training, untouched for "
                                            f"{age / 3600:.0f} h", free))
                    return out
            for q in temps:
                out.append(StoreProblem("temp_file", q, f"a temporary file of a writer of {stage}/{path.name} that is "
                                        "gone", free))
            return out

    def clean(self, *, dry_run: bool = False, grace: float = LEFTOVER_GRACE,
              stale_training: float = STALE_TRAINING) -> list[StoreProblem]:
        """Remove the leftovers :meth:`scan` marks removable (their writers are known gone); returns what was
        removed (``dry_run``: what would be). Each is checked again, under its entry's lock, just before."""
        done = []
        for prob in self.scan(grace=grace, stale_training=stale_training):
            if prob.removable and (dry_run or self._remove(prob, stale_training)):
                done.append(prob)
        return done

    def _remove(self, prob: StoreProblem, stale_training: float) -> bool:
        with self._writable():
            if prob.kind == "set_aside":
                shutil.rmtree(prob.path, ignore_errors=False)
                return True
            entry = prob.path.parent if prob.kind == "temp_file" else prob.path
            if entry.parent.parent != self.runs:  # a temporary file outside the store (cache, uploads)
                prob.path.unlink(missing_ok=True)
                return True
            with self._entry_lock(entry.parent.name, entry.name, timeout=0.0) as held:
                if not held:
                    return False
                if prob.kind == "temp_file":
                    prob.path.unlink(missing_ok=True)
                    return True
                status, reason = self._verify(entry)
                if (prob.kind == "interrupted" and reason) or (
                        prob.kind == "stale_training" and status is None and not reason
                        and time.time() - _newest_mtime(entry) > stale_training):
                    shutil.rmtree(entry)
                    # removed while held, as in delete_key
                    self._lock_path(entry.parent.name, entry.name).unlink(missing_ok=True)
                    return True
        return False


def _newest_mtime(path: Path) -> float:
    times = [path.stat().st_mtime]
    for q in path.iterdir():
        with contextlib.suppress(OSError):
            times.append(q.stat().st_mtime)
    return max(times)


def _scan_temp_files(folder: Path, now: float, grace: float, stale: float) -> list[StoreProblem]:
    out = []
    if not folder.is_dir():
        return out
    for dirpath, _, filenames in os.walk(folder):
        for name in sorted(filenames):
            pid = _temp_writer_pid(name)
            if pid is None:
                continue
            path = Path(dirpath) / name
            try:
                age = now - path.stat().st_mtime
            except OSError:
                continue
            running = _pid_running(pid)
            removable = (not running and age > grace) or age > stale
            state = "still running" if running else "not running"
            out.append(StoreProblem("temp_file", path, f"a temporary file of process {pid} ({state}), "
                                    f"{age:.0f} s old", removable))
    return out
