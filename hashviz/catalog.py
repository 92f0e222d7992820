"""The run catalog: a readable, unique, renamable name for each prepared run, deletion of a run and what only it
uses, and the store's health check — UI-free (the CLI's ``runs`` command and the app both use it).

A *run* is one ``prepared`` store entry (key = :attr:`hashviz.pipeline.PrepareResult.key`). Its name is mutable
metadata, so it is kept out of the checksummed, immutable entries: ``<root>/runs/catalog.json`` maps run keys to
``{"name", "source_name", "named"}``, rewritten atomically under a lock (``<root>/runs/.locks/catalog.lock``), so a
rename never invalidates a result and two processes naming runs at once never lose a name.

Default names (:func:`default_name`): the file name of an embeddings file (the ``source_name`` given to
``prepare``, e.g. an upload's original name, else the file's own name), otherwise
``dataset · backbone · head · 16/32/48/64 bits · YYYY-MM-DD``. Names are unique (compared case-insensitively): a
new default name that is taken gets " (2)", " (3)", …; a rename to a taken name is refused. A run that has no
record yet (prepared by an older hashviz, or in a home that cannot be written) is listed under its default name,
made unique in creation order, and recorded when the catalog can be written.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashviz.errors import InvalidInputError, StoreError
from hashviz.fileio import write_bytes_atomic
from hashviz.store import Entry, RunStore, StoreProblem

log = logging.getLogger(__name__)

PREPARED = "prepared"
LIVE_ROTATIONS = "live_rotations"  # the app's live fits: config {"prepared": run key, "n_bits", "label"}
CATALOG_FILE = "catalog.json"
CATALOG_SCHEMA = 1
MAX_NAME = 120
_SPACES = re.compile(r"\s+")


def _store(store: RunStore | str | Path | None) -> RunStore:
    return store if isinstance(store, RunStore) else RunStore(store)


# ---- records ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunRecord:
    """A prepared run as the catalog lists it. ``name`` is for people; ``key`` identifies the run everywhere."""

    key: str
    name: str
    dataset: str
    backbone: str | None
    head: str | None
    bit_lengths: tuple[int, ...]
    quantizers: tuple[str, ...]
    seed: int
    created: float
    source_name: str | None = None

    def to_dict(self) -> dict:
        return {"key": self.key, "name": self.name, "dataset": self.dataset, "backbone": self.backbone,
                "head": self.head, "bit_lengths": list(self.bit_lengths), "quantizers": list(self.quantizers),
                "seed": self.seed, "created": self.created, "source_name": self.source_name}


@dataclass(frozen=True)
class DeleteReport:
    """What :func:`delete_run` removed (``removed``, stage → keys) and left because another run still uses it
    (``kept``). With ``dry_run=True`` nothing is removed and ``removed`` says what would be."""

    key: str
    name: str
    removed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    kept: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dry_run: bool = False

    def to_dict(self) -> dict:
        return {"key": self.key, "name": self.name, "dry_run": self.dry_run,
                "removed": {k: list(v) for k, v in self.removed.items()},
                "kept": {k: list(v) for k, v in self.kept.items()}}


def _facts(run: Any) -> dict:
    """dataset, backbone, head, bit lengths, created, embeddings path… of a PrepareResult or a ``prepared`` Entry."""
    if isinstance(run, Entry):
        x, config = run.extra, run.config
        bits = tuple(int(r["n_bits"]) for r in x.get("runs", ()))
        return {"key": run.key, "dataset": str(x.get("dataset", config.get("dataset", ""))),
                "backbone": x.get("backbone") or None, "head": x.get("head") or None, "bit_lengths": bits,
                "quantizers": tuple(config.get("quantizers", ())), "seed": int(x.get("seed", config.get("seed", 0))),
                "created": float(x.get("created", run.status.get("written", 0.0))),
                "path": (config.get("dataset_options") or {}).get("path")}
    return {"key": run.key, "dataset": run.dataset, "backbone": run.backbone or None, "head": run.head or None,
            "bit_lengths": tuple(run.bit_lengths), "quantizers": tuple(run.config.get("quantizers", ())),
            "seed": int(run.seed), "created": float(run.created),
            "path": (run.config.get("dataset_options") or {}).get("path")}


def clean_name(name: Any) -> str:
    """A name as stored: whitespace (tabs, newlines) collapsed to single spaces, stripped, at most 120 characters.
    Raises InvalidInputError for an empty name."""
    if not isinstance(name, str):
        raise InvalidInputError(f"a run name is text, got {type(name).__name__}", "e.g. 'mnist cel, long training'")
    text = _SPACES.sub(" ", "".join(c if c.isprintable() else " " for c in name)).strip()
    if not text:
        raise InvalidInputError("a run name cannot be empty", "give it a few words, e.g. 'mnist cel 32 bits'")
    return text[:MAX_NAME].rstrip()


def default_name(run: Any, source_name: str | None = None) -> str:
    """The readable default name of a run (a PrepareResult or its ``prepared`` Entry), before uniqueness:
    ``source_name`` if given, else an embeddings file's name, else ``dataset · backbone · head · bits · date``."""
    if source_name is not None and str(source_name).strip():
        return clean_name(Path(str(source_name).replace("\\", "/")).name or str(source_name))
    f = _facts(run)
    if f["dataset"] == "embeddings" or f["backbone"] is None:
        return clean_name(Path(str(f["path"])).name if f["path"] else "embeddings file")
    bits = "/".join(str(b) for b in f["bit_lengths"])
    date = time.strftime("%Y-%m-%d", time.localtime(f["created"])) if f["created"] else "undated"
    return clean_name(f"{f['dataset']} · {f['backbone']} · {f['head']} · {bits} bits · {date}")


