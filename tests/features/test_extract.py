"""Cached, batched feature extraction: exact values, cache hits, checksums, workers, stops and errors leave no cache."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hashviz.data import ImageDataset, get_dataset
from hashviz.errors import DataUnavailableError, InvalidInputError, StoppedError
from hashviz.features import extract_features, feature_cache_path, get_backbone
from hashviz.features.backbones import Backbone
from hashviz.features.extract import (
    default_batch_size,
    default_num_workers,
    feature_cache_leftovers,
    sidecar_path,
)
from tests.data.fakes import write_cifar10


@pytest.fixture(scope="module")
def small():
    full = get_dataset("mnist5k")
    idx = np.arange(0, 5000, 10)  # 500 images, 50 per class
    return ImageDataset(name="mnist500", images=full.images[idx], labels=full.labels[idx],
                        class_names=full.class_names, split=full.split[idx], seed=0)


def test_features_match_a_direct_forward_pass(small, tmp_path):
    bb = get_backbone("mnist_cnn")
    seen = []
    f = extract_features(small, bb, batch_size=128, cache_dir=tmp_path, progress=lambda d, n: seen.append((d, n)))
    assert f.shape == (500, 128) and f.dtype == np.float32
    assert seen == [(128, 500), (256, 500), (384, 500), (500, 500)]
    model = bb.load_model()
    with torch.no_grad():
        ref = model(bb.transform(small.images)).numpy()
    np.testing.assert_allclose(f, ref, rtol=1e-5, atol=1e-5)
    assert feature_cache_path(small, bb, tmp_path).is_file()


def test_second_call_reads_the_cache(small, tmp_path, monkeypatch):
    first = extract_features(small, "mnist_cnn", cache_dir=tmp_path)

    def trap(self, **kw):
        raise AssertionError("the model was loaded although the features are cached")

    monkeypatch.setattr(Backbone, "load_model", trap)
    seen = []
    again = extract_features(small, "mnist_cnn", cache_dir=tmp_path, progress=lambda d, n: seen.append((d, n)))
    np.testing.assert_array_equal(first, again)
    assert seen == [(500, 500)]


def test_key_depends_on_seed_and_weights(small, tmp_path):
    from dataclasses import replace

    p0 = feature_cache_path(small, "mnist_cnn", tmp_path)
    p1 = feature_cache_path(replace(small, seed=1), "mnist_cnn", tmp_path)
    other = tmp_path / "other.pt"
    torch.save(get_backbone("mnist_cnn").load_model(keep_classifier=True).state_dict(), other)
    p2 = feature_cache_path(small, get_backbone("mnist_cnn", weights=other), tmp_path)
    assert len({p0, p1, p2}) == 3


def test_stop_leaves_no_cache(small, tmp_path):
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(StoppedError) as e:
        extract_features(small, "mnist_cnn", batch_size=100, cache_dir=tmp_path, should_stop=stop)
    assert "after 200 of 500" in e.value.message
    assert list(tmp_path.iterdir()) == []
    f = extract_features(small, "mnist_cnn", batch_size=100, cache_dir=tmp_path)
    path = feature_cache_path(small, "mnist_cnn", tmp_path)
    assert f.shape == (500, 128) and sorted(tmp_path.iterdir()) == [path, sidecar_path(path)]


def test_exception_midway_leaves_no_cache(small, tmp_path):
    def boom(done, total):
        if done >= 256:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_features(small, "mnist_cnn", batch_size=128, cache_dir=tmp_path, progress=boom)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_corrupt_cache_is_recomputed(small, tmp_path):
    good = extract_features(small, "mnist_cnn", cache_dir=tmp_path)
    path = feature_cache_path(small, "mnist_cnn", tmp_path)
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    np.testing.assert_array_equal(extract_features(small, "mnist_cnn", cache_dir=tmp_path), good)
    np.save(path, np.zeros((3, 3), np.float32))  # wrong shape
    np.testing.assert_array_equal(extract_features(small, "mnist_cnn", cache_dir=tmp_path), good)


def test_default_cache_is_under_hashviz_home(small, tmp_path, monkeypatch):
    monkeypatch.setenv("HASHVIZ_HOME", str(tmp_path))
    assert feature_cache_path(small, "mnist_cnn").parent == tmp_path / "cache" / "features"


def test_no_images_no_extraction(tmp_path, blobs):
    z, labels = blobs
    np.savez(tmp_path / "e.npz", z=z, labels=labels)
    d = get_dataset("embeddings", path=str(tmp_path / "e.npz"))
    with pytest.raises(InvalidInputError, match="no images"):
        extract_features(d, "mnist_cnn", cache_dir=tmp_path)


# ---- the checksum sidecar ----------------------------------------------------------------------------------
def test_sidecar_records_size_sha256_and_shape(small, tmp_path):
    extract_features(small, "mnist_cnn", cache_dir=tmp_path)
    path = feature_cache_path(small, "mnist_cnn", tmp_path)
    meta = json.loads(sidecar_path(path).read_text())
    data = path.read_bytes()
    assert meta["sha256"] == hashlib.sha256(data).hexdigest() and meta["size"] == len(data)
    assert meta["shape"] == [500, 128] and np.dtype(meta["dtype"]) == np.float32
    assert sidecar_path(path).name == path.name + ".json"


def _recomputed(small, tmp_path, caplog, good, match):
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hashviz.features.extract"):
        again = extract_features(small, "mnist_cnn", cache_dir=tmp_path)
    np.testing.assert_array_equal(again, good)
    assert any(match in r.getMessage() and "recomputing" in r.getMessage() for r in caplog.records), caplog.text
    path = feature_cache_path(small, "mnist_cnn", tmp_path)
    assert json.loads(sidecar_path(path).read_text())["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_replaced_cache_of_the_same_shape_is_recomputed(small, tmp_path, caplog):
    """Issue 9 §4: a cache file replaced by other features of the right shape was used as if it were the real one."""
    good = extract_features(small, "mnist_cnn", cache_dir=tmp_path)
    path = feature_cache_path(small, "mnist_cnn", tmp_path)
    np.save(path, np.ones((500, 128), np.float32))  # same shape, same size, other values
    assert path.stat().st_size == json.loads(sidecar_path(path).read_text())["size"]
    _recomputed(small, tmp_path, caplog, good, "SHA-256")
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1  # one bit of the last feature
    path.write_bytes(bytes(raw))
    _recomputed(small, tmp_path, caplog, good, "SHA-256")


@pytest.mark.slow
def test_cache_without_or_with_a_broken_sidecar_is_recomputed(small, tmp_path, caplog):
    good = extract_features(small, "mnist_cnn", cache_dir=tmp_path)
    path = feature_cache_path(small, "mnist_cnn", tmp_path)
    sidecar_path(path).unlink()
    _recomputed(small, tmp_path, caplog, good, "no checksum sidecar")
    sidecar_path(path).write_text("{not json")
    _recomputed(small, tmp_path, caplog, good, "unreadable checksum sidecar")
    meta = json.loads(sidecar_path(path).read_text())
    sidecar_path(path).write_text(json.dumps({**meta, "shape": [500, 64]}))
    _recomputed(small, tmp_path, caplog, good, "expected float32 (500, 128)")


def test_a_valid_cache_is_read_without_warning(small, tmp_path, caplog):
    extract_features(small, "mnist_cnn", cache_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="hashviz.features.extract"):
        extract_features(small, "mnist_cnn", cache_dir=tmp_path)
    assert caplog.records == []


# ---- crash leftovers -----------------------------------------------------------------------------------------
_CRASH = """
import os, sys
import numpy as np
from pathlib import Path
import hashviz.features.extract as X

