"""RunStore under concurrency and failure: slowed writers raced by readers (threads and a second process), a
killed writer's leftovers recovered, maintenance scan/clean, and a home that cannot be written."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from hashviz.errors import StoreError
from hashviz.store import RunStore, StoreWarning, read_curve_file

CFG = {"name": "slow", "n_bits": 8}
REPO = Path(__file__).resolve().parents[1]
DEADLINE = 60.0  # generous: conditions are waited for, never slept on


def _aside(root: Path, stage: str) -> list[Path]:
    folder = root / "runs" / stage
    return sorted(folder.glob(".corrupt-*")) if folder.is_dir() else []


def _read_everything(reader: RunStore, stage: str, key: str) -> list:
    """Every read path a CLI or the app's sidebar takes while another process writes."""
    return [reader.get(stage, CFG), reader.get(stage, CFG, running=True), reader.get_key(stage, key),
            reader.has(stage, CFG), reader.list(stage), reader.list(stage, running=True),
            reader.list(stage, running=True, retries=1), reader.get_key(stage, key, running=True, retries=1)]


@pytest.mark.parametrize("replacing", [False, True], ids=["new entry", "replacing an entry"])
def test_slowed_writer_raced_by_readers(tmp_path, replacing):
    writer, reader = RunStore(tmp_path), RunStore(tmp_path)
    stage = "prepared"
    if replacing:
        writer.put(stage, CFG, arrays={"x": np.zeros(4)}, extra={"version": 1})
    in_write, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow_file(path):  # the writer has written config.json and arrays.npz, not yet its status
        path.write_bytes(b"payload")
        in_write.set()
        assert release.wait(DEADLINE)

    def write():
        try:
            writer.put(stage, CFG, arrays={"x": np.ones(4)}, extra={"version": 2}, files={"big.bin": slow_file})
        except BaseException as e:  # noqa: BLE001 - the test asserts there is none
            errors.append(e)

    t = threading.Thread(target=write)
    t.start()
    try:
        assert in_write.wait(DEADLINE)
        with warnings.catch_warnings():
            warnings.simplefilter("error", StoreWarning)  # a reader that sets anything aside fails here
            from hashviz.pipeline import list_prepared

            for _ in range(10):
                seen = _read_everything(reader, stage, RunStore.key(CFG))
                # mid-write the entry is absent: never the old one mixed with new files, never set aside
                assert seen == [None, None, None, False, [], [], [], None]
                assert list_prepared(reader) == []
            with pytest.raises(StoreError, match="being written by process"):
                reader.get(stage, CFG, strict=True)
        assert reader.problems == [] and _aside(tmp_path, stage) == []
        assert writer.path_for(stage, CFG).is_dir()
        kinds = {p.kind: p.removable for p in reader.scan()}
        assert kinds == {"being_written": False}
        assert reader.clean() == []  # nothing is removed while its writer is alive
    finally:
        release.set()
        t.join(DEADLINE)
    assert not t.is_alive() and errors == []  # the writer never crashed
    entry = reader.get(stage, CFG)
    assert entry.extra == {"version": 2} and np.array_equal(entry.arrays["x"], np.ones(4))
    assert entry.file("big.bin").read_bytes() == b"payload"
    assert reader.scan() == [] and reader.problems == []


def test_two_writers_of_one_entry_take_turns(tmp_path):
    a, b, reader = RunStore(tmp_path), RunStore(tmp_path), RunStore(tmp_path)
    in_write, release = threading.Event(), threading.Event()
    order: list[str] = []

    def slow_file(path):
        path.write_bytes(b"a")
        in_write.set()
        assert release.wait(DEADLINE)
        order.append("a done")

    t = threading.Thread(target=lambda: a.put("heads", CFG, extra={"by": "a"}, files={"w.bin": slow_file}))
    t.start()
    assert in_write.wait(DEADLINE)
    t2 = threading.Thread(target=lambda: (b.put("heads", CFG, extra={"by": "b"}), order.append("b done")))
    t2.start()
    t2.join(0.3)  # b waits for a's lock (a short look only; the assertion below does not depend on it)
    release.set()
    t.join(DEADLINE)
    t2.join(DEADLINE)
    assert order == ["a done", "b done"]
    entry = reader.get("heads", CFG)
    assert entry.extra == {"by": "b"} and entry.files == ["config.json", "extra.json"]  # a's file is gone
    assert not [p for p in entry.path.iterdir() if p.name.startswith(".")]


WRITER = """
import sys, time
import numpy as np
from hashviz.store import RunStore

def slow(path):
    path.write_bytes(b"x" * 1000)
    print("writing", flush=True)
    time.sleep(600)

RunStore(sys.argv[1]).put("embeddings", {"name": "slow", "n_bits": 8}, arrays={"x": np.arange(3)},
                          files={"big.bin": slow})
"""


