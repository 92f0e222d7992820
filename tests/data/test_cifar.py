"""CIFAR-10/100 from fake official-format pickles written here; missing files; refused pickles."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from hashviz.data import get_dataset, list_datasets
from hashviz.data.splits import QUERY, TRAIN
from hashviz.errors import DataUnavailableError, InvalidInputError
from tests.data.fakes import MarkerPayload, write_cifar10, write_cifar100


def test_cifar10_reads_official_layout(tmp_path):
    truth = write_cifar10(tmp_path)
    d = get_dataset("cifar10", root=str(tmp_path), n_query_per_class=1, n_train_per_class=3)
    assert d.images.shape == (60, 32, 32, 3) and d.images.dtype == np.uint8
    np.testing.assert_array_equal(d.labels, truth["labels"])
    # pixel (row 2, col 5) of image 7 is at offsets 2*32+5 in the red, green and blue planes of its row
    row = truth["data"][7]
    np.testing.assert_array_equal(d.images[7, 2, 5], [row[69], row[1024 + 69], row[2048 + 69]])
    assert d.class_names == tuple(f"class{c}" for c in range(10))
    assert (d.split == QUERY).sum() == 10 and (d.split == TRAIN).sum() == 30
    assert d.hierarchy is None
    entry = {e.name: e for e in list_datasets()}["cifar10"]
    assert entry.available_offline(root=str(tmp_path)) == (True, f"found in {tmp_path / 'cifar-10-batches-py'}")


def test_cifar10_default_protocol_and_seed(tmp_path):
    write_cifar10(tmp_path, per_batch=40)  # 24 images per class: 100 queries/class is capped at 23
    a = get_dataset("cifar10", root=str(tmp_path), seed=5)
    b = get_dataset("cifar10", root=str(tmp_path), seed=5)
    np.testing.assert_array_equal(a.split, b.split)
    assert a.protocol == {"n_query_per_class": 100, "n_train_per_class": 500}
    assert ((a.split == QUERY) & (a.labels == 0)).sum() == 23


def test_cifar100_fine_labels_with_coarse_hierarchy(tmp_path):
    write_cifar100(tmp_path)
    d = get_dataset("cifar100", root=str(tmp_path), n_query_per_class=2, n_train_per_class=4)
    assert d.images.shape == (80, 32, 32, 3) and d.n_classes == 10
    assert d.hierarchy == ("low",) * 5 + ("high",) * 5
    assert d.parent_names == ("low", "high")
    np.testing.assert_array_equal(d.parent_labels(), d.labels // 5)
    assert (d.split == QUERY).sum() == 20


def test_missing_root_says_which_folder_and_files(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(DataUnavailableError) as e:
        get_dataset("cifar10", root=str(root))
    text = str(e.value)
    assert str(root / "cifar-10-batches-py") in text
    for f in ("data_batch_1", "data_batch_5", "test_batch", "batches.meta", "download=True"):
        assert f in text
    with pytest.raises(DataUnavailableError) as e:
        get_dataset("cifar100", root=str(root))
    assert "cifar-100-python" in e.value.hint and "train, test, meta" in e.value.hint


def test_default_root_is_under_hashviz_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HASHVIZ_HOME", str(tmp_path / "home"))
    with pytest.raises(DataUnavailableError) as e:
        get_dataset("cifar10")
    assert str(tmp_path / "home" / "data" / "cifar" / "cifar-10-batches-py") in e.value.message


def test_partial_folder_names_missing_file(tmp_path):
    write_cifar10(tmp_path, skip=("test_batch",))
    with pytest.raises(DataUnavailableError) as e:
        get_dataset("cifar10", root=str(tmp_path))
    assert "missing test_batch" in e.value.message
    entry = {e.name: e for e in list_datasets()}["cifar10"]
    ok, reason = entry.available_offline(root=str(tmp_path))
    assert not ok and "test_batch" in reason


def test_batch_with_code_is_refused_without_running_it(tmp_path):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        pickle.dump({b"data": MarkerPayload(marker), b"labels": [0]}, f, protocol=2)
    with pytest.raises(InvalidInputError) as e:
        get_dataset("cifar10", root=str(tmp_path))
    assert "data_batch_3" in e.value.message and "not allowed" in e.value.message
    assert not marker.exists()
    # control: the payload is live — an unrestricted unpickler would have created the file
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(MarkerPayload(control))).close()
    assert control.exists()


def test_garbage_batch_file(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"\x00not a pickle")
    with pytest.raises(InvalidInputError, match="not a valid CIFAR batch"):
        get_dataset("cifar10", root=str(tmp_path))
