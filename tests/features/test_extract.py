"""Cached, batched feature extraction: exact values, cache hits, stops and errors leave no cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashviz.data import ImageDataset, get_dataset
from hashviz.errors import InvalidInputError, StoppedError
from hashviz.features import extract_features, feature_cache_path, get_backbone
from hashviz.features.backbones import Backbone


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
    assert f.shape == (500, 128) and len(list(tmp_path.iterdir())) == 1


def test_exception_midway_leaves_no_cache(small, tmp_path):
    def boom(done, total):
        if done >= 256:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_features(small, "mnist_cnn", batch_size=128, cache_dir=tmp_path, progress=boom)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


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