def _wait_for_line(proc, text: str) -> None:
    deadline = time.monotonic() + DEADLINE
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            if text.encode() in buf:
                return
    proc.kill()
    raise AssertionError(f"the writer process never said {text!r}: {buf!r} {proc.stderr.read()!r}")


def test_writer_in_another_process_then_killed(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=REPO)
    reader = RunStore(tmp_path)
    path = reader.path_for("embeddings", CFG)
    try:
        _wait_for_line(proc, "writing")
        with warnings.catch_warnings():
            warnings.simplefilter("error", StoreWarning)
            for _ in range(10):
                assert _read_everything(reader, "embeddings", path.name) == [None, None, None, False, [], [], [],
                                                                              None]
        with pytest.raises(StoreError, match=f"being written by process {proc.pid}"):
            reader.get("embeddings", CFG, strict=True)
        assert path.is_dir() and _aside(tmp_path, "embeddings") == [] and reader.problems == []
        assert [(p.kind, p.removable) for p in reader.scan()] == [("being_written", False)]
    finally:
        proc.kill()  # the writer dies mid-write: no status, a half-written temporary file
        proc.wait(DEADLINE)
    assert [p.name for p in path.iterdir() if p.name.startswith(".part-")]  # its leftover
    # the writer is known gone now (its lock died with it): the next reader recovers the entry
    with pytest.warns(StoreWarning, match="corrupt or partial"):
        assert reader.get("embeddings", CFG) is None
    assert not path.exists() and len(_aside(tmp_path, "embeddings")) == 1
    problems = reader.scan()
    assert [(p.kind, p.removable) for p in problems] == [("set_aside", True)]
    assert [p.path for p in reader.clean()] == [problems[0].path] and _aside(tmp_path, "embeddings") == []
    reader.put("embeddings", CFG, arrays={"x": np.arange(3)})  # recomputed
    assert np.array_equal(reader.get("embeddings", CFG).arrays["x"], np.arange(3)) and reader.scan() == []


def test_interrupted_entry_found_by_scan_is_removed_by_clean(tmp_path):
    store = RunStore(tmp_path)
    entry = store.put("quantizers", CFG, arrays={"r": np.eye(2)})
    (entry.path / "status").unlink()  # a writer that died before its status (nobody holds the lock)
    problems = store.scan()
    assert [(p.kind, p.path, p.removable) for p in problems] == [("interrupted", entry.path, True)]
    assert "no status" in problems[0].detail
    assert store.clean(dry_run=True) == problems and entry.path.exists()  # a dry run removes nothing
    assert store.clean() == problems and not entry.path.exists() and store.scan() == []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(DEADLINE)
    return proc.pid  # exited and reaped: not running (pid reuse within the test is not a concern)


def test_scan_and_clean_temp_files_and_stale_training(tmp_path):
    store = RunStore(tmp_path)
    cache = tmp_path / "cache" / "features"
    cache.mkdir(parents=True)
    old = time.time() - 3600
    dead = cache / f".digits-mnist_cnn-abc.npy.{_dead_pid()}.tmp"
    alive = cache / f".digits-mnist_cnn-def.npy.{os.getpid()}.tmp"  # this process is writing it
    fresh_dead = cache / f".digits-mnist_cnn-ghi.npy.{_dead_pid()}.tmp"  # too recent: its writer may be elsewhere
    for p in (dead, alive, fresh_dead):
        p.write_bytes(b"half")
    for p in (dead, alive):
        os.utime(p, (old, old))
    (cache / "digits-mnist_cnn-abc.npy").write_bytes(b"a finished cache file is not a leftover")
    # a sound entry with a dead writer's temporary file, and training that stopped a long time ago
    entry = store.put("heads", CFG, arrays={"w": np.ones(2)})
    temp_in_entry = entry.path / f".arrays.npz.{_dead_pid()}.123.tmp"
    temp_in_entry.write_bytes(b"half")
    training = {"name": "training", "n_bits": 8}
    store.append_curve("quantizers", training, [{"step": 1}])
    tpath = store.path_for("quantizers", training)
    for p in (tpath / "curve.jsonl", tpath / "config.json", tpath):
        os.utime(p, (time.time() - 2 * 86400,) * 2)
    recent = {"name": "recent", "n_bits": 8}
    store.append_curve("quantizers", recent, [{"step": 1}])

    found = {p.path: (p.kind, p.removable) for p in store.scan()}
    assert found == {dead: ("temp_file", True), alive: ("temp_file", False), fresh_dead: ("temp_file", False),
                     temp_in_entry: ("temp_file", True), tpath: ("stale_training", True)}
    removed = {p.path for p in store.clean()}
    assert removed == {dead, temp_in_entry, tpath}
    assert not dead.exists() and alive.exists() and fresh_dead.exists() and not tpath.exists()
    assert store.get("heads", CFG) is not None
    assert read_curve_file(store.path_for("quantizers", recent) / "curve.jsonl") == [{"step": 1}]


