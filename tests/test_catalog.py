"""The run catalog: unique default names, renames that never touch results, deletion that keeps what another run
uses, names recorded under a lock, check/clean of run-level problems."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from hashviz import catalog
from hashviz.errors import InvalidInputError
from hashviz.pipeline import load_prepared, prepare
from hashviz.store import RunStore


def _embeddings_file(path, seed):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), 30)
    z = (rng.standard_normal((4, 12))[labels] + 0.3 * rng.standard_normal((120, 12))).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, z=z, labels=labels)
    return path


def _prepare_file(path, home, quantizers=("sign",), **kwargs):
    return prepare("embeddings", dataset_options={"path": str(path)}, store=home, quantizers=quantizers, **kwargs)


def _statuses(root):
    """Every status file in the store and its bytes: the checksummed results."""
    return {p: p.read_bytes() for p in sorted((root / "runs").rglob("status"))}


def test_default_names_are_readable_and_unique(tmp_path):
    home = tmp_path / "home"
    a = _prepare_file(_embeddings_file(tmp_path / "a" / "mine.npz", 0), home)
    b = _prepare_file(_embeddings_file(tmp_path / "b" / "mine.npz", 1), home)  # another file, the same name
    up = _prepare_file(_embeddings_file(tmp_path / "uploads" / "3f2a9c.npz", 2), home, source_name="C:\\me\\My z.npz")
    names = {r.key: r.name for r in catalog.list_runs(home)}
    assert names == {a.key: "mine.npz", b.key: "mine.npz (2)", up.key: "My z.npz"}
    assert catalog.run_name(home, up.key) == "My z.npz"
    assert [r.key for r in catalog.list_runs(home)] == [up.key, b.key, a.key]  # newest first
    rec = {r.key: r for r in catalog.list_runs(home)}[a.key]
    assert (rec.dataset, rec.backbone, rec.head, rec.bit_lengths, rec.quantizers) == ("embeddings", None, None,
                                                                                     (12,), ("sign",))
    # preparing the same run again keeps its name (even when asked for another default)
    assert _prepare_file(tmp_path / "a" / "mine.npz", home, source_name="other.npz").cached
    assert catalog.run_name(home, a.key) == "mine.npz"
    # a head run: dataset · backbone · head · bits · date
    head = prepare("digits", bit_lengths=(8,), store=home, head_options={"epochs": 1}, quantizers=("sign",))
    date = time.strftime("%Y-%m-%d", time.localtime(head.created))
    assert catalog.run_name(home, head.key) == f"digits · mnist_cnn · cel · 8 bits · {date}"
    assert catalog.default_name(head) == f"digits · mnist_cnn · cel · 8 bits · {date}"


def test_rename_is_metadata_only_and_unique(tmp_path):
    home = tmp_path / "home"
    a = _prepare_file(_embeddings_file(tmp_path / "a" / "x.npz", 0), home)
    b = _prepare_file(_embeddings_file(tmp_path / "b" / "y.npz", 1), home)
    before = _statuses(home)
    assert catalog.rename_run(home, a.key, "  my\tbest\nrun  ") == "my best run"
    assert catalog.run_name(home, a.key) == "my best run"
    assert _statuses(home) == before  # no result was rewritten
    assert load_prepared(a.key, home).run(12).map == a.run(12).map
    with pytest.raises(InvalidInputError, match="already used by run"):
        catalog.rename_run(home, b.key, "MY BEST RUN")  # names are unique regardless of case
    with pytest.raises(InvalidInputError, match="empty"):
        catalog.rename_run(home, b.key, " \n ")
    with pytest.raises(InvalidInputError, match="no prepared run"):
        catalog.rename_run(home, "0" * 16, "z")
    assert catalog.rename_run(home, a.key, "my best run") == "my best run"  # its own name: fine
    # a new run whose default name is taken by a renamed one gets a suffix
    catalog.rename_run(home, b.key, "z.npz")
    c = _prepare_file(_embeddings_file(tmp_path / "c" / "z.npz", 2), home)
    assert catalog.run_name(home, c.key) == "z.npz (2)"
    assert catalog.resolve_run(home, "Z.NPZ (2)") == c.key and catalog.resolve_run(home, c.key[:5]) == c.key
    with pytest.raises(InvalidInputError, match="no prepared run"):
        catalog.resolve_run(home, "nothing like it")
    data = json.loads((home / "runs" / "catalog.json").read_text())
    assert data["schema"] == 1 and data["runs"][a.key]["name"] == "my best run"


def test_names_recorded_by_concurrent_writers_stay_unique(tmp_path):
    store = RunStore(tmp_path)
    keys = []
    for i in range(8):  # eight runs that all want the name "same.npz"
        cfg = {"dataset": "embeddings", "dataset_options": {"path": f"/data/{i}/same.npz"}, "quantizers": ["sign"]}
        keys.append(store.put("prepared", cfg, extra={"dataset": "embeddings", "runs": [{"n_bits": 8}],
                                                      "created": 1000.0 + i}).key)
    assert [r.name for r in catalog.list_runs(store)] == [f"same.npz ({n})" for n in range(8, 1, -1)] + ["same.npz"]
    outcome: dict[str, str] = {}

    def rename(key, name):
        start.wait(30)
        try:
            outcome[key] = catalog.rename_run(RunStore(tmp_path), key, name)
        except InvalidInputError as e:
            outcome[key] = e.message

    # seven runs renamed at once, each to its own name; the eighth and the first both want "shared"
    jobs = [(k, f"run {i}") for i, k in enumerate(keys[1:7], start=1)] + [(keys[0], "shared"), (keys[7], "shared")]
    start = threading.Barrier(len(jobs))
    threads = [threading.Thread(target=rename, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    names = {r.key: r.name for r in catalog.list_runs(store)}
    assert [names[k] for k in keys[1:7]] == [f"run {i}" for i in range(1, 7)]  # no rename lost
    winners = [k for k in (keys[0], keys[7]) if names[k] == "shared"]
    assert len(winners) == 1  # never two runs with one name
    loser = keys[7] if winners == [keys[0]] else keys[0]
    assert "already used by run" in outcome[loser] and names[loser].startswith("same.npz")


def test_runs_without_a_record_get_default_names_even_when_nothing_can_be_written(tmp_path):
    home = tmp_path / "home"
    a = _prepare_file(_embeddings_file(tmp_path / "a" / "x.npz", 0), home)
    b = _prepare_file(_embeddings_file(tmp_path / "b" / "x.npz", 1), home)
    (home / "runs" / "catalog.json").unlink()  # e.g. runs prepared by an older hashviz
    locks = home / "runs" / ".locks"
    for p in sorted(locks.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    locks.rmdir()
    locks.write_text("a file where the lock folder should be: no lock, no write")
    assert [(r.key, r.name) for r in catalog.list_runs(home)] == [(b.key, "x.npz (2)"), (a.key, "x.npz")]
    assert not (home / "runs" / "catalog.json").exists()


def test_delete_keeps_what_another_run_uses(tmp_path):
    home = tmp_path / "home"
    store = RunStore(home)
    small = prepare("digits", bit_lengths=(8,), store=home, head_options={"epochs": 1}, quantizers=("sign",))
    both = prepare("digits", bit_lengths=(8,), store=home, head_options={"epochs": 1}, quantizers=("sign", "itq"))
    run_s, run_b = small.run(8), both.run(8)
    assert run_s.embeddings_key == run_b.embeddings_key and run_s.head_key == run_b.head_key
    assert run_s.quantizers["sign"] == run_b.quantizers["sign"]
    rotation = store.checkpoint("live_rotations", {"prepared": both.key, "n_bits": 8, "label": "live 1"},
                                {"rotation": np.eye(8)})
    other_rotation = store.checkpoint("live_rotations", {"prepared": small.key, "n_bits": 8, "label": "live 1"},
                                      {"rotation": np.eye(8)})

    plan = catalog.delete_run(home, both.key, dry_run=True)
    assert plan.dry_run and store.get_key("prepared", both.key) is not None  # a dry run removes nothing
    report = catalog.delete_run(home, both.key)
    assert report.to_dict()["removed"] == plan.to_dict()["removed"]
    assert report.removed == {"prepared": (both.key,), "quantizers": (run_b.quantizers["itq"],),
                              "live_rotations": (rotation.key,)}
    assert report.kept == {"embeddings": (run_b.embeddings_key,), "heads": (run_b.head_key,),
                           "quantizers": (run_b.quantizers["sign"],)}
    assert store.get_key("prepared", both.key) is None and not rotation.path.exists()
    assert store.get_key("quantizers", run_b.quantizers["itq"]) is None
    again = load_prepared(small.key, home)  # the other run is whole
    assert again is not None and again.run(8).map == small.run(8).map and other_rotation.path.exists()
    assert [r.key for r in catalog.list_runs(home)] == [small.key]
    assert both.key not in json.loads((home / "runs" / "catalog.json").read_text())["runs"]

    report = catalog.delete_run(home, small.key)  # the last run: everything goes
    assert report.kept == {} and set(report.removed) == {"prepared", "embeddings", "heads", "quantizers",
                                                         "live_rotations"}
    assert all(store.list(s, running=True) == [] for s in ("prepared", "embeddings", "heads", "quantizers",
                                                           "live_rotations"))
    assert catalog.list_runs(home) == []
    with pytest.raises(InvalidInputError, match="no prepared run"):
        catalog.delete_run(home, small.key)


def test_check_and_clean_run_level_problems(tmp_path):
    home = tmp_path / "home"
    store = RunStore(home)
    a = _prepare_file(_embeddings_file(tmp_path / "a" / "x.npz", 0), home, quantizers=("sign", "itq"))
    b = _prepare_file(_embeddings_file(tmp_path / "b" / "y.npz", 1), home)
    assert catalog.check(home) == []
    store.delete_key("quantizers", a.run(12).quantizers["itq"])  # run a is broken now
    orphan = store.checkpoint("live_rotations", {"prepared": "f" * 16, "n_bits": 12, "label": "old"},
                              {"rotation": np.eye(12)})
    store.delete_key("prepared", b.key)  # removed by hand: its name is an orphan
    found = {(p.kind, p.removable) for p in catalog.check(home)}
    assert found == {("broken_run", False), ("orphan_rotation", True), ("orphan_name", True)}
    assert {p.kind for p in catalog.clean(home, dry_run=True)} == {"orphan_rotation", "orphan_name"}
    assert orphan.path.exists()
    assert {p.kind for p in catalog.clean(home)} == {"orphan_rotation", "orphan_name"}
    assert not orphan.path.exists()
    assert [(p.kind, p.path.name) for p in catalog.check(home)] == [("broken_run", a.key)]
    assert _prepare_file(tmp_path / "a" / "x.npz", home, quantizers=("sign", "itq")).cached is False  # repaired
    assert catalog.check(home) == [] and catalog.run_name(home, a.key) == "x.npz"