real_save = np.save
def crash(f, arr, allow_pickle=False):
    f.write(b"\\x93NUMPY partial")  # some bytes of the array, then the process dies without cleaning up
    os._exit(3)
np.save = crash
X._write_cache(Path(sys.argv[1]), np.zeros((4, 2), np.float32))
"""


@pytest.mark.slow
def test_a_crashed_write_leaves_a_recognised_leftover(tmp_path):
    target = tmp_path / "ds-mnist_cnn-abc.npy"
    proc = subprocess.run([sys.executable, "-c", _CRASH, str(target)], cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    left = sorted(tmp_path.iterdir())
    assert len(left) == 1 and left[0].name.startswith(".ds-mnist_cnn-abc.npy.") and left[0].name.endswith(".tmp")
    assert feature_cache_leftovers(tmp_path) == left  # its writer is gone


def test_leftovers_list_only_what_is_safe_to_delete(small, tmp_path):
    extract_features(small, "mnist_cnn", cache_dir=tmp_path)  # a valid pair: kept
    live = tmp_path / f".x.npy.{os.getpid()}.123.tmp"  # written by a running process (this one): kept
    live.write_bytes(b"x")
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(done.stdout)
    dead = tmp_path / f".y.npy.{dead_pid}.456.tmp"
    old_style = tmp_path / f".y.npy.{dead_pid}.tmp"
    no_pid = tmp_path / ".z.npy.tmp"
    orphan_sidecar = tmp_path / "gone.npy.json"
    fresh_array = tmp_path / "fresh.npy"  # its sidecar may be being written right now: kept
    old_array = tmp_path / "old.npy"
    other = tmp_path / "notes.txt"
    for p in (dead, old_style, no_pid, orphan_sidecar, fresh_array, old_array, other):
        p.write_bytes(b"x")
    hour_ago = time.time() - 3600
    os.utime(old_array, (hour_ago, hour_ago))
    assert feature_cache_leftovers(tmp_path) == sorted([dead, old_style, no_pid, orphan_sidecar, old_array])
    assert feature_cache_leftovers(tmp_path / "missing") == []


def test_default_leftovers_folder_is_the_feature_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HASHVIZ_HOME", str(tmp_path))
    folder = tmp_path / "cache" / "features"
    folder.mkdir(parents=True)
    (folder / "a.npy.json").write_text("{}")
    assert feature_cache_leftovers() == [folder / "a.npy.json"]


# ---- workers, batches, stop --------------------------------------------------------------------------------
@pytest.mark.slow
def test_features_do_not_depend_on_the_number_of_workers(small, tmp_path):
    runs = {w: extract_features(small, "mnist_cnn", batch_size=96, num_workers=w, use_cache=False)
            for w in (0, 1, 2)}
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])


@pytest.fixture(scope="module")
def cifar_resnet(tmp_path_factory):
    """A 24-image CIFAR-10 root in the official layout and a resnet18 user weights file (seeded random weights)."""
    import torchvision

    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, per_batch=4)
    torch.manual_seed(0)
    weights = root / "resnet18-random.pt"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    return get_dataset("cifar10", root=str(root), n_query_per_class=1, n_train_per_class=1), \
        get_backbone("resnet18", weights=weights)


@pytest.mark.slow
def test_cifar_with_resnet18_workers_and_direct_forward_agree(cifar_resnet, tmp_path):
    data, bb = cifar_resnet
    seen = []
    f0 = extract_features(data, bb, batch_size=8, num_workers=0, cache_dir=tmp_path,
                          progress=lambda d, n: seen.append((d, n)))
    f2 = extract_features(data, bb, batch_size=8, num_workers=2, use_cache=False)
    assert f0.shape == (24, 512) and seen == [(8, 24), (16, 24), (24, 24)]
    np.testing.assert_array_equal(f0, f2)
    model = bb.load_model()
    with torch.no_grad():
        ref = model(bb.transform(data.images[:8])).numpy()
    np.testing.assert_array_equal(f0[:8], ref)  # the same batch of 8, run directly
    np.testing.assert_array_equal(extract_features(data, bb, cache_dir=tmp_path), f0)  # cache hit


def _workers_gone(before: set, deadline_s: float = 60.0) -> bool:
    """True once no multiprocessing child started after ``before`` was taken is left (a condition with a deadline)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if not set(multiprocessing.active_children()) - before:
            return True
        time.sleep(0.05)
    return False


