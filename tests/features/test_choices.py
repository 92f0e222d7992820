"""Which backbones suit a dataset, and whether Prepare can start: the decisions behind the app's prepare form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashviz.data import get_dataset, list_datasets
from hashviz.errors import InvalidInputError
from hashviz.features import compatible_backbones, get_backbone, image_kind, incompatibility, readiness
from hashviz.features.backbones import TORCHVISION
from tests.data.fakes import write_cifar10

IMAGENET = list(TORCHVISION)  # resnet18 first


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def names(backbones):
    return [b.name for b in backbones]


def test_every_registered_source_has_a_kind():
    kinds = {e.name: image_kind(e) for e in list_datasets()}
    assert kinds == {"mnist5k": "grey", "digits": "grey", "cifar10": "rgb", "cifar100": "rgb",
                     "imagefolder": "files", "listfile": "files", "embeddings": None}
    assert image_kind("CIFAR-10") == "rgb"
    with pytest.raises(InvalidInputError, match="unknown dataset"):
        image_kind("imagenet")


def test_kind_of_loaded_datasets_follows_their_pixels(tmp_path):
    assert image_kind(get_dataset("digits")) == "grey"
    write_cifar10(tmp_path, per_batch=2)
    assert image_kind(get_dataset("cifar10", root=str(tmp_path), n_query_per_class=0, n_train_per_class=1)) == "rgb"
    np.savez(tmp_path / "e.npz", z=np.zeros((4, 8), np.float32), labels=np.array([0, 1, 0, 1]))
    assert image_kind(get_dataset("embeddings", path=str(tmp_path / "e.npz"))) is None


def test_compatible_backbones_per_kind():
    assert names(compatible_backbones("mnist5k")) == ["mnist_cnn", *IMAGENET]
    assert names(compatible_backbones("digits")) == ["mnist_cnn", *IMAGENET]
    assert names(compatible_backbones("cifar10")) == IMAGENET  # mnist_cnn (28×28 grey) is not offered
    assert names(compatible_backbones("cifar100")) == IMAGENET
    assert names(compatible_backbones("imagefolder")) == [*IMAGENET, "mnist_cnn"]  # user photos or grey digits
    assert compatible_backbones("embeddings") == []


def test_incompatibility_reasons():
    assert "28×28 grey" in incompatibility("mnist_cnn", "cifar10")
    assert incompatibility("resnet18", "cifar10") is None
    assert incompatibility("resnet18", "mnist5k") is None  # grey is copied to three channels
    assert incompatibility(get_backbone("mnist_cnn"), "digits") is None
    assert "no backbone" in incompatibility("resnet18", "embeddings")


def test_readiness_in_order_of_what_is_missing(tmp_path, hub):
    assert readiness("mnist5k", "mnist_cnn") == (True, "")
    ok, why = readiness("imagefolder", "mnist_cnn", options={"path": ""})
    assert not ok and why.startswith("no path given")
    ok, why = readiness("imagefolder", "mnist_cnn", options={"path": str(tmp_path / "nope")})
    assert not ok and why.startswith("data not found") and "does not exist" in why
    ok, why = readiness("cifar10", "resnet18", options={"root": str(tmp_path)})
    assert not ok and why.startswith("data not found") and "data_batch_1" in why
    write_cifar10(tmp_path, per_batch=2)
    ok, why = readiness("cifar10", "mnist_cnn", options={"root": str(tmp_path)})
    assert not ok and "28×28 grey" in why
    ok, why = readiness("cifar10", None, options={"root": str(tmp_path)})  # the first compatible: resnet18
    assert not ok and why.startswith("weights not on disk") and "resnet18-f37072fd.pth" in why and str(hub) in why
    assert readiness("cifar10", "resnet18", options={"root": str(tmp_path)}, upload=True) == (True, "")
    ok, why = readiness("cifar10", "resnet18", options={"root": str(tmp_path)}, weights=tmp_path / "mine.pt")
    assert not ok and "mine.pt" in why
    (tmp_path / "mine.pt").write_bytes(b"checked when it is used")
    assert readiness("cifar10", "resnet18", options={"root": str(tmp_path)}, weights=tmp_path / "mine.pt")[0]
    hub.mkdir(parents=True)
    (hub / "resnet18-f37072fd.pth").write_bytes(b"x")
    assert readiness("cifar10", "resnet18", options={"root": str(tmp_path)}) == (True, "")
    ok, why = readiness("cifar10", "resnet18", options={"root": str(tmp_path)}, bit_lengths=[])
    assert not ok and why.startswith("no bit length")