def _unique(name: str, taken: set[str]) -> str:
    if name.casefold() not in taken:
        return name
    n = 2
    while True:
        suffix = f" ({n})"
        candidate = name[:MAX_NAME - len(suffix)].rstrip() + suffix
        if candidate.casefold() not in taken:
            return candidate
        n += 1


# ---- the catalog file ---------------------------------------------------------------------------------------
def _catalog_path(store: RunStore) -> Path:
    return store.runs / CATALOG_FILE


def _read_catalog(store: RunStore) -> dict[str, dict]:
    path = _catalog_path(store)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("ignoring an unreadable run catalog %s (%s): runs get default names", path, e)
        return {}
    runs = data.get("runs") if isinstance(data, dict) and data.get("schema") == CATALOG_SCHEMA else None
    if not isinstance(runs, dict):
        log.warning("ignoring a run catalog of another schema: %s", path)
        return {}
    return {str(k): v for k, v in runs.items() if isinstance(v, dict) and isinstance(v.get("name"), str)}


def _update_catalog(store: RunStore, change: Callable[[dict[str, dict]], Any]) -> Any:
    """Read the catalog under its lock, apply ``change`` (which edits the dict in place and returns a value), write
    it back atomically if it changed. StoreError when the home cannot be written."""
    with store.locked("catalog"):
        runs = _read_catalog(store)
        before = json.dumps(runs, sort_keys=True)
        out = change(runs)
        if json.dumps(runs, sort_keys=True) != before:
            text = json.dumps({"schema": CATALOG_SCHEMA, "runs": runs}, sort_keys=True, indent=1) + "\n"
            write_bytes_atomic(_catalog_path(store), text.encode("utf-8"))
        return out


def _taken(runs: Mapping[str, dict], but: str | None = None) -> set[str]:
    return {v["name"].casefold() for k, v in runs.items() if k != but}


def _name_new(runs: dict[str, dict], entries: list[Entry], sources: Mapping[str, str | None]) -> None:
    """Give every entry without a record a unique default name, oldest first (so names are stable)."""
    for e in sorted(entries, key=lambda e: (_facts(e)["created"], e.key)):
        if e.key not in runs:
            src = sources.get(e.key)
            runs[e.key] = {"name": _unique(default_name(e, src), _taken(runs)), "source_name": src,
                           "named": time.time()}


# ---- public API ---------------------------------------------------------------------------------------------
def register_run(store: RunStore | str | Path | None, run: Any, *, source_name: str | None = None) -> str:
    """Record a default name for a prepared run (a PrepareResult, its ``prepared`` Entry or its key) unless it
    has one; returns its name. Called by :func:`hashviz.pipeline.prepare`."""
    store = _store(store)
    entry = run if isinstance(run, Entry) else _entry(store, run if isinstance(run, str) else run.key)
    known = _read_catalog(store).get(entry.key)
    if known is not None:
        return known["name"]

    # runs without a record yet (older hashviz) are named too, oldest first, so their names stay what
    # list_runs already showed for them
    others = [e for e in store.list(PREPARED) if e.key != entry.key]

    def change(runs: dict[str, dict]) -> str:
        _name_new(runs, [*others, entry], {entry.key: source_name})
        return runs[entry.key]["name"]

    return _update_catalog(store, change)


