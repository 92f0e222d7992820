"""Backbone registry: the bundled CNN, the torch hub cache path, user state_dicts, refused pickles."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch

from hashviz.errors import DataUnavailableError, InvalidInputError
from hashviz.features.backbones import (
    BUNDLED_SHA256,
    BUNDLED_WEIGHTS,
    MNIST_MEAN,
    MNIST_STD,
    TORCHVISION,
    MnistCNN,
    file_sha256,
    get_backbone,
    list_backbones,
    state_dict_sha256,
)
from hashviz.features.train_cnn import mnist_cnn_accuracy, train_mnist_cnn
from tests.data.fakes import MarkerPayload

DIMS = {"mnist_cnn": 128, "resnet18": 512, "resnet50": 2048, "vgg16": 4096, "alexnet": 4096,
        "efficientnet_b0": 1280, "vit_b_16": 768}


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache at $TORCH_HOME/hub."""
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_registry_entries():
    entries = list_backbones()
    assert [b.name for b in entries] == list(DIMS)
    assert {b.name: b.output_dim for b in entries} == DIMS
    assert get_backbone("mnist_cnn").available_offline()[0]
    with pytest.raises(InvalidInputError) as e:
        get_backbone("resnet101")
    assert "resnet18" in e.value.hint and "vit_b_16" in e.value.hint


def test_official_file_names_match_torchvision():
    import torchvision.models as tvm

    enums = {"resnet18": tvm.ResNet18_Weights, "resnet50": tvm.ResNet50_Weights, "vgg16": tvm.VGG16_Weights,
             "alexnet": tvm.AlexNet_Weights, "efficientnet_b0": tvm.EfficientNet_B0_Weights,
             "vit_b_16": tvm.ViT_B_16_Weights}
    for name, enum in enums.items():
        assert enum.DEFAULT.url.rsplit("/", 1)[-1] == TORCHVISION[name][2]
        assert get_backbone(name).url == enum.DEFAULT.url


def test_bundled_weights_hash_and_size():
    assert file_sha256(BUNDLED_WEIGHTS) == BUNDLED_SHA256
    assert BUNDLED_WEIGHTS.stat().st_size < 5 * 1024 * 1024
    assert BUNDLED_SHA256 in (BUNDLED_WEIGHTS.parent / "README.md").read_text()


def test_bundled_cnn_accuracy_on_mnist5k_queries():
    assert mnist_cnn_accuracy() >= 0.95


def test_bundled_cnn_features():
    bb = get_backbone("mnist_cnn")
    model = bb.load_model()
    x = bb.transform(np.zeros((2, 28, 28), np.uint8))
    assert x.shape == (2, 1, 28, 28)
    assert torch.allclose(x, torch.full_like(x, -MNIST_MEAN / MNIST_STD))
    with torch.no_grad():
        f = model(x)
    assert f.shape == (2, 128) and (f >= 0).all()  # ReLU features


def test_corrupt_bundled_style_file_asks_to_retrain(tmp_path):
    copy = tmp_path / "mnist_cnn.pt"
    shutil.copy(BUNDLED_WEIGHTS, copy)
    (tmp_path / "mnist_cnn.pt.sha256").write_text("ab" * 32 + "  mnist_cnn.pt\n")
    with pytest.raises(DataUnavailableError) as e:
        get_backbone("mnist_cnn", weights=copy).load_model()
    assert "corrupt" in e.value.message and "train-backbone" in e.value.hint


