"""CIFAR-10 split presets of the papers (deephash, h2q) on a fake official-format CIFAR-10 written here, and the
split codes they need (3 = train only, 4 = held out)."""

from __future__ import annotations

import numpy as np
import pytest

from hashviz.data import get_dataset
from hashviz.data.splits import DATABASE, HELD_OUT, QUERY, TRAIN, TRAIN_ONLY, masks, stratified_split
from hashviz.embeddings import Embeddings
from hashviz.errors import InvalidInputError
from tests.data.fakes import write_cifar10


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, per_batch=1200)        # 7,200 images, 720 per class
    return root


def test_masks_of_the_new_codes():
    split = np.array([TRAIN, QUERY, DATABASE, TRAIN_ONLY, HELD_OUT])
    m = masks(split)
    assert m["train"].tolist() == [True, False, False, True, False]
    assert m["database"].tolist() == [True, False, True, False, False]
    assert m["query"].tolist() == [False, True, False, False, False]
    assert m["val"].tolist() == [False, False, False, False, True]


def test_validation_and_train_only_do_not_change_the_other_draws():
    labels = np.repeat(np.arange(4), 50)
    base = stratified_split(labels, n_query_per_class=5, n_train_per_class=20, seed=3)
    h2q = stratified_split(labels, n_query_per_class=5, n_train_per_class=20, n_val_per_class=7,
                           train_in_database=False, seed=3)
    np.testing.assert_array_equal(base == QUERY, h2q == QUERY)
    np.testing.assert_array_equal(base == TRAIN, h2q == TRAIN_ONLY)
    assert all(((h2q == HELD_OUT) & (labels == c)).sum() == 7 for c in range(4))
    assert not ((h2q == HELD_OUT) & (base != DATABASE)).any()    # taken from the old database-only rows


def test_h2q_preset_counts_and_database(cifar_root):
    d = get_dataset("cifar10", root=str(cifar_root), split_preset="h2q")
    m = d.masks()
    for c in range(10):
        of = d.labels == c
        assert (m["train"] & of).sum() == 500 and (m["query"] & of).sum() == 100 and (m["val"] & of).sum() == 100
        assert (m["database"] & of).sum() == 720 - 700             # the rest, without train and validation
    assert not (m["train"] & m["database"]).any() and not (m["val"] & (m["database"] | m["train"])).any()
    assert "held out" in d.summary() and "train not in the database" in d.summary()
    default = get_dataset("cifar10", root=str(cifar_root))
    assert d.fingerprint != default.fingerprint                    # another train set: its own cache keys


def test_deephash_preset_is_the_default_split(cifar_root):
    d = get_dataset("cifar10", root=str(cifar_root), split_preset="deephash", seed=2)
    default = get_dataset("cifar10", root=str(cifar_root), seed=2)
    np.testing.assert_array_equal(d.split, default.split)
    assert d.fingerprint == default.fingerprint
    m = d.masks()
    assert m["query"].sum() == 1000 and m["train"].sum() == 5000 and m["database"].sum() == 7200 - 1000


def test_embeddings_with_train_only_rows_round_trip_and_evaluate(tmp_path):
    from hashviz.evaluate import evaluate
    from tests.helpers import clustered_embeddings

    z, labels = clustered_embeddings(n_per_class=60, n_classes=3, n_bits=16, seed=0)
    split = stratified_split(labels, n_query_per_class=10, n_train_per_class=30, n_val_per_class=5,
                             train_in_database=False, seed=0)
    emb = Embeddings(z=z, labels=labels, split=split)
    emb.save(tmp_path / "e.npz")
    back = Embeddings.load(tmp_path / "e.npz")
    np.testing.assert_array_equal(back.split, split)
    assert back.part("database").n == 3 * 15 and back.part("train").n == 90
    ev = evaluate(back, "sign")
    assert ev.n_database == 45 and ev.n_train == 90 and ev.n_query == 30
    with pytest.raises(InvalidInputError, match="values 0..4"):
        Embeddings(z=z, labels=labels, split=np.full(len(z), 5))


@pytest.mark.parametrize("options, message", [
    ({"split_preset": "nope"}, "unknown split preset"),
    ({"split_preset": "h2q", "n_train_per_class": 10}, "not both"),
])
def test_preset_errors(cifar_root, options, message):
    with pytest.raises(InvalidInputError, match=message) as e:
        get_dataset("cifar10", root=str(cifar_root), **options)
    assert e.value.hint


def test_presets_are_cifar10_only(tmp_path):
    from tests.data.fakes import write_cifar100

    write_cifar100(tmp_path)
    with pytest.raises(InvalidInputError, match="CIFAR-10's"):
        get_dataset("cifar100", root=str(tmp_path), split_preset="h2q")
    with pytest.raises(InvalidInputError, match="no option split_preset"):
        get_dataset("mnist5k", split_preset="h2q")
