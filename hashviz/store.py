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
:class:`~hashviz.errors.StoreError` with ``strict=True``). Never silently used.

Checkpoints (:meth:`RunStore.checkpoint`, live training): arrays go to a fresh ``checkpoint-<n>.npz`` and the
status (state ``running``) is replaced only after that file is complete, so a crash at any moment leaves the
previous checkpoint readable; :meth:`RunStore.put` later turns the entry into a complete one.

The curve (``curve.jsonl``) is append-only and outside the checksums; a torn last line (a crash mid-write) is
ignored by :meth:`RunStore.read_curve`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import shutil
import time
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashviz.errors import InvalidInputError, StoreError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
KEY_LENGTH = 16
COMPLETE, RUNNING = "complete", "running"
_RESERVED = {"config.json", "status", "curve.jsonl", "arrays.npz", "extra.json", "weights.pt"}


class StoreWarning(UserWarning):
    """A store entry was corrupt or partial and has been set aside; it will be recomputed."""


# ---- keys ---------------------------------------------------------------------------------------------------
def _plain(value: Any, *, strict: bool = True) -> Any:
    """JSON-ready copy: dataclasses/objects with to_dict, tuples → lists, numpy scalars → Python, paths → str.

    ``strict``: a NaN or infinite float is an error (configs); otherwise it becomes ``None`` (results)."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        value = value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): _plain(v, strict=strict) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, strict=strict) for v in value]
    if isinstance(value, np.generic):
        return _plain(value.item(), strict=strict)
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), strict=strict)
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
    return json.dumps(_plain(config), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def config_key(config: Any) -> str:
    """Short stable key of a config: the first 16 hex digits of sha256(canonical JSON)."""
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()[:KEY_LENGTH]


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
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


def _write_atomic(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_bytes(path: Path, data: bytes) -> None:
    _write_atomic(path, lambda f: f.write(data))


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    clean = {}
    for k, v in arrays.items():
        a = np.asarray(v)
        if a.dtype == object:
            raise InvalidInputError(f"array {k!r} holds Python objects", "store numeric or string arrays only")
        clean[str(k)] = a
    _write_atomic(path, lambda f: np.savez(f, **clean))


def _verified_bytes(path: Path, info: Mapping) -> bytes:
    """The bytes of ``path``, checked against the size and SHA-256 a status recorded for it."""
    data = Path(path).read_bytes()
    if len(data) != info["size"] or hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise ValueError(f"{Path(path).name} changed while it was being read")
    return data


def _read_npz(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


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
                if p.stat().st_size != info["size"] or _sha256_file(p) != info["sha256"]:
                    return None, f"{name} does not match its checksum"
            except (KeyError, TypeError):
                return None, f"status entry of {name} is malformed"
        return status, ""

    def _report(self, stage: str, path: Path, reason: str) -> None:
        msg = f"run store entry {stage}/{path.name} is corrupt or partial ({reason}); it will be recomputed"
        self.problems.append(msg)
        log.warning(msg)
        warnings.warn(msg, StoreWarning, stacklevel=3)
        aside = path.with_name(f".corrupt-{path.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        try:
            os.replace(path, aside)
        except OSError:
            shutil.rmtree(path, ignore_errors=True)

    def _load(self, stage: str, path: Path, *, strict: bool, running: bool) -> Entry | None:
        status, reason = self._verify(path)
        if status is None:
            if reason:
                if strict:
                    raise StoreError(f"run store entry {stage}/{path.name} is corrupt or partial: {reason}",
                                     "delete the folder or call the stage again to recompute it")
                self._report(stage, path, reason)
            return None
        if status["state"] == RUNNING and not running:
            return None
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
            if strict:
                raise StoreError(f"run store entry {stage}/{path.name} does not read: {e}",
                                 "delete the folder or call the stage again to recompute it") from None
            self._report(stage, path, f"unreadable content: {e}")
            return None
        return entry

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
            try:
                return self._load(stage, path, strict=True, running=running)
            except StoreError:
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
        return sorted(p.name for p in self.runs.iterdir() if p.is_dir()) if self.runs.is_dir() else []

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
        _fsync_dir(path)
        # clean up files the new status no longer references (old checkpoints)
        keep = set(status["files"]) | {"status", "curve.jsonl"}
        for p in path.iterdir():
            if p.name not in keep and not p.name.startswith("."):
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

    def put_state_dict(self, stage: str, config: Any, state_dict: Mapping, *, extra: Mapping | None = None) -> Entry:
        return self.put(stage, config, state_dict=state_dict, extra=extra)

    def get_state_dict(self, stage: str, config: Any) -> dict | None:
        """The state_dict of a complete entry (``torch.load(weights_only=True)``), or None."""
        entry = self.get(stage, config)
        if entry is None or "weights.pt" not in entry.status["files"]:
            return None
        import torch

        return torch.load(entry.path / "weights.pt", map_location="cpu", weights_only=True)

    def delete(self, stage: str, config: Any) -> bool:
        path = self.path_for(stage, config)
        if path.is_dir():
            shutil.rmtree(path)
            return True
        return False

    # ---- curves
    def append_curve(self, stage: str, config: Any, rows: Iterable[Mapping]) -> int:
        """Append rows to the entry's curve.jsonl (one JSON object per line, flushed and fsynced); returns the
        number of rows written. Also records config.json when the entry folder is new."""
        path = self.path_for(stage, config)
        path.mkdir(parents=True, exist_ok=True)
        if not (path / "config.json").is_file():
            _write_bytes(path / "config.json", (json.dumps(_plain(config), sort_keys=True, indent=1) + "\n").encode())
        lines = [json.dumps(_plain(r, strict=False), sort_keys=True, separators=(",", ":")) for r in rows]
        if not lines:
            return 0
        curve = path / "curve.jsonl"
        with open(curve, "ab") as f:
            if f.tell() > 0:  # a torn last line from a crash: start on a fresh line
                with open(curve, "rb") as r:
                    r.seek(-1, os.SEEK_END)
                    if r.read(1) != b"\n":
                        f.write(b"\n")
            f.write(("\n".join(lines) + "\n").encode())
            f.flush()
            os.fsync(f.fileno())
        return len(lines)

    def read_curve(self, stage: str, config: Any) -> list[dict]:
        """The curve rows saved so far (a torn last line is ignored)."""
        return read_curve_file(self.path_for(stage, config) / "curve.jsonl")

    def clear_curve(self, stage: str, config: Any) -> None:
        (self.path_for(stage, config) / "curve.jsonl").unlink(missing_ok=True)
