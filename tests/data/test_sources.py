"""Registry, mnist5k and digits protocols, splits, hierarchies, the embeddings source."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hashviz.data import ImageDataset, get_dataset, list_datasets
from hashviz.data.hierarchy import DIGIT_FAMILIES, load_hierarchy_json
from hashviz.data.splits import QUERY, TRAIN
from hashviz.embeddings import Embeddings
from hashviz.errors import DataUnavailableError, InvalidInputError


@pytest.fixture(scope="module")
def mnist():
    return get_dataset("mnist5k")


def test_registry_lists_every_source_with_offline_status():
    entries = list_datasets()
    assert [e.name for e in entries] == ["mnist5k", "digits", "cifar10", "cifar100", "imagefolder", "listfile",
                                         "embeddings"]
    assert entries[0].default
    for e in entries:
        ok, reason = e.available_offline()
        assert isinstance(ok, bool) and reason and e.description
    assert dict((e.name, e.available_offline()[0]) for e in entries)["mnist5k"] is True


def test_unknown_name_and_option_messages():
    with pytest.raises(InvalidInputError) as e:
        get_dataset("mnist")
    assert "mnist5k" in e.value.hint and "cifar100" in e.value.hint and "listfile" in e.value.hint
    with pytest.raises(InvalidInputError) as e:
        get_dataset("mnist5k", root="/tmp")
    assert "root" in e.value.message and "n_query_per_class" in e.value.hint


def test_mnist5k_protocol_counts(mnist):
    assert isinstance(mnist, ImageDataset)
    assert mnist.images.shape == (5000, 28, 28) and mnist.images.dtype == np.uint8
    assert mnist.labels.dtype == np.int64 and mnist.images.max() == 255
    m = mnist.masks()
    assert (m["query"].sum(), m["database"].sum(), m["train"].sum()) == (1000, 4000, 2000)
    assert not (m["query"] & m["database"]).any() and (m["train"] <= m["database"]).all()
    for c in range(10):
        assert (m["query"] & (mnist.labels == c)).sum() == 100
        assert (m["train"] & (mnist.labels == c)).sum() == 200
        assert (m["database"] & (mnist.labels == c)).sum() == 400
    assert mnist.class_names == tuple("0123456789")
    assert len(mnist.indices("train")) == 2000 and mnist.load_images([3, 4]).shape == (2, 28, 28)


def test_splits_are_deterministic_by_seed(mnist):
    again = get_dataset("mnist5k", seed=0)
    other = get_dataset("mnist5k", seed=1)
    np.testing.assert_array_equal(mnist.split, again.split)
    assert (mnist.split != other.split).any()
    assert (other.split == QUERY).sum() == 1000 and (other.split == TRAIN).sum() == 2000
    assert mnist.fingerprint == again.fingerprint == other.fingerprint  # content only; seed is kept apart
    assert other.seed == 1


def test_protocol_override(mnist):
    d = get_dataset("mnist5k", n_query_per_class=10, n_train_per_class=50)
    assert (d.split == QUERY).sum() == 100 and (d.split == TRAIN).sum() == 500
    with pytest.raises(InvalidInputError):
        get_dataset("mnist5k", n_query_per_class=-1)


def test_digits_scaled_and_protocol():
    d = get_dataset("digits", seed=3)
    assert d.images.shape == (1797, 8, 8) and d.images.dtype == np.uint8
    assert d.images.max() == 255 and d.images.min() == 0
    from sklearn.datasets import load_digits

    raw = load_digits().images
    np.testing.assert_array_equal(d.images, np.rint(raw * 255 / 16).astype(np.uint8))
    m = d.masks()
    assert m["query"].sum() == 300 and m["train"].sum() == 1000 and m["database"].sum() == 1497
    assert all((m["query"] & (d.labels == c)).sum() == 30 for c in range(10))


def test_digit_hierarchy_is_the_documented_tree(mnist):
    tree = dict(zip(mnist.class_names, mnist.hierarchy))
    assert {d for d, p in tree.items() if p == "loops"} == set(DIGIT_FAMILIES["loops"]) == {"0", "6", "8", "9"}
    assert {d for d, p in tree.items() if p == "straight"} == {"1", "4", "7"}
    assert {d for d, p in tree.items() if p == "curves"} == {"2", "3", "5"}
    parents = mnist.parent_labels()
    assert parents.shape == (5000,) and mnist.parent_names[parents[mnist.labels == 8][0]] == "loops"
    assert get_dataset("digits", hierarchy="none").hierarchy is None


def test_user_hierarchy_json(tmp_path):
    good = tmp_path / "tree.json"
    good.write_text(json.dumps({str(d): ("even" if d % 2 == 0 else "odd") for d in range(10)}))
    d = get_dataset("digits", hierarchy=str(good))
    assert d.hierarchy == ("even", "odd") * 5
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({str(d): "x" for d in range(9)}))
    with pytest.raises(InvalidInputError) as e:
        load_hierarchy_json(missing, [str(d) for d in range(10)])
    assert "no parent for 1 classes: 9" in e.value.message
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({**{str(d): "x" for d in range(10)}, "ten": "x"}))
    with pytest.raises(InvalidInputError) as e:
        get_dataset("digits", hierarchy=str(unknown))
    assert "ten" in e.value.message
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidInputError, match="not a readable JSON"):
        get_dataset("digits", hierarchy=str(bad))


def test_embeddings_source_skips_backbone(tmp_path, blobs):
    z, labels = blobs
    thumbs = np.random.default_rng(0).integers(0, 256, size=(len(z), 6, 6, 3), dtype=np.uint8)
    path = tmp_path / "emb.npz"
    np.savez(path, z=z, labels=labels, thumbnails=thumbs, class_names=np.array(list("abcde")))
    emb = Embeddings.load(path, seed=2)
    assert isinstance(emb, Embeddings)
    np.testing.assert_array_equal(emb.z, z)
    d = get_dataset("embeddings", path=str(path), seed=2)
    assert d.embeddings is not None and d.class_names == tuple("abcde")
    np.testing.assert_array_equal(d.embeddings.z, z)
    np.testing.assert_array_equal(d.split, emb.split)
    np.testing.assert_array_equal(d.load_images([0, 5]), thumbs[[0, 5]])
    with pytest.raises(InvalidInputError, match="needs path"):
        get_dataset("embeddings")
    with pytest.raises(InvalidInputError, match="no such file"):
        get_dataset("embeddings", path=str(tmp_path / "nope.npz"))


def test_embeddings_without_thumbnails_has_no_images(tmp_path, blobs):
    z, labels = blobs
    np.savez(tmp_path / "e.npz", features=z, labels=labels)
    d = get_dataset("embeddings", path=str(tmp_path / "e.npz"))
    assert not d.has_images and d.image_shape is None
    with pytest.raises(InvalidInputError, match="no images"):
        d.load_images([0])


def test_dataset_checks_its_arrays():
    with pytest.raises(InvalidInputError, match="images must be uint8"):
        ImageDataset(name="x", images=np.zeros((3, 4, 4), np.float32), labels=[0, 1, 0], class_names=("a", "b"),
                     split=[0, 1, 2])
    with pytest.raises(InvalidInputError, match="class names"):
        ImageDataset(name="x", images=np.zeros((3, 4, 4), np.uint8), labels=[0, 1, 2], class_names=("a", "b"),
                     split=[0, 1, 2])


def test_missing_data_error_type_is_data_unavailable(tmp_path):
    with pytest.raises(DataUnavailableError):
        get_dataset("imagefolder", path=str(tmp_path / "absent"))
