"""CLI: `runs list|rename|delete|check|clean`, prepare's printed scores after a replaced input, unwritable homes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest

from hashviz.cli import main
from hashviz.embeddings import Embeddings
from hashviz.evaluate import evaluate
from hashviz.pipeline import load_prepared
from hashviz.store import RunStore


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HASHVIZ_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _file(path, seed):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), 30)
    z = (rng.standard_normal((4, 10))[labels] + 0.3 * rng.standard_normal((120, 10))).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, z=z, labels=labels)
    return str(path)


def _prepare(capsys, path, *quantizers) -> str:
    assert main(["prepare", "--dataset", "embeddings", "--path", path, "-q", *quantizers, "--json"]) == 0
    return json.loads(capsys.readouterr().out)["key"]


def _listed(capsys) -> list[dict]:
    assert main(["runs", "list", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_runs_list_rename_delete(home, tmp_path, capsys, monkeypatch):
    a = _prepare(capsys, _file(tmp_path / "a" / "mine.npz", 0), "sign", "itq")
    b = _prepare(capsys, _file(tmp_path / "a" / "mine.npz", 0), "sign")  # the same file: shares its entries
    c = _prepare(capsys, _file(tmp_path / "c" / "mine.npz", 1), "sign")
    runs = _listed(capsys)
    assert [(r["key"], r["name"]) for r in runs] == [(c, "mine.npz (3)"), (b, "mine.npz (2)"), (a, "mine.npz")]
    assert runs[2]["bit_lengths"] == [10] and runs[2]["quantizers"] == ["sign", "itq"]
    assert main(["runs", "list"]) == 0
    text = capsys.readouterr().out
    assert f"{a}  mine.npz\n" in text and "embeddings, 10 bits, sign, itq" in text

    assert main(["runs", "rename", a[:6], "first try"]) == 0  # a unique start of the key
    assert "'mine.npz' → 'first try'" in capsys.readouterr().out
    assert main(["runs", "rename", "mine.npz (2)", "First Try"]) == 2  # by name; the new name is taken
    err = capsys.readouterr().err
    assert "already used by run" in err and "hint:" in err
    assert [r["name"] for r in _listed(capsys)] == ["mine.npz (3)", "mine.npz (2)", "first try"]

    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # not a terminal: no question, nothing deleted
    assert main(["runs", "delete", "first try"]) == 1
    err = capsys.readouterr().err
    assert "would remove prepared" in err and "add --yes" in err and len(_listed(capsys)) == 3
    assert main(["runs", "delete", "first try", "--yes", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["removed"]["prepared"] == [a] and len(report["removed"]["quantizers"]) == 1  # itq: only a's
    assert set(report["kept"]) == {"embeddings", "quantizers"}  # b uses them
    assert [r["key"] for r in _listed(capsys)] == [c, b]
    assert main(["prepare", "--dataset", "embeddings", "--path", str(tmp_path / "a" / "mine.npz"), "-q", "sign",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cached"] is True  # b's results survived a's deletion
    assert main(["runs", "delete", "nope", "--yes"]) == 2 and "no prepared run" in capsys.readouterr().err


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(60)
    return proc.pid


def test_runs_check_and_clean(home, tmp_path, capsys):
    key = _prepare(capsys, _file(tmp_path / "x.npz", 0), "sign")
    assert main(["runs", "check"]) == 0 and "no problems" in capsys.readouterr().out
    store = RunStore(home)
    # leftovers of crashes: a feature-cache temporary file of a dead process, a quantizer entry whose writer died
    # before its status, and a live rotation of a run that no longer exists
    tmp = home / "cache" / "features" / f".digits-mnist_cnn-abc.npy.{_dead_pid()}.tmp"
    tmp.parent.mkdir(parents=True)
    tmp.write_bytes(b"half")
    old = time.time() - 3600
    os.utime(tmp, (old, old))
    q = store.put("quantizers", {"name": "crashed"}, arrays={"r": np.eye(2)})
    (q.path / "status").unlink()
    store.checkpoint("live_rotations", {"prepared": "0" * 16, "n_bits": 10, "label": "x"}, {"rotation": np.eye(2)})
    assert main(["runs", "check", "--json"]) == 1
    found = {p["kind"]: p for p in json.loads(capsys.readouterr().out)}
    assert set(found) == {"temp_file", "interrupted", "orphan_rotation"} and all(
        p["removable"] for p in found.values())
    assert found["temp_file"]["path"] == str(tmp)
    assert main(["runs", "check"]) == 1
    assert "3 problems" in capsys.readouterr().out
    assert main(["runs", "clean", "--dry-run"]) == 0
    assert "would remove 3" in capsys.readouterr().out and tmp.exists()
    assert main(["runs", "clean"]) == 0
    assert "removed 3" in capsys.readouterr().out
    assert not tmp.exists() and not q.path.exists()
    assert main(["runs", "check"]) == 0 and main(["runs", "clean"]) == 0
    assert "nothing to clean" in capsys.readouterr().out
    assert [r["key"] for r in _listed(capsys)] == [key]


def test_prepare_prints_the_score_of_what_is_stored_after_a_replaced_input(home, capsys):
    argv = ["prepare", "--dataset", "digits", "--bits", "16", "--epochs", "3", "-q", "sign", "itq", "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)["runs"][0]
    # another writer replaces the stored embeddings with other (noise) embeddings, through the store
    store = RunStore(home)
    entry = [e for e in store.list("embeddings")][0]
    emb = Embeddings.load(entry.file("embeddings.npz"))
    noise = np.random.default_rng(3).standard_normal(emb.z.shape).astype(np.float32)
    store.put("embeddings", entry.config, files={"embeddings.npz": replace(emb, z=noise).save}, extra=entry.extra)
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    stored = Embeddings.load(again["runs"][0]["embeddings"])
    quantizers = load_prepared(again["key"], home).run(16).quantizers
    for name, value in again["runs"][0]["map"].items():
        options = store.get_key("quantizers", quantizers[name]).config["options"]
        fresh = evaluate(stored, name, options=options, top_k=1000, ties="expected").map
        assert value == pytest.approx(fresh, abs=1e-9) and value < first["map"][name] - 0.3
    assert again["cached"] is False


def test_home_that_is_a_file_is_refused_before_any_work(tmp_path, capsys):
    home = tmp_path / "home"
    home.write_text("a file, not a folder")
    with pytest.raises(SystemExit) as exit_info:  # an argument error: argparse's usage and message, exit 2
        main(["prepare", "--dataset", "digits", "--bits", "16", "--epochs", "1", "--home", str(home)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "is a file, not a folder" in err and "Traceback" not in err


def test_unwritable_home_gives_a_clear_message(tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    (home / "runs").write_text("a file where the run store's folder goes: nothing can be written under it")
    rc = main(["prepare", "--dataset", "digits", "--bits", "16", "--epochs", "1", "--home", str(home)])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot write to the hashviz home" in err and str(home) in err
    assert "hint: set HASHVIZ_HOME to a writable folder" in err and "Traceback" not in err
    assert main(["runs", "list", "--home", str(home)]) == 0 and "no prepared runs" in capsys.readouterr().out
    assert main(["runs", "check", "--home", str(home)]) == 0
