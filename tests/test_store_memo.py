"""RunStore's memo of verified hashes: a settled file read again is not hashed again, and a file changed in any
way after its hash (in place with the same size and its mtime set back, or replaced) is still caught."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from hashviz import store as S
from hashviz.store import RunStore, StoreWarning

CFG = {"name": "memo", "n_bits": 16}


def _arrays():
    rng = np.random.default_rng(1)
    return {"rotation": rng.standard_normal((64, 64)), "z": rng.standard_normal((2000, 64)).astype(np.float32)}


def _settle(path, settle: float) -> None:
    """Wait until every file of the entry was last touched more than ``settle`` seconds ago (a condition, polled;
    nothing asserts on how long it took)."""
    newest = max(max(p.stat().st_mtime_ns, p.stat().st_ctime_ns) for p in path.iterdir() if p.is_file())
    while time.time_ns() <= newest + int(settle * 1e9):
        time.sleep(0.01)


@pytest.fixture
def quick_settle(monkeypatch):
    monkeypatch.setattr(S, "SETTLE_SECONDS", 0.05)
    S.forget_verified()
    yield 0.05
    S.forget_verified()


def _flip_in_place_keeping_mtime(f) -> None:
    st = f.stat()
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    with open(f, "r+b") as fh:  # same inode, same size
        fh.write(bytes(data))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime set back: only ctime tells
    assert f.stat().st_mtime_ns == st.st_mtime_ns and f.stat().st_size == st.st_size


def test_a_settled_entry_is_hashed_once(tmp_path, quick_settle):
    store = RunStore(tmp_path)
    entry = store.put("quantizers", CFG, arrays=_arrays(), files={"big.bin": os.urandom(1 << 20)})
    _settle(entry.path, quick_settle)
    before = S._memo_stats["hashed"]
    first = store.get("quantizers", CFG)
    hashed_once = S._memo_stats["hashed"] - before
    assert hashed_once >= len(entry.files)  # the first read hashes every file
    hits = S._memo_stats["hits"]
    for _ in range(3):
        again = RunStore(tmp_path).get("quantizers", CFG)  # fresh instances: the memo is per process
        assert np.array_equal(again.arrays["z"], first.arrays["z"])
        assert again.read_bytes("big.bin") == first.read_bytes("big.bin")
    assert S._memo_stats["hashed"] - before == hashed_once  # nothing hashed again
    assert S._memo_stats["hits"] > hits


@pytest.mark.parametrize("name", ["arrays.npz", "big.bin"])
def test_a_change_after_the_memo_is_caught(tmp_path, quick_settle, name):
    store = RunStore(tmp_path)
    entry = store.put("quantizers", CFG, arrays=_arrays(), files={"big.bin": os.urandom(1 << 16)})
    _settle(entry.path, quick_settle)
    assert store.get("quantizers", CFG) is not None
    assert store.get("quantizers", CFG) is not None  # now served from the memo
    _flip_in_place_keeping_mtime(entry.path / name)
    with pytest.warns(StoreWarning, match="does not match its checksum"):
        assert store.get("quantizers", CFG) is None
    assert not entry.path.exists()  # set aside, never used


def test_a_replaced_file_with_the_same_size_and_mtime_is_caught(tmp_path, quick_settle):
    store = RunStore(tmp_path)
    entry = store.put("quantizers", CFG, arrays=_arrays(), files={"big.bin": b"a" * 4096})
    _settle(entry.path, quick_settle)
    assert store.get("quantizers", CFG).read_bytes("big.bin") == b"a" * 4096
    f = entry.path / "big.bin"
    st = f.stat()
    tmp = entry.path / ".new"
    tmp.write_bytes(b"b" * 4096)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, f)  # a new inode with the old size and mtime
    with pytest.warns(StoreWarning, match="does not match its checksum"):
        assert store.get("quantizers", CFG) is None


def test_a_file_changed_soon_after_it_was_written_is_hashed_every_time(tmp_path):
    """With the default settle time a fresh file is never remembered, so a change right after the first read —
    within the same timestamp tick on a coarse clock — is still caught."""
    S.forget_verified()
    store = RunStore(tmp_path)
    entry = store.put("quantizers", CFG, arrays=_arrays())
    assert store.get("quantizers", CFG) is not None
    _flip_in_place_keeping_mtime(entry.path / "arrays.npz")
    with pytest.warns(StoreWarning):
        assert store.get("quantizers", CFG) is None


def test_entry_read_bytes_detects_a_change_after_the_memo(tmp_path, quick_settle):
    from hashviz.errors import StoreError

    store = RunStore(tmp_path)
    entry = store.put("quantizers", CFG, files={"big.bin": os.urandom(1 << 16)})
    _settle(entry.path, quick_settle)
    got = store.get("quantizers", CFG)
    data = got.read_bytes("big.bin")
    assert got.read_bytes("big.bin") == data
    _flip_in_place_keeping_mtime(entry.path / "big.bin")
    with pytest.raises(StoreError, match="changed or went away"):
        got.read_bytes("big.bin")