def test_delete_waits_for_the_writer_and_removes_its_lock(tmp_path):
    store, other = RunStore(tmp_path), RunStore(tmp_path)
    in_write, release = threading.Event(), threading.Event()

    def slow_file(path):
        path.write_bytes(b"w")
        in_write.set()
        assert release.wait(DEADLINE)

    t = threading.Thread(target=lambda: store.put("live_rotations", CFG, files={"w.bin": slow_file}))
    t.start()
    assert in_write.wait(DEADLINE)
    result: list[bool] = []
    d = threading.Thread(target=lambda: result.append(other.delete("live_rotations", CFG)))
    d.start()
    release.set()
    t.join(DEADLINE)
    d.join(DEADLINE)
    assert result == [True]  # it waited for the write to finish, then removed the whole entry
    assert not store.path_for("live_rotations", CFG).exists()
    assert not list((tmp_path / "runs" / ".locks" / "live_rotations").iterdir())
    assert other.delete("live_rotations", CFG) is False
    store.put("live_rotations", CFG, arrays={"r": np.eye(2)})  # a new lock file, a new entry
    assert store.get("live_rotations", CFG) is not None


def _write_calls(store: RunStore):
    return {"put": lambda: store.put("heads", CFG, arrays={"x": np.ones(2)}),
            "checkpoint": lambda: store.checkpoint("live_rotations", CFG, {"rotation": np.eye(2)}),
            "append_curve": lambda: store.append_curve("heads", CFG, [{"step": 1}]),
            "delete": lambda: store.delete("heads", CFG),
            "require_writable": store.require_writable}


def test_home_that_is_a_file_gives_a_clear_error(tmp_path):
    home = tmp_path / "home"
    home.write_text("I am a file")
    store = RunStore(home)
    for name, call in _write_calls(store).items():
        if name == "delete":
            assert call() is False  # nothing to delete
            continue
        with pytest.raises(StoreError, match="cannot write to the hashviz home") as e:
            call()
        assert str(home) in e.value.message and "file, not a folder" in e.value.message, name
        assert "HASHVIZ_HOME" in e.value.hint
    assert store.get("heads", CFG) is None and store.list("heads") == [] and store.scan() == []


def _chmod_is_effective(folder: Path) -> bool:
    probe = folder / "probe"
    probe.mkdir()
    os.chmod(probe, 0o555)
    try:
        (probe / "x").write_bytes(b"")
    except PermissionError:
        return True
    finally:
        os.chmod(probe, 0o755)
    return False  # root (CAP_DAC_OVERRIDE) writes anyway


def test_read_only_home_reads_but_refuses_writes_clearly(tmp_path):
    if not _chmod_is_effective(tmp_path):
        pytest.skip("file permissions do not bind this user (root); test_home_that_is_a_file_gives_a_clear_error "
                    "covers unwritable homes")
    home = tmp_path / "home"
    store = RunStore(home)
    good = store.put("heads", CFG, arrays={"x": np.ones(2)})
    bad = store.put("heads", {**CFG, "name": "bad"}, arrays={"x": np.ones(2)})
    (bad.path / "status").unlink()
    (home / "cache").mkdir()
    dirs, files = [str(home)], []
    for dirpath, dirnames, filenames in os.walk(home):
        dirs += [os.path.join(dirpath, n) for n in dirnames]
        files += [os.path.join(dirpath, n) for n in filenames]
    try:  # as on a read-only mount: nothing can be created, changed or removed
        for f in files:
            os.chmod(f, 0o444)
        for d in dirs:
            os.chmod(d, 0o555)
        reader = RunStore(home)
        assert np.array_equal(reader.get("heads", CFG).arrays["x"], np.ones(2))  # reading works
        with pytest.warns(StoreWarning, match="left in place"):
            assert reader.get_key("heads", bad.key) is None
        assert bad.path.exists()
        for name, call in _write_calls(reader).items():
            with pytest.raises(StoreError, match="cannot write to the hashviz home") as e:
                call()
            assert "HASHVIZ_HOME" in e.value.hint, name
    finally:
        for d in dirs:
            os.chmod(d, 0o755)
    assert good.path.exists() and bad.path.exists()