@pytest.mark.slow
def test_training_is_deterministic_and_writes_checksum(tmp_path):
    seen = []
    a = train_mnist_cnn(tmp_path / "a.pt", seed=0, epochs=1, progress=lambda d, t: seen.append((d, t)))
    b = train_mnist_cnn(tmp_path / "b.pt", seed=0, epochs=1)
    c = train_mnist_cnn(tmp_path / "c.pt", seed=1, epochs=1)
    assert seen == [(1, 1)]
    assert a["state_sha256"] == b["state_sha256"] != c["state_sha256"]
    assert a["n_train"] == 2000 and 0 <= a["query_accuracy"] <= 1
    assert (tmp_path / "a.pt.sha256").read_text().split()[0] == a["sha256"] == file_sha256(tmp_path / "a.pt")
    state = torch.load(tmp_path / "a.pt", weights_only=True)
    assert state_dict_sha256(state) == a["state_sha256"]
    get_backbone("mnist_cnn", weights=tmp_path / "a.pt").load_model()  # its sidecar checksum passes
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.slow
def test_torchvision_weights_from_hub_cache(hub):
    import torchvision

    bb = get_backbone("resnet18")
    ok, reason = bb.available_offline()
    assert not ok and "resnet18-f37072fd.pth" in reason
    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None)
    hub.mkdir(parents=True)
    torch.save(ref.state_dict(), hub / "resnet18-f37072fd.pth")
    assert bb.available_offline()[0] and bb.weights_path() == hub / "resnet18-f37072fd.pth"
    model = bb.load_model()
    images = np.random.default_rng(0).integers(0, 256, size=(2, 28, 28), dtype=np.uint8)  # grey → 3 channels
    x = bb.transform(images)
    assert x.shape == (2, 3, 224, 224)
    assert torch.allclose(x[:, 0] * 0.229 + 0.485, x[:, 2] * 0.225 + 0.406, atol=1e-5)  # same grey in R and B
    ref.fc = torch.nn.Identity()
    ref.eval()
    with torch.no_grad():
        f, expected = model(x), ref(x)
    assert f.shape == (2, 512)
    torch.testing.assert_close(f, expected)
    assert len(bb.weights_sha256()) == 64


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "vgg16", "alexnet", "efficientnet_b0", "vit_b_16"])
def test_missing_hub_weights_name_file_and_folder(hub, name):
    with pytest.raises(DataUnavailableError) as e:
        get_backbone(name).load_model()
    fname = TORCHVISION[name][2]
    assert fname in e.value.message and fname in e.value.hint
    assert str(hub) in e.value.hint and "download=True" in e.value.hint


def test_user_state_dict_for_wrong_architecture(tmp_path):
    path = tmp_path / "cnn.pt"
    torch.save(MnistCNN().state_dict(), path)
    with pytest.raises(InvalidInputError) as e:
        get_backbone("resnet18", weights=path).load_model()
    msg = e.value.message
    assert "resnet18" in msg and "missing keys: conv1.weight" in msg and "unexpected keys: body.0.weight" in msg
    assert "in all)" in msg  # long lists are cut to the first few


def test_user_state_dict_with_wrong_shapes(tmp_path):
    state = MnistCNN(n_classes=5).state_dict()
    path = tmp_path / "five.pt"
    torch.save({"state_dict": state, "epoch": torch.tensor(3)}, path)  # checkpoint dicts are unwrapped
    with pytest.raises(InvalidInputError) as e:
        get_backbone("mnist_cnn", weights=path).load_model()
    assert "classifier.weight (5, 128) vs (10, 128)" in e.value.message
    assert "missing" not in e.value.message


def test_user_state_dict_that_fits(tmp_path):
    torch.manual_seed(1)
    net = MnistCNN()
    path = tmp_path / "mine.pt"
    torch.save(net.state_dict(), path)
    model = get_backbone("mnist_cnn", weights=str(path)).load_model()
    x = torch.randn(3, 1, 28, 28)
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x))


@pytest.mark.parametrize("how", ["torch.save", "raw pickle"])
def test_malicious_pickle_is_refused_without_running_it(tmp_path, how):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"conv1.weight": MarkerPayload(marker)}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(InvalidInputError) as e:
        get_backbone("resnet18", weights=path).load_model()
    assert "refused" in e.value.message and "weights_only" in e.value.message
    assert not marker.exists()
    # control: loading it the unsafe way does run the payload
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(MarkerPayload(control))).close()
    assert control.exists()


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "t.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(InvalidInputError, match="does not hold a state_dict"):
        get_backbone("mnist_cnn", weights=path).load_model()
    with pytest.raises(DataUnavailableError, match="not found"):
        get_backbone("mnist_cnn", weights=tmp_path / "none.pt").load_model()


def test_transform_rgb_to_grey_and_bad_input():
    bb = get_backbone("mnist_cnn")
    rgb = np.zeros((1, 56, 56, 3), np.uint8)
    rgb[..., 1] = 255
    x = bb.transform(rgb)
    assert x.shape == (1, 1, 28, 28)
    torch.testing.assert_close(x, torch.full_like(x, (0.587 - MNIST_MEAN) / MNIST_STD))
    with pytest.raises(InvalidInputError, match="uint8"):
        bb.transform(np.zeros((1, 28, 28), np.float32))