def _entry(store: RunStore, key: str) -> Entry:
    if not isinstance(key, str) or not key.isalnum():
        raise InvalidInputError(f"not a run key: {key!r}", "run keys are listed by `python -m hashviz runs list`")
    entry = store.get_key(PREPARED, key)
    if entry is None:
        raise InvalidInputError(f"no prepared run {key}", "`python -m hashviz runs list` lists the runs and keys")
    return entry


def _record(entry: Entry, info: Mapping) -> RunRecord:
    f = _facts(entry)
    return RunRecord(key=entry.key, name=str(info["name"]), dataset=f["dataset"], backbone=f["backbone"],
                     head=f["head"], bit_lengths=f["bit_lengths"], quantizers=f["quantizers"], seed=f["seed"],
                     created=f["created"], source_name=info.get("source_name"))


def list_runs(store: RunStore | str | Path | None = None) -> list[RunRecord]:
    """Every prepared run (a sound ``prepared`` entry) with its name, newest first. Runs without a record get
    their default names (recorded when the catalog can be written)."""
    store = _store(store)
    entries = store.list(PREPARED)
    runs = _read_catalog(store)
    if any(e.key not in runs for e in entries):
        def change(r: dict[str, dict]) -> dict[str, dict]:
            _name_new(r, entries, {})
            return r

        try:
            runs = _update_catalog(store, change)
        except StoreError:  # read-only home: name them here, the same way, without recording
            _name_new(runs, entries, {})
    out = [_record(e, runs[e.key]) for e in entries]
    return sorted(out, key=lambda r: (r.created, r.key), reverse=True)


def run_name(store: RunStore | str | Path | None, key: str) -> str:
    """The name of the run ``key`` (InvalidInputError when there is no such run)."""
    for r in list_runs(store):
        if r.key == key:
            return r.name
    raise InvalidInputError(f"no prepared run {key}", "`python -m hashviz runs list` lists the runs and keys")


def resolve_run(store: RunStore | str | Path | None, ref: str) -> str:
    """The key of the run ``ref`` names: a key, a run's name (any case), or a unique key prefix of ≥ 4 digits."""
    records = list_runs(store)
    ref = str(ref).strip()
    for test in (lambda r: r.key == ref, lambda r: r.name.casefold() == ref.casefold()):
        hits = [r for r in records if test(r)]
        if hits:
            return hits[0].key
    hits = [r for r in records if len(ref) >= 4 and r.key.startswith(ref.lower())]
    if len(hits) == 1:
        return hits[0].key
    if len(hits) > 1:
        raise InvalidInputError(f"{ref!r} is the start of {len(hits)} run keys",
                                f"give more of the key: {', '.join(r.key for r in hits)}")
    raise InvalidInputError(f"no prepared run {ref!r}", "`python -m hashviz runs list` lists the runs and keys")


def rename_run(store: RunStore | str | Path | None, key: str, name: str) -> str:
    """Give the run ``key`` a new name (unique, case-insensitively); returns the name as stored. The run's results
    are untouched: names live only in the catalog."""
    store = _store(store)
    entry = _entry(store, key)
    new = clean_name(name)

    def change(runs: dict[str, dict]) -> str:
        _name_new(runs, [entry], {})
        for k, v in runs.items():
            if k != key and v["name"].casefold() == new.casefold():
                raise InvalidInputError(f"the name {new!r} is already used by run {k}",
                                        "choose another name, or rename that run first")
        runs[key] = {**runs[key], "name": new, "named": time.time()}
        return new

    return _update_catalog(store, change)


def _references(entry: Entry) -> set[tuple[str, str]]:
    """(stage, key) of every entry a ``prepared`` entry refers to."""
    refs: set[tuple[str, str]] = set()
    for r in entry.extra.get("runs", ()):
        if r.get("embeddings_key"):
            refs.add(("embeddings", str(r["embeddings_key"])))
        if r.get("head_key"):
            refs.add(("heads", str(r["head_key"])))
        for q in dict(r.get("quantizers", {})).values():
            refs.add(("quantizers", str(q)))
    return refs