def test_stop_with_workers_shuts_them_down_and_caches_nothing(small, tmp_path):
    before = set(multiprocessing.active_children())
    calls = []

    def stop():
        calls.append(1)
        if len(calls) == 3:
            assert len(set(multiprocessing.active_children()) - before) == 2  # the workers run meanwhile
        return len(calls) > 3

    with pytest.raises(StoppedError) as e:
        extract_features(small, "mnist_cnn", batch_size=50, num_workers=2, cache_dir=tmp_path, should_stop=stop)
    assert "after 150 of 500" in e.value.message
    assert _workers_gone(before)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def _loader(path: str, size: int) -> np.ndarray:
    if path.endswith("bad.png"):
        raise DataUnavailableError(f"{path} disappeared", "put it back")
    return np.full((size, size, 3), 7, np.uint8)


@pytest.mark.parametrize("workers", [0, 1])
def test_an_error_in_a_worker_arrives_as_itself(tmp_path, workers):
    paths = [f"/img/{i}.png" for i in range(10)] + ["/img/bad.png"]
    data = ImageDataset(name="files", labels=np.arange(11) % 2, class_names=("a", "b"), split=np.full(11, 2),
                        paths=tuple(paths), image_size=28, loader=_loader)
    assert default_num_workers(data) == max(0, min(4, (os.cpu_count() or 1) - 1))
    before = set(multiprocessing.active_children())
    with pytest.raises(DataUnavailableError) as e:
        extract_features(data, "mnist_cnn", batch_size=4, num_workers=workers, cache_dir=tmp_path)
    assert e.value.message == "/img/bad.png disappeared" and e.value.hint == "put it back"  # no traceback text
    assert _workers_gone(before)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_defaults_and_bad_arguments(small):
    assert default_num_workers(small) == 0  # images in memory
    assert default_batch_size("mnist_cnn") == 256 and default_batch_size(get_backbone("resnet18")) == 64
    with pytest.raises(InvalidInputError, match="num_workers"):
        extract_features(small, "mnist_cnn", num_workers=-1, use_cache=False)
    with pytest.raises(InvalidInputError, match="batch_size"):
        extract_features(small, "mnist_cnn", batch_size=0, use_cache=False)