def delete_run(store: RunStore | str | Path | None, key: str, *, dry_run: bool = False) -> DeleteReport:
    """Remove the run ``key``: its ``prepared`` entry, its live rotations, and the embeddings, heads and quantizers
    no other run refers to (those another run uses are kept and listed in ``kept``), then its name.

    The ``prepared`` entry goes first, so the run leaves every listing at once. A run being prepared by another
    process at this moment has no ``prepared`` entry yet and cannot be seen: entries it is about to reuse may be
    removed and are then recomputed by it on its next call."""
    store = _store(store)
    entry = _entry(store, key)
    name = run_name(store, key)
    mine = _references(entry)
    others: set[tuple[str, str]] = set()
    for e in store.list(PREPARED):
        if e.key != key:
            others |= _references(e)
    rotations = [e.key for e in store.list(LIVE_ROTATIONS, running=True, retries=2)
                 if e.config.get("prepared") == key]
    plan: list[tuple[str, str]] = [(PREPARED, key)]
    kept: dict[str, list[str]] = {}
    for stage, k in sorted(mine):
        if (stage, k) in others:
            kept.setdefault(stage, []).append(k)
        elif store.path_for_key(stage, k).exists():
            plan.append((stage, k))
    plan += [(LIVE_ROTATIONS, k) for k in sorted(rotations)]
    removed: dict[str, list[str]] = {}
    for stage, k in plan:  # the prepared entry first: the run leaves every listing at once
        if dry_run or store.delete_key(stage, k):
            removed.setdefault(stage, []).append(k)
    if not dry_run:
        try:
            _update_catalog(store, lambda runs: runs.pop(key, None))
        except StoreError as e:
            log.warning("could not remove the name of run %s: %s", key, e.message)
    return DeleteReport(key=key, name=name, removed={k: tuple(v) for k, v in removed.items()},
                        kept={k: tuple(v) for k, v in kept.items()}, dry_run=dry_run)


# ---- health -------------------------------------------------------------------------------------------------
def check(store: RunStore | str | Path | None = None) -> list[StoreProblem]:
    """The store's crash leftovers (:meth:`RunStore.scan`) plus run-level problems, changing nothing:

    - ``broken_run`` — a prepared run whose embeddings or quantizers are missing, damaged, or were computed on other
      embeddings than the ones stored (``prepare`` with the same choices recomputes it; not removed by clean);
    - ``orphan_rotation`` — a live rotation of a run that no longer exists (removable);
    - ``orphan_name`` — a catalog name of a run that no longer exists (removable)."""
    from hashviz.pipeline import prepared_from_entry

    store = _store(store)
    out = list(store.scan())
    entries = store.list(PREPARED, retries=1)  # retried reads never set anything aside
    keys = {e.key for e in entries}
    for e in entries:
        if prepared_from_entry(store, e, retries=1) is None:
            out.append(StoreProblem("broken_run", e.path, f"run {e.key} refers to missing, damaged or replaced "
                                    "entries; prepare it again to recompute them", False))
    for e in _orphan_rotations(store, keys):
        out.append(StoreProblem("orphan_rotation", e.path, f"a live rotation of run {e.config.get('prepared')}, "
                                "which no longer exists", True))
    for k, v in _read_catalog(store).items():
        if k not in keys:
            out.append(StoreProblem("orphan_name", _catalog_path(store), f"the name {v['name']!r} of run {k}, "
                                    "which no longer exists", True))
    return out


def _orphan_rotations(store: RunStore, run_keys: set[str]) -> list[Entry]:
    return [e for e in store.list(LIVE_ROTATIONS, running=True, retries=1) if e.config.get("prepared") not in run_keys]


def clean(store: RunStore | str | Path | None = None, *, dry_run: bool = False) -> list[StoreProblem]:
    """Remove what :func:`check` marks removable (leftovers whose writer is gone, orphans); returns what was
    removed (``dry_run``: what would be)."""
    store = _store(store)
    done = list(store.clean(dry_run=dry_run))
    keys = {e.key for e in store.list(PREPARED, retries=1)}
    for e in _orphan_rotations(store, keys):
        if dry_run or store.delete_key(LIVE_ROTATIONS, e.key):
            done.append(StoreProblem("orphan_rotation", e.path, f"a live rotation of run {e.config.get('prepared')}, "
                                     "which no longer exists", True))

    def drop(runs: dict[str, dict]) -> list[StoreProblem]:
        gone = [k for k in runs if k not in keys]
        out = [StoreProblem("orphan_name", _catalog_path(store), f"the name {runs[k]['name']!r} of run {k}, which "
                            "no longer exists", True) for k in gone]
        if not dry_run:
            for k in gone:
                del runs[k]
        return out

    if any(k not in keys for k in _read_catalog(store)):
        done += drop(dict(_read_catalog(store))) if dry_run else _update_catalog(store, drop)
    return done
